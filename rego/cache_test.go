package rego_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/rego"
)

// The shipped policy reads only fields that describe the caller, the
// operation and the vault, so its verdicts are cached; an operator rule
// that reads a per-request field or calls a volatile builtin turns the
// cache off, and says why.
func TestDecisionCacheIsOnOnlyWhenTheVerdictIsAFunctionOfTheKey(t *testing.T) {
	cfg := load(t, accessPolicies)
	rule := func(body string) string {
		return policyDir(t, map[string]string{"r.rego": pkg + "deny contains \"x\" if {\n\t" + body + "\n}\n"})
	}
	tests := []struct {
		name string
		dir  string
		why  string // "" when the cache must be on
	}{
		{"shipped policy", "", ""},
		{"purge-mfa example (reads claims)", "examples/purge-mfa", ""},
		{"a rule on the client address", rule(`input.source.client_addr == "203.0.113.9"`), ""},
		{"business-hours example (reads input.time)", "examples/business-hours", "input.time"},
		{"input.decision_id", rule(`input.decision_id == "x"`), "input.decision_id"},
		{"input.request.id", rule(`input.request.id == "x"`), "input.request.id"},
		{"input.request.headers", rule(`input.request.headers["user-agent"] == "x"`), "input.request.headers"},
		{"the whole input", rule(`count(input) == 0`), "input.time"},
		{"a computed section", rule(`some s; input[s].name == "x"`), "input.time"},
		{"time.now_ns", rule(`time.now_ns() > 0`), "time.now_ns"},
		{"rand.intn", rule(`rand.intn("x", 10) == 3`), "rand.intn"},
		{"uuid.rfc4122", rule(`uuid.rfc4122("x") == "y"`), "uuid.rfc4122"},
		{"io.jwt.decode_verify", rule(`input.caller.subject == "never"` + "\n\t" + `[true, _, _] = io.jwt.decode_verify(input.caller.subject, {"secret": "k"})`), "io.jwt.decode_verify"},
		{"a certificate verified against the clock", rule(`[true, _] = crypto.x509.parse_and_verify_certificates("x")`), "crypto.x509.parse_and_verify_certificates"},
		{"a volatile builtin in a function", policyDir(t, map[string]string{"r.rego": pkg +
			"stamp(x) := time.now_ns() if x\n\ndeny contains \"x\" if stamp(input.caller.is_user) < 0\n"}), "time.now_ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, cfg, rego.WithDir(tt.dir))
			st := p.CacheStats()
			switch {
			case tt.why == "" && st.Disabled != "":
				t.Fatalf("cache off: %s", st.Disabled)
			case tt.why == "" && st.Capacity != rego.DefaultCacheEntries:
				t.Fatalf("capacity %d", st.Capacity)
			case tt.why != "" && !strings.Contains(st.Disabled, tt.why):
				t.Fatalf("cache: %+v; want it off because of %s", st, tt.why)
			case tt.why != "" && st.Capacity != 0:
				t.Fatalf("an uncacheable policy has a cache: %+v", st)
			}
		})
	}
	if st := newPolicy(t, cfg, rego.WithDecisionCache(-1)).CacheStats(); st.Disabled == "" {
		t.Errorf("WithDecisionCache(-1): %+v", st)
	}
}

