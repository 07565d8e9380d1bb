package rego

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

const sharedTenant = "00000000-0000-0000-0000-000000000001"

// sharedVault is a vault of its own name whose one access policy grants
// secrets/get to oid (with a budget a loaded machine under -race meets).
func sharedVault(t testing.TB, name, oid string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`vault: {name: %s, tenantId: %s, location: westeurope, resourceId: /subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/%s}
properties:
  tenantId: %s
  accessPolicies:
    - {tenantId: %s, objectId: %s, permissions: {secrets: [get]}}
policy: {timeout: 10s}
`, name, sharedTenant, name, sharedTenant, sharedTenant, oid)
	cfg, err := config.Parse(name+".yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func oidOf(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000001", i) }

// getSecret is oid asking vault cfg for a secret at 10:00 on a Monday,
// with a token that expires (so that the decision cache serves it).
func getSecret(cfg *config.Config, oid string) *authz.Decision {
	v := cfg.AuthzVault()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	c := &authz.Caller{Issuer: "https://sts.windows.net/" + sharedTenant + "/", TenantID: sharedTenant, ObjectID: oid,
		ApplicationID: "a9900000-0000-4000-8000-000000000001", IdentityType: "user", Expires: now.Add(time.Hour),
		Claims: map[string]any{"oid": oid, "tid": sharedTenant, "amr": []any{"pwd", "mfa"}}}
	c.Seal()
	return &authz.Decision{ID: "d", Time: now, Vault: &v,
		Request: &authz.Request{ID: "r", Method: "GET", Path: "/secrets/db?api-version=7.5", Host: v.Name + ".vault.azure.net", Scheme: "https"},
		Operation: authz.Operation{Plane: authz.PlaneData, Resource: authz.FamilySecrets, Permission: "get", Name: "SecretGet",
			DataAction: authz.DataActionPrefix + "secrets/getSecret/action", Object: "db", Scope: "/secrets/db", Method: "GET", APIVersion: "7.5"},
		Caller:  c,
		Network: authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")}, Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "defaultAction=Allow"},
	}
}

