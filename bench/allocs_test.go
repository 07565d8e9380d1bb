package bench_test

import (
	"testing"

	"github.com/vaultwall/vaultwall/bench/workload"
)

// TestCheckAllocsCached counts the allocations of one Check whose token
// and verdict are both cached (an allowed request seen before), through
// envoy.Server.Check on a pipeline built by engine.Builder: at most 5.
func TestCheckAllocsCached(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a workload")
	}
	srv, _, w := server(t, workload.Options{IPRules: 10, SubnetRules: 2, AccessPolicies: 10, Requests: 200})
	ctx := t.Context()
	seen := 0
	for _, r := range w.Requests {
		if r.Kind != workload.Allowed || seen == 20 {
			continue
		}
		seen++
		for range 3 { // the token and the verdict are cached
			if _, err := srv.Check(ctx, r.Check); err != nil {
				t.Fatal(err)
			}
		}
		n := testing.AllocsPerRun(100, func() { _, _ = srv.Check(ctx, r.Check) })
		if n > 5 {
			t.Fatalf("%s %s: %.0f allocations per cached Check, want at most 5",
				r.Check.GetAttributes().GetRequest().GetHttp().GetMethod(), r.Check.GetAttributes().GetRequest().GetHttp().GetPath(), n)
		}
	}
}

// BenchmarkCheckCached is one Check of an allowed request whose token and
// verdict are cached.
func BenchmarkCheckCached(b *testing.B) {
	srv, _, w := server(b, workload.Options{IPRules: 10, SubnetRules: 2, AccessPolicies: 10, Requests: 200})
	var reqs []workload.Request
	for _, r := range w.Requests {
		if r.Kind == workload.Allowed {
			reqs = append(reqs, r)
		}
	}
	ctx := b.Context()
	for _, r := range reqs {
		if _, err := srv.Check(ctx, r.Check); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := srv.Check(ctx, reqs[i].Check); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
}