// Every case changes one thing a cached verdict must not survive, after
// warming the cache with the verdict it must not serve again.
func TestDecisionCacheNeverServesAStaleVerdict(t *testing.T) {
	ap := load(t, accessPolicies)
	rb := load(t, rbac)
	pAP, pRBAC := newPolicy(t, ap), newPolicy(t, rb)

	t.Run("another caller", func(t *testing.T) {
		check(t, pAP, decision(ap, app(), getSecret), want{true, "", "accessPolicies[0]"})
		other := with(app(), func(c *authz.Caller) { c.ObjectID = "5e000000-0000-4000-8000-0000000000ff" })
		check(t, pAP, decision(ap, other, getSecret), want{code: authz.CodeAccessDenied})
	})
	t.Run("the same caller through another application", func(t *testing.T) {
		check(t, pAP, decision(ap, user(), setSecret), want{true, "", "accessPolicies[1]"})
		check(t, pAP, decision(ap, with(user(), func(c *authz.Caller) { c.ApplicationID = otherApp }), setSecret), want{code: authz.CodeAccessDenied})
	})
	t.Run("the same caller out of a group", func(t *testing.T) {
		check(t, pAP, decision(ap, user(opsGroup), getSecret), want{true, "", "accessPolicies[2]"})
		check(t, pAP, decision(ap, user(), getSecret), want{code: authz.CodeAccessDenied})
		check(t, pAP, decision(ap, with(user(opsGroup), func(c *authz.Caller) { c.GroupsOverage = true; c.Groups = nil }), getSecret), want{code: authz.CodeAccessDenied})
	})
	t.Run("another tenant", func(t *testing.T) {
		check(t, pAP, decision(ap, app(), getSecret), want{true, "", "accessPolicies[0]"})
		check(t, pAP, decision(ap, with(app(), func(c *authz.Caller) { c.TenantID = otherTenant }), getSecret), want{code: authz.CodeAccessDenied})
	})
	t.Run("another permission", func(t *testing.T) {
		check(t, pAP, decision(ap, app(), getSecret), want{true, "", "accessPolicies[0]"})
		check(t, pAP, decision(ap, app(), purgeSecret), want{code: authz.CodeAccessDenied})
	})
	t.Run("another object scope", func(t *testing.T) {
		cfg := load(t, `
properties:
  enableRbacAuthorization: true
  roleAssignments:
    - {id: ra-db, principalId: a11ce000-0000-4000-8000-000000000001, roleDefinitionId: Key Vault Secrets User, scope: /secrets/db}
`)
		p := newPolicy(t, cfg)
		check(t, p, decision(cfg, user(), getSecret), want{true, "", "roleAssignments[0]"})
		check(t, p, decision(cfg, user(), getOtherSecr), want{code: authz.CodeForbiddenByRbac})
		check(t, p, decision(cfg, user(), getSecret), want{true, "", "roleAssignments[0]"})
	})
	t.Run("RBAC and access policies", func(t *testing.T) {
		// The RBAC vault's access policy would grant app() every secret; its
		// assignments let it read only the secret db.
		v := check(t, pAP, decision(ap, app(), getOtherSecr), want{true, "", "accessPolicies[0]"})
		w := check(t, pRBAC, decision(rb, app(), getOtherSecr), want{code: authz.CodeForbiddenByRbac})
		if v.Model != authz.ModelAccessPolicy || w.Model != authz.ModelRBAC {
			t.Errorf("models %q, %q", v.Model, w.Model)
		}
		// The same Policy asked about a vault of the other model (the key
		// holds input.vault.rbac): a verdict in that model, never the cached one.
		d := decision(ap, app(), getOtherSecr)
		d.Vault.RBAC = true
		if v, err := pAP.Authorize(t.Context(), d); err != nil || v.Allowed || v.Model != authz.ModelRBAC {
			t.Errorf("other model: %+v, %v", v, err)
		}
	})
	t.Run("a policy reload", func(t *testing.T) {
		cfg := load(t, accessPolicies)
		p1 := newPolicy(t, cfg)
		check(t, p1, decision(cfg, app(), getSecret), want{true, "", "accessPolicies[0]"})
		cfg2 := load(t, strings.Replace(accessPolicies, "secrets: [Get, List]", "secrets: [List]", 1))
		p2 := newPolicy(t, cfg2)
		check(t, p2, decision(cfg2, app(), getSecret), want{code: authz.CodeAccessDenied})
		if st := p2.CacheStats(); st.Hits != 1 || st.Misses != 1 {
			t.Errorf("the new policy's cache: %+v, want its own first miss then a hit", st)
		}
		// The old policy, still serving in-flight checks, keeps its answer.
		check(t, p1, decision(cfg, app(), getSecret), want{true, "", "accessPolicies[0]"})
	})
	t.Run("an operator rule reading input.time", func(t *testing.T) {
		cfg := load(t, accessPolicies)
		p := newPolicy(t, cfg, rego.WithDir("examples/business-hours"))
		d := decision(cfg, user(opsGroup), getSecret) // Monday 10:00 in Amsterdam
		check(t, p, d, want{true, "", "accessPolicies[2]"})
		d.Time = monday10.Add(9 * time.Hour) // 19:00
		check(t, p, d, want{false, authz.CodeForbiddenByPolicy, "data.vaultwall.operator.deny[business-hours]"})
	})
	t.Run("an operator rule reading a claim", func(t *testing.T) {
		cfg := load(t, `
properties:
  accessPolicies:
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: a11ce000-0000-4000-8000-000000000001, permissions: {secrets: [all]}}
`)
		p := newPolicy(t, cfg, rego.WithDir("examples/purge-mfa"))
		check(t, p, decision(cfg, user(), purgeSecret), want{true, "", ""})
		noMFA := with(user(), func(c *authz.Caller) { c.Claims = map[string]any{"amr": []any{"pwd"}, "oid": alice} })
		check(t, p, decision(cfg, noMFA, purgeSecret), want{false, authz.CodeForbiddenByPolicy, "data.vaultwall.operator.deny[purge-mfa]"})
	})
}