func mustNew(t testing.TB, cfg *config.Config, opts ...Option) *Policy {
	t.Helper()
	p, err := New(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

const denyWraps = "package vaultwall.operator\n\ndeny contains \"no wraps\" if input.operation.permission == \"wrapKey\"\n"

// Policies built from the same sources share one compilation, whatever
// their data; a changed, added or renamed operator file, or the same file
// in another directory, is compiled again.
func TestNewSharesTheCompilation(t *testing.T) {
	a, b := sharedVault(t, "vault-a", oidOf(1)), sharedVault(t, "vault-b", oidOf(2))
	pa, pb := mustNew(t, a), mustNew(t, b)
	if pa.src != pb.src {
		t.Error("two vaults with the shipped policy alone compiled it twice")
	}
	before := compilations.Load()
	if mustNew(t, a).src != pa.src || compilations.Load() != before {
		t.Error("a rebuild of the same vault compiled again")
	}
	ex1, ex2 := mustNew(t, a, WithDir("examples/business-hours")), mustNew(t, b, WithDir("examples/business-hours"))
	if ex1.src != ex2.src || ex1.src == pa.src {
		t.Error("operator files: not shared between vaults, or shared with the shipped policy alone")
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ops.rego"), denyWraps)
	p1 := mustNew(t, a, WithDir(dir))
	if mustNew(t, b, WithDir(dir)).src != p1.src {
		t.Error("the same operator directory compiled twice")
	}
	// The same bytes, one comment more: a new compilation.
	writeFile(t, filepath.Join(dir, "ops.rego"), denyWraps+"# changed\n")
	p2 := mustNew(t, a, WithDir(dir))
	if p2.src == p1.src {
		t.Fatal("a changed operator file reused the old compilation")
	}
	// A change that changes the verdict is seen.
	writeFile(t, filepath.Join(dir, "ops.rego"), "package vaultwall.operator\n\ndeny contains \"no gets\" if input.operation.permission == \"get\"\n")
	p3 := mustNew(t, a, WithDir(dir))
	if v, err := p3.Authorize(t.Context(), getSecret(a, oidOf(1))); err != nil || v.Allowed {
		t.Errorf("the changed rule is not applied: %+v %v", v, err)
	}
	if v, err := p1.Authorize(t.Context(), getSecret(a, oidOf(1))); err != nil || !v.Allowed {
		t.Errorf("the old Policy changed with the file: %+v %v", v, err)
	}
	// Renamed: the name is part of the sources (messages name it).
	if err := os.Rename(filepath.Join(dir, "ops.rego"), filepath.Join(dir, "ops2.rego")); err != nil {
		t.Fatal(err)
	}
	p4 := mustNew(t, a, WithDir(dir))
	if p4.src == p3.src || p4.Files()[0] != filepath.Join(dir, "ops2.rego") {
		t.Errorf("a renamed file reused the compilation of the old name: %v", p4.Files())
	}
	// The same file in another directory.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "ops2.rego"), "package vaultwall.operator\n\ndeny contains \"no gets\" if input.operation.permission == \"get\"\n")
	if mustNew(t, a, WithDir(other)).src == p4.src {
		t.Error("another directory reused the compilation")
	}
	// An added file.
	writeFile(t, filepath.Join(dir, "more.rego"), "package vaultwall.operator.more\n\nx := 1\n")
	if mustNew(t, a, WithDir(dir)).src == p4.src {
		t.Error("an added file reused the compilation")
	}
}

// A failure is not kept: each New reports it alike, and the fixed file
// compiles.
func TestNewDoesNotKeepFailures(t *testing.T) {
	cfg := sharedVault(t, "vault-a", oidOf(1))
	dir := t.TempDir()
	file := filepath.Join(dir, "ops.rego")
	for _, bad := range []string{
		"package vaultwall.operator\n\ndeny contains \"x\" if input.operation.plane == ]\n",     // syntax
		"package vaultwall.operator\n\ndeny contains \"x\" if input.operation.nope == \"y\"\n",  // type
		"package vaultwall.operator\n\ndeny contains \"x\" if http.send({\"url\": \"u\"}).ok\n", // forbidden builtin
	} {
		writeFile(t, file, bad)
		_, err1 := New(t.Context(), cfg, WithDir(dir))
		_, err2 := New(t.Context(), cfg, WithDir(dir))
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Fatalf("%q: %v / %v", bad, err1, err2)
		}
		if fe, ok := errors.AsType[*FileError](err1); !ok || fe.File != file || fe.Line == 0 {
			t.Errorf("%q: %v does not name %s:line", bad, err1, file)
		}
		writeFile(t, file, denyWraps)
		mustNew(t, cfg, WithDir(dir))
		writeFile(t, file, bad)
		if _, err := New(t.Context(), cfg, WithDir(dir)); err == nil || err.Error() != err1.Error() {
			t.Errorf("%q after a good compile: %v, want %v", bad, err, err1)
		}
	}
}

// The shared compilations are held weakly: once no Policy holds one, it
// and its entry go.
func TestSharedCompilationsAreDropped(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ops.rego"), denyWraps+"# only in TestSharedCompilationsAreDropped\n")
	cfg := sharedVault(t, "vault-a", oidOf(1))
	p := mustNew(t, cfg, WithDir(dir))
	d := digestSources(mustSources(t, dir))
	if lookupShared(d) != p.src {
		t.Fatal("the compilation is not shared")
	}
	p = nil // the only Policy holding it
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		shared.Lock()
		_, ok := shared.m[d]
		shared.Unlock()
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry of a compilation no Policy holds was not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustSources(t *testing.T, dir string) []source {
	t.Helper()
	srcs, err := shippedSources(false)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := dirSources(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return append(srcs, ops...)
}

// Many vaults built and deciding at once from the same sources (run with
// -race): each decides on its own data only. Vault i grants oidOf(i) alone;
// every caller asks every vault.
func TestManyVaultsConcurrently(t *testing.T) {
	const vaults = 24
	cfgs := make([]*config.Config, vaults)
	for i := range cfgs {
		cfgs[i] = sharedVault(t, fmt.Sprintf("vault-%02d", i), oidOf(i))
	}
	policies := make([]*Policy, vaults)
	var wg sync.WaitGroup
	errs := make(chan error, vaults*vaults)
	for i := range vaults {
		wg.Go(func() {
			dir := ""
			if i%2 == 1 {
				dir = "examples/purge-mfa"
			}
			p, err := New(t.Context(), cfgs[i], WithDir(dir))
			if err != nil {
				errs <- err
				return
			}
			policies[i] = p
			for j := range vaults {
				d := getSecret(cfgs[i], oidOf(j))
				for range 2 { // an evaluation, then a cache hit
					v, err := p.Authorize(t.Context(), d)
					if err != nil {
						errs <- err
					} else if v.Allowed != (i == j) {
						errs <- fmt.Errorf("vault %d, caller %d: allowed=%v (%s)", i, j, v.Allowed, v.Rule)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for i := 2; i < vaults; i++ {
		if policies[i].src != policies[i%2].src {
			t.Errorf("vault %d does not share the compilation of vault %d", i, i%2)
		}
	}
	if policies[0].src == policies[1].src {
		t.Error("the shipped policy alone and with purge-mfa share a compilation")
	}
	for i, p := range policies {
		if s := p.CacheStats(); s.Hits != vaults || s.Misses != vaults {
			t.Errorf("vault %d: the decision caches are not the vault's own: %+v", i, s)
		}
	}
}
