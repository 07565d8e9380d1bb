package rego_test

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/rego"
)

// benchConfig is a vault with n access policies (or n role assignments
// under RBAC), one of which grants the benchmark's caller.
func benchConfig(tb testing.TB, n int, rbac bool) *config.Config {
	tb.Helper()
	cfg := &config.Config{}
	cfg.Vault = config.Vault{Name: "contoso", TenantID: tenant, Location: "westeurope", ResourceID: vaultID}
	cfg.Policy.Timeout = config.Duration(time.Second)
	cfg.Properties.EnableRbacAuthorization = rbac
	for i := range n {
		oid := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		if i == n/2 {
			oid = alice
		}
		if rbac {
			cfg.Properties.RoleAssignments = append(cfg.Properties.RoleAssignments, authz.RoleAssignment{
				ID: fmt.Sprintf("ra-%d", i), PrincipalID: oid, RoleDefinitionID: "Key Vault Secrets User"})
		} else {
			cfg.Properties.AccessPolicies = append(cfg.Properties.AccessPolicies, authz.AccessPolicy{
				TenantID: tenant, ObjectID: oid, Permissions: authz.Permissions{Secrets: []string{"get", "list"}}})
		}
	}
	return cfg
}

// BenchmarkAuthorize measures the authorize stage per Check: building the
// input, evaluating the prepared query, decoding the result. The caller is
// granted by the entry (or assignment) in the middle of n; "refused" asks for
// a permission nobody has, which also builds the refusal's reason; "operator"
// adds the two example operator rules. The caller has no token exp, so the
// decision cache stays out of it: this is the cost of an evaluation (a
// cache miss); BenchmarkAuthorizeCached is a hit.
func BenchmarkAuthorize(b *testing.B) {
	refused := func(d *authz.Decision) {
		d.Operation.Permission, d.Operation.DataAction = "purge", "Microsoft.KeyVault/vaults/secrets/purge/action"
	}
	cases := []struct {
		name   string
		rbac   bool
		n      int
		dir    string
		adjust func(*authz.Decision)
		allow  bool
	}{
		{"accessPolicies=10", false, 10, "", nil, true},
		{"accessPolicies=10000", false, 10000, "", nil, true},
		{"roleAssignments=10", true, 10, "", nil, true},
		{"roleAssignments=10000", true, 10000, "", nil, true},
		{"accessPolicies=10000/refused", false, 10000, "", refused, false},
		{"roleAssignments=10000/refused", true, 10000, "", refused, false},
		{"accessPolicies=10000/operator", false, 10000, "examples", nil, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := benchConfig(b, tc.n, tc.rbac)
			p, err := rego.New(b.Context(), cfg, rego.WithDir(tc.dir))
			if err != nil {
				b.Fatal(err)
			}
			vault := cfg.AuthzVault()
			d := benchDecision(&vault)
			if tc.adjust != nil {
				tc.adjust(d)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				v, err := p.Authorize(b.Context(), d)
				if err != nil || v.Allowed != tc.allow {
					b.Fatalf("%+v %v", v, err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's CPU time (all threads, GC included). On a
// shared machine wall-clock ns/op measures the neighbours; CPU time per
// operation measures this code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const (
	tenant  = "00000000-0000-0000-0000-000000000001"
	vaultID = "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso"
	alice   = "a11ce000-0000-4000-8000-000000000001"
	webApp  = "a9900000-0000-4000-8000-000000000001"
)

func benchDecision(v *authz.Vault) *authz.Decision {
	c := &authz.Caller{Issuer: "https://sts.windows.net/" + tenant + "/", TenantID: tenant, ObjectID: alice, ApplicationID: webApp,
		IdentityType: "user", Groups: []string{"9a000000-0000-4000-8000-000000000001", "9a000000-0000-4000-8000-000000000002"},
		Scopes: []string{"user_impersonation"},
		Claims: map[string]any{"aud": "https://vault.azure.net", "iss": "https://sts.windows.net/" + tenant + "/", "iat": 1.7e9, "nbf": 1.7e9, "exp": 1.7e9,
			"amr": []any{"pwd", "mfa"}, "appid": webApp, "appidacr": "0", "idtyp": "user", "name": "Alice", "oid": alice, "scp": "user_impersonation",
			"sub": "abc", "tid": tenant, "upn": "alice@contoso.example", "ver": "1.0"}}
	c.Seal()
	return &authz.Decision{ID: "d1", Time: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), Vault: v,
		Request: &authz.Request{ID: "r1", Method: "GET", Path: "/secrets/db?api-version=7.5", Host: "contoso.vault.azure.net", Scheme: "https",
			Headers: map[string]string{"user-agent": "azsdk-go-azsecrets/v1.5", "x-ms-client-request-id": "c1", "authorization": "Bearer x"}},
		Operation: authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet",
			DataAction: "Microsoft.KeyVault/vaults/secrets/getSecret/action", Object: "db", Scope: "/secrets/db", Method: "GET", APIVersion: "7.5"},
		Caller:  c,
		Network: authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")}, Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "defaultAction=Allow"},
	}
}

// BenchmarkNew measures a reload: compile, prepare, build and index the data,
// evaluate the samples.
func BenchmarkNew(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			cfg := benchConfig(b, n, false)
			cfg.Properties.RoleAssignments = benchConfig(b, n, true).Properties.RoleAssignments
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rego.New(b.Context(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