// An entry is served until the caller's token expires, never from then on;
// a caller whose token has no exp is never cached.
func TestDecisionCacheEndsWithTheToken(t *testing.T) {
	cfg := load(t, accessPolicies)
	p := newPolicy(t, cfg)
	c := with(app(), func(c *authz.Caller) { c.Expires = monday10.Add(time.Minute) })
	at := func(tm time.Time) {
		t.Helper()
		d := decision(cfg, c, getSecret)
		d.Time = tm
		if v, err := p.Authorize(t.Context(), d); err != nil || !v.Allowed {
			t.Fatalf("%+v %v", v, err)
		}
	}
	stats := func(hits, misses uint64) {
		t.Helper()
		if st := p.CacheStats(); st.Hits != hits || st.Misses != misses {
			t.Fatalf("hits %d, misses %d; want %d, %d", st.Hits, st.Misses, hits, misses)
		}
	}
	at(monday10)
	stats(0, 1)
	at(monday10.Add(59 * time.Second))
	stats(1, 1)
	at(monday10.Add(time.Minute)) // the token's exp: evaluated, not cached
	stats(1, 1)
	at(monday10.Add(time.Minute))
	stats(1, 1)
	if st := p.CacheStats(); st.Entries != 1 {
		t.Errorf("entries %d", st.Entries)
	}

	noExp := with(app(), func(c *authz.Caller) { c.Expires = time.Time{} })
	for range 2 {
		if v, err := p.Authorize(t.Context(), decision(cfg, noExp, listSecrets)); err != nil || !v.Allowed {
			t.Fatalf("%+v %v", v, err)
		}
	}
	stats(1, 1)
}

// Concurrent misses on one key evaluate once; every caller gets the verdict.
func TestDecisionCacheSingleFlight(t *testing.T) {
	cfg := load(t, accessPolicies+"policy: {timeout: 10s}\n")
	p := newPolicy(t, cfg, rego.WithDir("examples/purge-mfa"))
	d := decision(cfg, user(opsGroup), getSecret)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			<-start
			if v, err := p.Authorize(t.Context(), d); err != nil || !v.Allowed {
				t.Errorf("%+v %v", v, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if st := p.CacheStats(); st.Misses != 1 || st.Hits+st.Coalesced != 15 {
		t.Errorf("%+v: want one evaluation, 15 served without one", st)
	}
}

// The cache holds at most its capacity, whatever the number of keys.
func TestDecisionCacheIsBounded(t *testing.T) {
	cfg := load(t, accessPolicies)
	p := newPolicy(t, cfg, rego.WithDecisionCache(32))
	for i := range 500 {
		c := with(app(), func(c *authz.Caller) { c.Groups = []string{strings.Repeat("g", i)} })
		if _, err := p.Authorize(t.Context(), decision(cfg, c, getSecret)); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.CacheStats(); st.Entries > 32 || st.Misses != 500 || st.Evictions < 500-32 {
		t.Errorf("%+v", st)
	}
}

// BenchmarkAuthorizeCached is the authorize stage when the verdict is in
// the cache: the key built from the decision, one lookup.
func BenchmarkAuthorizeCached(b *testing.B) {
	for _, n := range []int{10, 10000} {
		for _, rbac := range []bool{false, true} {
			name := "accessPolicies"
			if rbac {
				name = "roleAssignments"
			}
			b.Run(name+"="+itoa(n), func(b *testing.B) {
				cfg := benchConfig(b, n, rbac)
				p, err := rego.New(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				vault := cfg.AuthzVault()
				d := benchDecision(&vault)
				d.Caller.Expires = d.Time.Add(time.Hour)
				b.ReportAllocs()
				for b.Loop() {
					if v, err := p.Authorize(b.Context(), d); err != nil || !v.Allowed {
						b.Fatalf("%+v %v", v, err)
					}
				}
				if st := p.CacheStats(); st.Misses != 1 {
					b.Fatalf("%+v", st)
				}
			})
		}
	}
}
