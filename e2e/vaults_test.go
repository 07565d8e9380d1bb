package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/fakevault"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// The two vaults of envoy/envoy-multi-vault.yaml: a real Envoy started from
// it answers only their hosts, each virtual host pinning its vault.
const (
	contosoVault  = "contoso-vault"
	fabrikamVault = "fabrikam-vault"
	// fabrikamLocation differs from contoso's, so a message naming the
	// wrong vault's label is caught.
	fabrikamLocation = "northeurope"
	// unknownHost is a vault host no vault claims and no virtual host lists
	// (the front's certificate, *.vault.azure.net, still covers it).
	unknownHost = "unknown-vault"
)

// contosoDoc is contoso-vault's file: access policies, app may work with
// secrets; readOnly has no access; the office range only.
func contosoDoc(c *config.Config) {
	c.Properties.NetworkAcls.IPRules = []config.IPRule{{Value: "203.0.113.0/24"}}
	c.Properties.AccessPolicies = []authz.AccessPolicy{
		{TenantID: tenant, ObjectID: app.oid, Permissions: authz.Permissions{Secrets: []string{"get", "list", "set"}}},
	}
}

// fabrikamDoc is fabrikam-vault's file: another location, readOnly may
// read secrets, app has no access; the office range and 198.51.100.0/24.
func fabrikamDoc(c *config.Config) {
	c.Vault.Location = fabrikamLocation
	c.Properties.NetworkAcls.IPRules = []config.IPRule{{Value: "203.0.113.0/24"}, {Value: "198.51.100.0/24"}}
	c.Properties.AccessPolicies = []authz.AccessPolicy{
		{TenantID: tenant, ObjectID: readOnly.oid, Permissions: authz.Permissions{Secrets: []string{"get"}}},
	}
}

// vaultsGroup is one vaultwall process serving several vaults from a
// vaults directory (vaults.dir), one file per vault, behind one front.
type vaultsGroup struct {
	base     *system           // the process-wide pieces; its cfg is the main file's
	files    map[string]string // vault name → its file in the vaults directory
	auditLog string
}

// newVaultsGroup writes a main file (baseConfig's process-wide sections,
// the audit log on, vaults.dir) and one vault file per entry of vaults
// (baseConfig(name)'s vault, properties and network, adjusted), starts
// vaultwall on it and the front from envoyFile.
func newVaultsGroup(t *testing.T, envoyFile string, vaults map[string]func(*config.Config)) *vaultsGroup {
	t.Helper()
	g := &vaultsGroup{base: newPieces(t, ""), files: map[string]string{}}
	dir := t.TempDir()
	vdir := filepath.Join(dir, "vaults.d")
	if err := os.Mkdir(vdir, 0o700); err != nil {
		t.Fatal(err)
	}
	main := baseConfig("")
	g.base.processConfig(t, main)
	g.auditLog = filepath.Join(dir, "audit.jsonl")
	main.Audit = config.Audit{Enabled: true, Sink: "file", Path: g.auditLog}
	main.Vaults.Dir = vdir
	mainPath := writeFile(t, dir, "vaultwall.yaml", configSections(t, main, "vault", "properties", "network"))
	for name, configure := range vaults {
		g.files[name] = filepath.Join(vdir, name+".yaml")
		g.writeVault(t, name, configure)
	}
	main.Vault, main.Properties, main.Network = config.Vault{}, config.Properties{}, config.Network{}
	g.base.cfg = main
	g.base.vw = runVaultwall(t, mainPath)
	g.base.startFront(t, envoyFile, nil)
	return g
}

// writeVault (re)writes the file of vault name: baseConfig(name) with
// configure applied, its vault, properties and network sections only
// (trusted services and the policy come from the main file). The file is
// replaced by a rename, as a deployment tool would, so vaultwall never
// reads half of it.
func (g *vaultsGroup) writeVault(t *testing.T, name string, configure func(*config.Config)) {
	t.Helper()
	cfg := baseConfig(name)
	configure(cfg)
	data := configSections(t, cfg, "identity", "trustedServices", "policy", "server", "limits", "log",
		"controlPlane", "audit", "tracing", "shadow", "vaults")
	g.writeVaultFile(t, name, data)
}

