package metrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/metrics"
	"github.com/vaultwall/vaultwall/ops/opstest"
)

func TestDecisionLabelsAreClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Observe(&authz.Decision{Allowed: true, Stage: authz.StageAuthorize}, time.Millisecond)
	m.Observe(&authz.Decision{Stage: authz.StageFirewall, Denial: &authz.Denial{Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall"}}, 0)
	// A code nobody listed (an operator's, a future stage's) is "other",
	// never a new series; an out-of-range stage is "none".
	m.Observe(&authz.Decision{Stage: authz.Stage(42), Denial: &authz.Denial{Status: 418, Code: "user-chosen-<script>"}}, 0)
	m.Observe(&authz.Decision{Stage: authz.StageAuthenticate}, 0) // no denial: fail closed
	got, err := testutil.GatherAndCount(reg, "vaultwall_decisions_total")
	if err != nil {
		t.Fatal(err)
	}
	if got != 6*len(metrics.Codes) {
		t.Fatalf("%d series, want every stage × code pre-created (%d)", got, 6*len(metrics.Codes))
	}
	for labels, n := range map[[2]string]float64{
		{"authorize", "OK"}: 1, {"firewall", "ForbiddenByFirewall"}: 1, {"none", "other"}: 1, {"authenticate", "InternalServerError"}: 1,
	} {
		c, err := counter(reg, labels[0], labels[1])
		if err != nil || c != n {
			t.Errorf("%v = %v (%v), want %v", labels, c, err, n)
		}
	}
	mf, _ := reg.Gather()
	for _, f := range mf {
		if strings.Contains(f.String(), "script") {
			t.Fatal("a request-chosen code became a label value")
		}
	}
}

func counter(reg *prometheus.Registry, stage, code string) (float64, error) {
	mf, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range mf {
		if f.GetName() != "vaultwall_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["stage"] == stage && l["code"] == code {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, errors.New("no such series")
}

// Observe allocates nothing: it runs on every Check.
func TestObserveDoesNotAllocate(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	d := &authz.Decision{Stage: authz.StageFirewall, Denial: &authz.Denial{Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall"}}
	if n := testing.AllocsPerRun(1000, func() { m.Observe(d, time.Microsecond) }); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
}

func TestRefreshEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.OnRefresh(token.RefreshEvent{Issuer: "https://sts.test/", Trigger: token.TriggerBackground, Took: time.Millisecond, Keys: 2})
	m.OnRefresh(token.RefreshEvent{Issuer: "https://sts.test/", Trigger: token.TriggerUnknownKID, Err: errors.New("boom")})
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vaultwall_jwks_refresh_total Fetches of an issuer's signing keys, by trigger and result (success, error).
# TYPE vaultwall_jwks_refresh_total counter
vaultwall_jwks_refresh_total{issuer="https://sts.test/",result="error",trigger="unknown_kid"} 1
vaultwall_jwks_refresh_total{issuer="https://sts.test/",result="success",trigger="background"} 1
`), "vaultwall_jwks_refresh_total")
	if err != nil {
		t.Fatal(err)
	}
}

// The token cache counters survive a reload (a new authenticator starts
// its cache from zero).
func TestCacheCountersSurviveSwap(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	tok := r.Token()
	var prev *engine.Runtime
	for range 2 {
		if prev != nil {
			prev.Close() // the last user of its authenticator: the next runtime gets a new one
		}
		rt := r.Runtime(path)
		prev = rt
		m.Swap(rt)
		srv := r.Server(rt, nil)
		for range 3 {
			srv.Decide(t.Context(), opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
		}
	}
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vaultwall_token_cache_hits_total Tokens served from the verified-token cache.
# TYPE vaultwall_token_cache_hits_total counter
vaultwall_token_cache_hits_total 4
# HELP vaultwall_token_cache_misses_total Tokens verified because they were not in the cache.
# TYPE vaultwall_token_cache_misses_total counter
vaultwall_token_cache_misses_total 2
`), "vaultwall_token_cache_hits_total", "vaultwall_token_cache_misses_total")
	if err != nil {
		t.Fatal(err)
	}
}

// A refused token is verified once, then refused from the refused-token
// cache; its hits survive a reload like the verified-token cache's.
func TestRefusedCacheCounters(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	tok := authztest.Tamper(r.Token())
	var prev *engine.Runtime
	for range 2 {
		if prev != nil {
			prev.Close() // the last user of its authenticator: the next runtime gets a new one
		}
		rt := r.Runtime(path)
		prev = rt
		m.Swap(rt)
		srv := r.Server(rt, nil)
		for range 3 {
			srv.Decide(t.Context(), opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
		}
	}
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vaultwall_token_refused_cache_hits_total Tokens refused from the refused-token cache (final refusals: bad signature, expired, wrong audience…) without verifying them again.
# TYPE vaultwall_token_refused_cache_hits_total counter
vaultwall_token_refused_cache_hits_total 4
# HELP vaultwall_token_refused_cache_entries Refused tokens held in the refused-token cache.
# TYPE vaultwall_token_refused_cache_entries gauge
vaultwall_token_refused_cache_entries 1
`), "vaultwall_token_refused_cache_hits_total", "vaultwall_token_refused_cache_entries")
	if err != nil {
		t.Fatal(err)
	}
}

// TestVaultLabelIsOptIn: decisions are counted by vault only when the
// operator turns it on, never for a request no vault answered (its host is
// the client's to choose), and turning it off drops the series.
func TestVaultLabelIsOptIn(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	contoso := &authz.Vault{Name: "contoso-vault"}
	allow := &authz.Decision{Allowed: true, Stage: authz.StageAuthorize, Vault: contoso}
	unknown := &authz.Decision{Stage: authz.StageVault, Vault: &authz.Vault{},
		Denial: &authz.Denial{Status: 400, Code: "BadRequest", Inner: "VaultNotFound"}}
	count := func() int {
		n, err := testutil.GatherAndCount(reg, "vaultwall_vault_decisions_total")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	m.Observe(allow, 0)
	if n := count(); n != 0 {
		t.Fatalf("%d per-vault series without the opt-in", n)
	}
	m.SetVaultLabel(true)
	m.Observe(allow, 0)
	m.Observe(allow, 0)
	m.Observe(unknown, 0)
	if n := count(); n != 1 {
		t.Fatalf("%d per-vault series, want contoso's only", n)
	}
	if c, err := counter(reg, "vault", "VaultNotFound"); err != nil || c != 1 {
		t.Errorf("the unknown host is not counted in the aggregate: %v %v", c, err)
	}
	m.SetVaultLabel(false)
	if n := count(); n != 0 {
		t.Errorf("%d per-vault series after turning it off", n)
	}
}

// Runtimes that verify tokens alike share one authenticator (vaults of one
// tenant, a reload that left identity alone): its counters go on, never
// counted twice.
func TestSharedAuthenticatorCountedOnce(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	tok := r.Token()
	a, b := r.Runtime(path), r.Runtime(path)
	if a.Authenticator != b.Authenticator {
		t.Fatal("two runtimes of one identity and tenant do not share an authenticator")
	}
	for _, rt := range []*engine.Runtime{a, b} {
		m.SwapSet(&engine.Set{Runtimes: []*engine.Runtime{a, rt}})
		srv := r.Server(rt, nil)
		for range 3 {
			srv.Decide(t.Context(), opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
		}
	}
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vaultwall_token_cache_hits_total Tokens served from the verified-token cache.
# TYPE vaultwall_token_cache_hits_total counter
vaultwall_token_cache_hits_total 5
# HELP vaultwall_token_cache_misses_total Tokens verified because they were not in the cache.
# TYPE vaultwall_token_cache_misses_total counter
vaultwall_token_cache_misses_total 1
`), "vaultwall_token_cache_hits_total", "vaultwall_token_cache_misses_total")
	if err != nil {
		t.Fatal(err)
	}
}
