package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/config"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/envoy"
)

// fleetMain is a main file of vaults.d with one issuer.
func fleetMain(is *authztest.Issuer) string {
	return fmt.Sprintf(`
vaults: {dir: vaults.d}
identity:
  issuers: [{issuer: %q, discovery: true}]
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
`, is.Issuer())
}

// fleetVault is a vault admitting the test application from cidr.
func fleetVault(is *authztest.Issuer, name, cidr, extra string) string {
	return fmt.Sprintf(`
vault: {name: %s, tenantId: %s, location: westeurope%s}
properties:
  networkAcls: {defaultAction: Deny, ipRules: [{value: %q}]}
  accessPolicies:
    - {tenantId: %s, objectId: %s, permissions: {secrets: [get]}}
`, name, is.Tenant(), extra, cidr, is.Tenant(), authztest.DefaultObjectID)
}

func hostCheck(tok, host, peer string) *authv3.CheckRequest {
	cr := secretCheck(tok, peer, "/secrets/s?api-version=7.5")
	cr.Attributes.Request.Http.Host = host
	cr.Attributes.Request.Http.Headers[":authority"] = host
	return cr
}

type fleetRig struct {
	t     *testing.T
	dir   string
	f     *Fleet
	srv   *envoy.Server
	tok   string
	built int
}

func newFleetRig(t *testing.T, is *authztest.Issuer, vaults map[string]string) *fleetRig {
	t.Helper()
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys}
	r := &fleetRig{t: t, dir: t.TempDir(), srv: envoy.NewServer(nil, nil), tok: is.MintValid()}
	if err := os.MkdirAll(filepath.Join(r.dir, "vaults.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(r.dir, "vaultwall.yaml"), fleetMain(is))
	for file, doc := range vaults {
		r.writeVault(file, doc)
	}
	counting := func(ctx context.Context, cfg *config.Config) (*Runtime, error) { r.built++; return b.Build(ctx, cfg) }
	r.f = NewFleet(filepath.Join(r.dir, "vaultwall.yaml"), counting, nil, func(s *Set) { r.srv.SetVaults(s.Vaults) })
	t.Cleanup(func() {
		if s := r.f.Set(); s != nil {
			s.Close()
		}
	})
	return r
}

func (r *fleetRig) writeVault(file, doc string) {
	write(r.t, filepath.Join(r.dir, "vaults.d", file), doc)
}

// decide returns the HTTP status the request gets (200 for an allow) and
// the body.
func (r *fleetRig) decide(host, peer string) (int, string) {
	r.t.Helper()
	resp, err := r.srv.Check(r.t.Context(), hostCheck(r.tok, host, peer))
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.GetStatus().GetCode() == int32(code.Code_OK) {
		return 200, ""
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), resp.GetDeniedResponse().GetBody()
}

func (r *fleetRig) vaultStatus(name string) VaultStatus {
	for _, v := range r.f.Status().Vaults {
		if strings.HasSuffix(v.File, name) {
			return v
		}
	}
	r.t.Fatalf("no status for %s: %+v", name, r.f.Status())
	return VaultStatus{}
}

// TestFleetDecidesEachRequestByItsVault: two vaults from one directory;
// a caller admitted by one vault's firewall is refused by the other's,
// by host alone; a host no vault claims is refused before any stage.
func TestFleetDecidesEachRequestByItsVault(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{
		"contoso.yaml":  fleetVault(is, "contoso-vault", "203.0.113.0/24", ""),
		"fabrikam.yaml": fleetVault(is, "fabrikam-vault", "198.51.100.0/24", ", hostnames: [fabrikam.private.example]"),
	})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := r.f.Set(); !s.Multi || len(s.Runtimes) != 2 || s.Main.Vaults.Dir == "" || r.f.Current() != nil {
		t.Fatalf("set = %+v", s)
	}
	for _, tc := range []struct {
		host, peer string
		status     int
		body       string
	}{
		{"contoso-vault.vault.azure.net", "203.0.113.10", 200, ""},
		{"Contoso-Vault.vault.azure.net:443", "203.0.113.10", 200, ""},
		{"contoso-vault.vault.azure.net", "198.51.100.10", 403, "Vault: contoso-vault;location=westeurope"},
		{"fabrikam.private.example", "198.51.100.10", 200, ""},
		{"fabrikam.private.example", "203.0.113.10", 403, "Vault: fabrikam-vault;location=westeurope"},
		// fabrikam lists its hostnames: the default one is not among them.
		{"fabrikam-vault.vault.azure.net", "198.51.100.10", 400, "VaultNotFound"},
		{"other.vault.azure.net", "203.0.113.10", 400, "VaultNotFound"},
		{"", "203.0.113.10", 400, "VaultNotFound"},
	} {
		status, body := r.decide(tc.host, tc.peer)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s from %s = %d %s; want %d %q", tc.host, tc.peer, status, body, tc.status, tc.body)
		}
	}
}

