package bench_test

import (
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/bench/workload"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

// sizes are the rule counts the Check benchmark compares: CPU per Check
// must barely grow from a handful of rules to ten thousand.
var sizes = []struct {
	name                 string
	ip, subnets, entries int
}{
	{"rules=10", 10, 2, 10},
	{"rules=1000", 1000, 200, 1000},
	{"rules=10000", 10000, 1000, 10000},
}

// server builds the workload's vault through engine.Builder, the way
// `vaultwall serve` does, and checks that every request of the data set has
// the outcome it was made to have.
func server(tb testing.TB, o workload.Options) (*envoy.Server, *engine.Runtime, *workload.Workload) {
	tb.Helper()
	w, err := generate(o)
	if err != nil {
		tb.Fatal(err)
	}
	path, err := w.WriteDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	keys := token.NewKeyStore(token.StoreOptions{})
	tb.Cleanup(func() { _ = keys.Close() })
	rt, err := (&engine.Builder{Keys: keys}).Build(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(cfg.Annotate(err))
	}
	tb.Cleanup(rt.Close)
	if err := rt.Authenticator.WaitReady(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	srv := envoy.NewServer(nil, nil)
	srv.SetPipeline(rt.Pipeline)
	if err := w.Verify(func(cr *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return srv.Check(tb.Context(), cr)
	}); err != nil {
		tb.Fatal(err)
	}
	return srv, rt, w
}

// BenchmarkCheck is one Check through envoy.Server on a pipeline built by
// engine.Builder: CheckRequest in, CheckResponse out, over the load
// benchmark's request mix (70% allowed, 10% each firewall-denied, 401 and
// policy-denied, across 1,000 callers), at 10 and 10,000 rules and access
// policies. cpu-ns/op is the process's CPU time per Check (GC included).
func BenchmarkCheck(b *testing.B) {
	for _, sz := range sizes {
		b.Run(sz.name, func(b *testing.B) {
			srv, rt, w := server(b, workload.Options{IPRules: sz.ip, SubnetRules: sz.subnets, AccessPolicies: sz.entries})
			reqs := w.Requests
			ctx := b.Context()
			tok0, pol0 := rt.Authenticator.CacheStats(), rt.Policy.CacheStats()
			b.ReportAllocs()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := srv.Check(ctx, reqs[i].Check); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(reqs) {
					i = 0
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			tok, pol := rt.Authenticator.CacheStats(), rt.Policy.CacheStats()
			b.ReportMetric(hitRate(tok.Hits-tok0.Hits, tok.Misses-tok0.Misses), "token-hit-%")
			b.ReportMetric(hitRate(pol.Hits-pol0.Hits, pol.Misses-pol0.Misses), "policy-hit-%")
		})
	}
}

// TestWorkloadMix proves the benchmark's data set is what it claims, at
// both sizes, through the real in-process path.
func TestWorkloadMix(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			_, _, w := server(t, workload.Options{IPRules: sz.ip, SubnetRules: sz.subnets, AccessPolicies: sz.entries, Requests: 2000})
			mix := w.Mix()
			for _, k := range workload.Kinds() {
				share := 100 * float64(mix[k]) / float64(len(w.Requests))
				want := map[workload.Kind]float64{workload.Allowed: 70, workload.FirewallDenied: 10, workload.Unauthorized: 10, workload.PolicyDenied: 10}[k]
				if share < want-3 || share > want+3 {
					t.Errorf("%s: %.1f%% of the data set, want about %.0f%%", k, share, want)
				}
			}
			if w.Tokens < 500 {
				t.Errorf("the data set carries %d distinct tokens, want many callers", w.Tokens)
			}
		})
	}
}

// generated keeps workloads across a benchmark's -count runs: signing a
// thousand RS256 tokens takes a second.
var generated = struct {
	sync.Mutex
	m map[workload.Options]*workload.Workload
}{m: map[workload.Options]*workload.Workload{}}

func generate(o workload.Options) (*workload.Workload, error) {
	generated.Lock()
	defer generated.Unlock()
	if w, ok := generated.m[o]; ok {
		return w, nil
	}
	w, err := workload.Generate(o)
	if err == nil {
		generated.m[o] = w
	}
	return w, err
}

func hitRate(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return 100 * float64(hits) / float64(hits+misses)
}

// cpuTime is the process's CPU time (all threads, GC included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