func (g *vaultsGroup) writeVaultFile(t *testing.T, name string, data []byte) {
	t.Helper()
	file := g.files[name]
	tmp := filepath.Join(filepath.Dir(file), "."+name+".tmp") // hidden: not a vault file
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// configSections is cfg as YAML without the sections named.
func configSections(t *testing.T, cfg *config.Config, drop ...string) []byte {
	t.Helper()
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range drop {
		if _, ok := doc[k]; !ok {
			t.Fatalf("configSections: no section %q", k)
		}
		delete(doc, k)
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// vault is the group seen as a client of vault name (its host
// <name>.vault.azure.net, its location for messages) through f, a front
// started with opts.
func (g *vaultsGroup) vault(name, loc string, f front.Front, opts front.Options) *system {
	b := g.base
	return &system{name: name, host: name + ".vault.azure.net", location: loc, cfg: b.cfg, issuer: b.issuer,
		vault: b.vault, vw: b.vw, front: f, opts: opts, frontCA: b.frontCA, serviceCA: b.serviceCA,
		authzCA: b.authzCA, authzCert: b.authzCert, services: b.services}
}

// standIn starts a Go stand-in on the same vaultwall, from opts (the
// group's file's options, perhaps edited).
func (g *vaultsGroup) standIn(t *testing.T, opts front.Options) *front.StandIn {
	t.Helper()
	return front.StartStandIn(t, opts)
}

// readyz is vaultwall's /readyz document, the parts these scenarios read.
type readyz struct {
	Ready  bool `json:"ready"`
	Config struct {
		Vaults []struct {
			Vault      string `json:"vault"`
			File       string `json:"file"`
			Loaded     bool   `json:"loaded"`
			Generation uint64 `json:"generation"`
			LastError  string `json:"lastError"`
		} `json:"vaults"`
	} `json:"config"`
}

// vaultStatus is the /readyz entry of vault name's file.
type vaultStatus struct {
	vault      string
	loaded     bool
	generation uint64
	lastError  string
}

// status reads /readyz (200 and ready: a broken vault file never makes
// the process unready) and returns every vault file's entry, by vault name.
func (g *vaultsGroup) status(t *testing.T) map[string]vaultStatus {
	t.Helper()
	resp, err := http.Get("http://" + g.base.vw.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var r readyz
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("/readyz: %v\n%s", err, b)
	}
	if resp.StatusCode != http.StatusOK || !r.Ready {
		t.Fatalf("/readyz: %d, ready %v; want 200 and ready\n%s", resp.StatusCode, r.Ready, b)
	}
	out := map[string]vaultStatus{}
	for name, file := range g.files {
		i := slices.IndexFunc(r.Config.Vaults, func(v struct {
			Vault      string `json:"vault"`
			File       string `json:"file"`
			Loaded     bool   `json:"loaded"`
			Generation uint64 `json:"generation"`
			LastError  string `json:"lastError"`
		}) bool {
			return v.File == file
		})
		if i < 0 {
			t.Fatalf("/readyz: no config.vaults[] entry for %s\n%s", file, b)
		}
		v := r.Config.Vaults[i]
		out[name] = vaultStatus{vault: v.Vault, loaded: v.Loaded, generation: v.Generation, lastError: v.LastError}
	}
	return out
}

// waitStatus polls /readyz until ok holds for vault name's entry.
func (g *vaultsGroup) waitStatus(t *testing.T, name, what string, ok func(vaultStatus) bool) map[string]vaultStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := g.status(t)
		if ok(st[name]) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %s's file never %s within 30s: %+v", name, what, st[name])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVaults is one vaultwall serving two vaults from a vaults directory
// (vaults.dir), each decided by its own file's rules, selected by the
// request's host, behind envoy/envoy-multi-vault.yaml (one virtual host per
// vault, each pinning its vault with context_extensions). One vaultwall
// process serves every scenario; they run in order, not in parallel, as the
// last one edits the vaults' files.
func TestVaults(t *testing.T) {
	t.Parallel()
	g := newVaultsGroup(t, front.EnvoyMultiVault, map[string]func(*config.Config){
		contosoVault: contosoDoc, fabrikamVault: fabrikamDoc,
	})
	b := g.base
	contoso := g.vault(contosoVault, location, b.front, b.opts)
	fabrikam := g.vault(fabrikamVault, fabrikamLocation, b.front, b.opts)
	b.vault.SetSecret("db-password", "s3cr3t") // the one upstream serves both hosts
	get := "/secrets/db-password" + api

	t.Run("each vault's rules by host: the Azure SDK allowed on one vault is refused on the other", func(t *testing.T) {
		ctx := t.Context()
		for _, tc := range []struct {
			allowed, refused *system
			caller           principal
		}{
			{contoso, fabrikam, app},
			{fabrikam, contoso, readOnly},
		} {
			sc, _, w := tc.allowed.sdk(t, tc.caller, "203.0.113.10")
			got, err := sc.GetSecret(ctx, "db-password", "", nil)
			if err != nil || *got.Value != "s3cr3t" {
				t.Fatalf("%s on %s: GetSecret: %v", tc.caller.name, tc.allowed.name, err)
			}
			if got.ID.Name() != "db-password" || !strings.HasPrefix(string(*got.ID), "https://"+tc.allowed.host+"/") {
				t.Errorf("%s: secret id %s, want one on %s", tc.allowed.name, *got.ID, tc.allowed.host)
			}
			// The vault saw the request on the vault's own host, with
			// vaultwall's identity headers: the front kept the host.
			tc.allowed.wantIdentityAtVault(t, w.exchanges()[1:], tc.caller, "203.0.113.10")
			wantVaultHost(t, b.vault, w.exchanges()[1:], tc.allowed.host)

			sc, _, w = tc.refused.sdk(t, tc.caller, "203.0.113.10")
			_, err = sc.GetSecret(ctx, "db-password", "", nil)
			wantResponseError(t, err, 403, "AccessDenied", tc.refused.accessDeniedMessage(tc.caller, "secrets", "get"))
			if ex := w.exchanges(); len(ex) != 2 || ex[0].status != 401 || ex[1].status != 403 {
				t.Errorf("%s on %s: exchanges %+v; want the challenge, then the 403", tc.caller.name, tc.refused.name, ex)
			}
			// The same token writes nowhere it may not.
			_, err = sc.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("y")}, nil)
			wantResponseError(t, err, 403, "AccessDenied", tc.refused.accessDeniedMessage(tc.caller, "secrets", "set"))
		}
		if v, _ := b.vault.Secret("db-password"); v != "s3cr3t" {
			t.Errorf("a refused SetSecret changed the secret to %q", v)
		}
		// The firewalls differ too: 198.51.100.0/24 is fabrikam's only.
		fabrikam.do(t, req{path: get, from: addr("198.51.100.20"), as: &readOnly}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: readOnly, clientIP: "198.51.100.20"})
		contoso.do(t, req{path: get, from: addr("198.51.100.20"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", contoso.firewallMessage("198.51.100.20", app))
	})

	// The stand-in sends every host to vaultwall (it matches no domain): it
	// reaches vaultwall's own answers to hosts it does not serve, which a
	// real Envoy on envoy-multi-vault.yaml never asks for. It runs on every
	// machine, whichever front the group has.
	standInOpts := b.frontOptions(t, front.EnvoyMultiVault, nil)
	standIn := g.standIn(t, standInOpts)

	t.Run("a host no vault claims: Envoy's 404 without a Check, vaultwall's 400 VaultNotFound before any stage", func(t *testing.T) {
		msg := "The Host header must name a vault this service answers for (no vault answers to this host).\r\nHost: " + unknownHost + ".vault.azure.net"
		t.Run("stand-in", func(t *testing.T) {
			u := g.vault(unknownHost, location, standIn, standInOpts)
			// With or without a token: no 401 challenge, no firewall, no
			// policy — no vault's rules apply to a host no vault has.
			for _, r := range []req{
				{path: get, from: addr("203.0.113.10"), as: &app},
				{path: get, from: addr("203.0.113.10")},
				{path: get, from: addr("8.8.8.8")},
				{method: "PUT", path: "/secrets/x" + api, body: `{"value":"x"}`, from: addr("203.0.113.10"), as: &app},
			} {
				res := u.do(t, r)
				res.wantRefused(t, 400, "BadRequest", "VaultNotFound", msg)
				if h := res.header.Get("Www-Authenticate"); h != "" {
					t.Errorf("%s: WWW-Authenticate %q on a host no vault answers", res.desc, h)
				}
			}
			// A vault's host in another case and with a port is that vault.
			shout := g.vault(contosoVault, location, standIn, standInOpts)
			shout.host = strings.ToUpper(contosoVault) + ".Vault.Azure.Net:443"
			shout.do(t, req{path: get, from: addr("203.0.113.10"), as: &app}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
		})
		t.Run("envoy-multi-vault.yaml", func(t *testing.T) {
			if _, ok := b.front.(*front.Envoy); !ok {
				t.Skipf("the group's front is %s: only a real Envoy matches the file's domains", b.front.Name())
			}
			u := g.vault(unknownHost, location, b.front, b.opts)
			probe := "/secrets/unknown-host-probe" + api
			res := u.do(t, req{path: probe, from: addr("203.0.113.10"), as: &app})
			if res.err != nil || res.status != 404 || res.upstream != nil || res.header.Get("X-Ms-Error-Code") != "" {
				t.Errorf("%s on %s: %d %v, x-ms-error-code %q, reached the vault %v; want Envoy's own 404",
					res.desc, u.host, res.status, res.err, res.header.Get("X-Ms-Error-Code"), res.upstream != nil)
			}
			// Vaultwall was never asked: a request made after it, through
			// the same front, is audited, and the probe is not (the audit
			// log is written in decision order).
			control := "/secrets/unknown-host-control" + api
			contoso.do(t, req{path: control, from: addr("8.8.8.8")}).wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
			if records := waitAudit(t, g.auditLog, "unknown-host-control"); strings.Contains(records, "unknown-host-probe") {
				t.Errorf("a request for %s reached vaultwall:\n%s", u.host, records)
			}
		})
	})

	t.Run("a host and a context_extensions pin that disagree: 400 VaultNotFound", func(t *testing.T) {
		// Only on the stand-in: a real Envoy on envoy-multi-vault.yaml pins
		// each virtual host to the vault its domains name (the envoy
		// package's tests hold the shipped file to that), so it cannot send
		// a disagreeing pin. This is the mistake the pin guards against: a
		// vault's domain added to another vault's virtual host — here
		// contoso-vault's domains in fabrikam-vault's.
		opts := b.frontOptions(t, front.EnvoyMultiVault, nil)
		var misrouted front.VirtualHost
		for _, vh := range opts.VirtualHosts {
			misrouted.Domains = append(misrouted.Domains, vh.Domains...)
			if vh.Name == fabrikamVault {
				misrouted.Name, misrouted.ContextExtensions = vh.Name, vh.ContextExtensions
			}
		}
		if misrouted.ContextExtensions[authz.ContextVault] != fabrikamVault {
			t.Fatalf("%s: no pin to %s in %+v", front.EnvoyMultiVault, fabrikamVault, opts.VirtualHosts)
		}
		opts.VirtualHosts = []front.VirtualHost{misrouted}
		f := g.standIn(t, opts)
		c := g.vault(contosoVault, location, f, opts)
		msg := "The Host header must name a vault this service answers for (the route is pinned to another vault (context_extensions vault)).\r\nHost: " + c.host
		for _, r := range []req{
			{path: get, from: addr("203.0.113.10"), as: &app}, // contoso's rules would allow it
			{path: get, from: addr("203.0.113.10")},           // and challenge this one
		} {
			res := c.do(t, r)
			res.wantRefused(t, 400, "BadRequest", "VaultNotFound", msg)
			if h := res.header.Get("Www-Authenticate"); h != "" {
				t.Errorf("%s: WWW-Authenticate %q", res.desc, h)
			}
		}
		// Where host and pin agree, the same front passes the request.
		g.vault(fabrikamVault, fabrikamLocation, f, opts).do(t, req{path: get, from: addr("203.0.113.10"), as: &readOnly}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: readOnly, clientIP: "203.0.113.10"})
	})

	t.Run("reload: a broken vault file keeps that vault's rules and touches no other vault", func(t *testing.T) {
		allowedFab := func() {
			t.Helper()
			fabrikam.do(t, req{path: get, from: addr("203.0.113.10"), as: &readOnly}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: readOnly, clientIP: "203.0.113.10"})
		}
		allowedCon := func() {
			t.Helper()
			contoso.do(t, req{path: get, from: addr("203.0.113.10"), as: &app}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
		}
		before := g.status(t)
		for name, st := range before {
			if st.vault != name || !st.loaded || st.generation == 0 || st.lastError != "" {
				t.Fatalf("/readyz before any edit: %s's file %+v", name, st)
			}
		}

		// fabrikam's file, broken: an invalid IP rule, and readOnly's
		// access policy gone — which must not take effect.
		b.vw.expectError(g.files[fabrikamVault]) // "configuration rejected", naming the file
		g.writeVault(t, fabrikamVault, func(c *config.Config) {
			fabrikamDoc(c)
			c.Properties.NetworkAcls.IPRules = append(c.Properties.NetworkAcls.IPRules, config.IPRule{Value: "198.51.100.300"})
			c.Properties.AccessPolicies = nil
		})
		st := g.waitStatus(t, fabrikamVault, "reported an error", func(s vaultStatus) bool { return s.lastError != "" })
		if fab := st[fabrikamVault]; !strings.Contains(fab.lastError, "ipRules") || !strings.Contains(fab.lastError, "198.51.100.300") ||
			fab.vault != fabrikamVault || !fab.loaded || fab.generation != before[fabrikamVault].generation {
			t.Errorf("/readyz: fabrikam's broken file %+v; want its error naming the IP rule, its vault still loaded at generation %d",
				fab, before[fabrikamVault].generation)
		}
		if st[contosoVault] != before[contosoVault] {
			t.Errorf("/readyz: contoso's file %+v changed with fabrikam's (was %+v)", st[contosoVault], before[contosoVault])
		}
		allowedFab() // fabrikam's running rules: readOnly still reads
		fabrikam.do(t, req{path: get, from: addr("203.0.113.10"), as: &app}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", fabrikam.accessDeniedMessage(app, "secrets", "get"))
		allowedCon()

		// Fixed (the file as it was): the error clears, nothing is rebuilt.
		g.writeVault(t, fabrikamVault, fabrikamDoc)
		st = g.waitStatus(t, fabrikamVault, "cleared its error", func(s vaultStatus) bool { return s.lastError == "" })
		if st[fabrikamVault].generation != before[fabrikamVault].generation {
			t.Errorf("/readyz: fabrikam at generation %d after its file was restored, want %d", st[fabrikamVault].generation, before[fabrikamVault].generation)
		}
		allowedFab()

		// contoso's file gains an IP rule: contoso's new rule is in force,
		// fabrikam is not reloaded.
		contoso.do(t, req{path: get, from: addr("198.51.100.20"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", contoso.firewallMessage("198.51.100.20", app))
		g.writeVault(t, contosoVault, func(c *config.Config) {
			contosoDoc(c)
			c.Properties.NetworkAcls.IPRules = append(c.Properties.NetworkAcls.IPRules, config.IPRule{Value: "198.51.100.20"})
		})
		st = g.waitStatus(t, contosoVault, "reloaded", func(s vaultStatus) bool { return s.generation > before[contosoVault].generation })
		if con := st[contosoVault]; con.lastError != "" || con.generation != before[contosoVault].generation+1 {
			t.Errorf("/readyz: contoso after its edit %+v; want generation %d, no error", con, before[contosoVault].generation+1)
		}
		if st[fabrikamVault] != (vaultStatus{vault: fabrikamVault, loaded: true, generation: before[fabrikamVault].generation}) {
			t.Errorf("/readyz: fabrikam %+v after contoso's edit; want generation %d unchanged", st[fabrikamVault], before[fabrikamVault].generation)
		}
		contoso.do(t, req{path: get, from: addr("198.51.100.20"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "198.51.100.20", networkInfo: networkInfo("198.51.100.20")})
		allowedCon()
		allowedFab()
		// fabrikam's rules did not move: still not app's, still its own
		// message.
		fabrikam.do(t, req{path: get, from: addr("198.51.100.20"), as: &app}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", fabrikam.accessDeniedMessage(app, "secrets", "get"))
	})
}

// wantVaultHost asserts that each exchange reached the vault on host.
func wantVaultHost(t *testing.T, v *fakevault.Vault, ex []exchange, host string) {
	t.Helper()
	reqs := v.Requests()
	for _, e := range ex {
		i := slices.IndexFunc(reqs, func(r fakevault.Request) bool { return r.Header.Get("X-Ms-Client-Request-Id") == e.requestID })
		if i >= 0 && reqs[i].Host != host {
			t.Errorf("%s %s reached the vault for host %q, want %q", e.method, e.path, reqs[i].Host, host)
		}
	}
}