// TestFleetReloadsEachVaultOnItsOwn: a broken vault file keeps that
// vault's running rules and never touches the other; an edit rebuilds
// that vault alone; an edit of the main file rebuilds every vault.
func TestFleetReloadsEachVaultOnItsOwn(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{
		"contoso.yaml":  fleetVault(is, "contoso-vault", "203.0.113.0/24", ""),
		"fabrikam.yaml": fleetVault(is, "fabrikam-vault", "198.51.100.0/24", ""),
	})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	contoso := r.f.Set().Vault("contoso-vault")
	fabrikam := r.f.Set().Vault("fabrikam-vault")

	// Broken: refused with its file and line, fabrikam keeps serving.
	r.writeVault("fabrikam.yaml", strings.Replace(fleetVault(is, "fabrikam-vault", "198.51.100.0/24", ""), "198.51.100.0/24", "198.51.100.0/99", 1))
	err := r.f.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "fabrikam.yaml:4: properties.networkAcls.ipRules[0].value") {
		t.Fatalf("broken vault file: err = %v", err)
	}
	if got := r.f.Set().Vault("fabrikam-vault"); got != fabrikam {
		t.Error("the broken file replaced fabrikam's running runtime")
	}
	if r.f.Set().Vault("contoso-vault") != contoso {
		t.Error("a broken fabrikam file rebuilt contoso")
	}
	if st, _ := r.decide("fabrikam-vault.vault.azure.net", "198.51.100.10"); st != 200 {
		t.Errorf("fabrikam stopped serving its running rules: %d", st)
	}
	if vs := r.vaultStatus("fabrikam.yaml"); vs.LastError == "" || vs.Vault != "fabrikam-vault" || vs.Failures != 1 {
		t.Errorf("fabrikam status = %+v", vs)
	}
	if vs := r.vaultStatus("contoso.yaml"); vs.LastError != "" {
		t.Errorf("contoso status = %+v", vs)
	}
	if st := r.f.Status(); st.LastError == "" || !st.Loaded {
		t.Errorf("fleet status = %+v", st.Status)
	}

	// Fixed, with a new rule: fabrikam alone is rebuilt.
	built := r.built
	r.writeVault("fabrikam.yaml", fleetVault(is, "fabrikam-vault", "192.0.2.0/24", ""))
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.built != built+1 || r.f.Set().Vault("contoso-vault") != contoso {
		t.Errorf("an edit of fabrikam built %d runtimes; contoso replaced: %v", r.built-built, r.f.Set().Vault("contoso-vault") != contoso)
	}
	if st, _ := r.decide("fabrikam-vault.vault.azure.net", "192.0.2.1"); st != 200 {
		t.Errorf("fabrikam's new rule not in force: %d", st)
	}
	if vs := r.vaultStatus("fabrikam.yaml"); vs.LastError != "" {
		t.Errorf("fabrikam's error not cleared: %+v", vs)
	}

	// Nothing changed: nothing is built.
	built = r.built
	if err := r.f.Load(t.Context()); err != nil || r.built != built {
		t.Errorf("an unchanged load built %d (err %v)", r.built-built, err)
	}

	// The main file: every vault.
	write(t, filepath.Join(r.dir, "vaultwall.yaml"), fleetMain(is)+"log: {level: debug}\n")
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.built != built+2 || r.f.Set().Vault("contoso-vault") == contoso {
		t.Errorf("a main-file edit built %d runtimes", r.built-built)
	}

	// A broken main file keeps every vault.
	set := r.f.Set()
	write(t, filepath.Join(r.dir, "vaultwall.yaml"), fleetMain(is)+"log: {level: loud}\n")
	if err := r.f.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("broken main file: err = %v", err)
	}
	if r.f.Set() != set {
		t.Error("a broken main file changed what is in force")
	}
	if st := r.f.Status(); !strings.Contains(st.LastError, "log.level") || st.Failures == 0 {
		t.Errorf("fleet status = %+v", st.Status)
	}
}

