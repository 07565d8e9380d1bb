package metrics_test

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/metrics"
	"github.com/vaultwall/vaultwall/ops/opstest"
)

// The collector reports the current runtime's decision cache: two
// identical checks are one evaluation, then one hit.
func TestCacheCollector(t *testing.T) {
	r := opstest.New(t)
	rt := r.Runtime(r.WriteConfig("vault.yaml", ""))
	var current *engine.Runtime
	c := metrics.CacheCollector(func() []*engine.Runtime { return []*engine.Runtime{current} })
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("%d series before a runtime", n)
	}
	current = rt
	srv := r.Server(rt, nil)
	tok := r.Token()
	for range 2 {
		resp, err := srv.Check(t.Context(), opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("not allowed: %v %v", resp, err)
		}
	}
	want := `
# HELP vaultwall_policy_cache_hits_total Authorization verdicts served from the decision cache.
# TYPE vaultwall_policy_cache_hits_total counter
vaultwall_policy_cache_hits_total 1
# HELP vaultwall_policy_cache_misses_total Policy evaluations done for the decision cache (misses).
# TYPE vaultwall_policy_cache_misses_total counter
vaultwall_policy_cache_misses_total 1
# HELP vaultwall_policy_cache_enabled 1 when the loaded policy's verdicts are cached, 0 when it reads per-request input or volatile builtins.
# TYPE vaultwall_policy_cache_enabled gauge
vaultwall_policy_cache_enabled 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"vaultwall_policy_cache_hits_total", "vaultwall_policy_cache_misses_total", "vaultwall_policy_cache_enabled"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// Every decision-cache series is documented in docs/operations.md, by its
// name or a brace family (`vaultwall_policy_cache_{hits,misses}_total`).
func TestCacheMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for i, part := range strings.Split(string(doc), "`") {
		if i%2 == 0 {
			continue // outside backticks
		}
		pre, rest, ok := strings.Cut(part, "{")
		if !ok {
			documented[part] = true
			continue
		}
		alts, post, _ := strings.Cut(rest, "}")
		for _, a := range strings.Split(alts, ",") {
			documented[pre+a+post] = true
		}
	}
	for _, name := range metrics.CacheMetricNames() {
		if !documented[name] {
			t.Errorf("%s is not in docs/operations.md", name)
		}
	}
}