// TestFleetNewFileCannotTakeAnotherVaultsHost: a file claiming a hostname
// or name another vault in force holds is refused; the vault in force keeps
// its traffic. A removed file removes its vault.
func TestFleetNewFileCannotTakeAnotherVaultsHost(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{
		"contoso.yaml": fleetVault(is, "contoso-vault", "203.0.113.0/24", ""),
	})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	// "aaa" sorts first: order must not decide who keeps the host.
	r.writeVault("aaa.yaml", fleetVault(is, "thief-vault", "0.0.0.0/0", ", hostnames: [CONTOSO-VAULT.vault.azure.net]"))
	r.writeVault("aab.yaml", fleetVault(is, "contoso-vault", "0.0.0.0/0", ", hostnames: [other.example]"))
	err := r.f.Load(t.Context())
	for _, want := range []string{"aaa.yaml:2: vault.hostnames", "contoso-vault.vault.azure.net is a hostname of vault contoso-vault",
		"aab.yaml:2: vault.name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err lacks %q: %v", want, err)
		}
	}
	if st, _ := r.decide("contoso-vault.vault.azure.net", "192.0.2.1"); st != 403 {
		t.Errorf("the claimed host is decided by another vault: %d", st)
	}
	if len(r.f.Set().Runtimes) != 1 {
		t.Errorf("vaults in force: %d", len(r.f.Set().Runtimes))
	}

	if err := os.Remove(filepath.Join(r.dir, "vaults.d", "aaa.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r.dir, "vaults.d", "aab.yaml")); err != nil {
		t.Fatal(err)
	}
	r.writeVault("fabrikam.yaml", fleetVault(is, "fabrikam-vault", "198.51.100.0/24", ""))
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.f.Set().Runtimes) != 2 || len(r.f.Status().Vaults) != 2 {
		t.Errorf("after removing the refused files: %+v", r.f.Status())
	}
	if err := os.Remove(filepath.Join(r.dir, "vaults.d", "fabrikam.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, body := r.decide("fabrikam-vault.vault.azure.net", "198.51.100.10"); st != 400 || !strings.Contains(body, "VaultNotFound") {
		t.Errorf("a removed vault still answers: %d %s", st, body)
	}
}

// TestFleetRefusesAnEmptyDirectory: serving nothing is a mistake, said at
// the first load.
func TestFleetRefusesAnEmptyDirectory(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, nil)
	err := r.f.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "vaults.dir") || r.f.Set() != nil {
		t.Errorf("empty vaults.dir: err = %v", err)
	}
}

// TestVaultsOfATenantShareOneAuthenticator: a token is verified and cached
// once for every vault of a tenant; a forced reload (SIGHUP) starts afresh.
func TestVaultsOfATenantShareOneAuthenticator(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{
		"contoso.yaml":  fleetVault(is, "contoso-vault", "203.0.113.0/24", ""),
		"fabrikam.yaml": fleetVault(is, "fabrikam-vault", "203.0.113.0/24", ""),
	})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := r.f.Set()
	a := s.Vault("contoso-vault").Authenticator
	if a == nil || a != s.Vault("fabrikam-vault").Authenticator {
		t.Fatal("two vaults of one tenant and identity verify tokens apart")
	}
	for _, h := range []string{"contoso-vault.vault.azure.net", "fabrikam-vault.vault.azure.net"} {
		if st, body := r.decide(h, "203.0.113.10"); st != 200 {
			t.Fatalf("%s: %d %s", h, st, body)
		}
	}
	if cs := a.CacheStats(); cs.Misses != 1 || cs.Hits != 1 {
		t.Errorf("one token on two vaults: %+v, want one verification and one hit", cs)
	}
	if err := r.f.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2 := r.f.Set()
	b := s2.Vault("contoso-vault").Authenticator
	if b == a || b != s2.Vault("fabrikam-vault").Authenticator {
		t.Error("a forced reload kept the old authenticator, or split the vaults")
	}
}

// TestFleetStatusNeverWaitsForALoad: /readyz and scrapes read Status while
// a load builds (a thousand vaults take seconds); they must not wait.
func TestFleetStatusNeverWaitsForALoad(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{"contoso.yaml": fleetVault(is, "contoso-vault", "203.0.113.0/24", "")})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	building := make(chan struct{}, 1)
	inner := r.f.build
	r.f.build = func(ctx context.Context, cfg *config.Config) (*Runtime, error) {
		building <- struct{}{}
		<-release
		return inner(ctx, cfg)
	}
	for _, e := range r.f.vaults {
		e.build = r.f.build
	}
	r.writeVault("contoso.yaml", fleetVault(is, "contoso-vault", "192.0.2.0/24", ""))
	done := make(chan error, 1)
	go func() { done <- r.f.Load(t.Context()) }()
	<-building
	got := make(chan FleetStatus, 1)
	go func() { got <- r.f.Status() }()
	select {
	case st := <-got:
		if !st.Loaded || len(st.Vaults) != 1 {
			t.Errorf("status during a load = %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Error("Status waited for the load")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
