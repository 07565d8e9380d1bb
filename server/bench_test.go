package server_test

import (
	"io"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/server"
)

// BenchmarkCheck is the cost of one envoy.Server.Check (CheckRequest →
// decision → CheckResponse, an allowed secret read with a cached token) on a
// built pipeline, without an observer and with each part of the operations
// stack. The audit writer and shadow workers run on other goroutines; their
// drops (records the queue had no room for) are reported per op.
func BenchmarkCheck(b *testing.B) {
	r := opstest.New(b)
	r.Write("shadow-policy/ops.rego", "package vaultwall.operator\n\ndeny contains \"no\" if input.operation.permission == \"delete\"\n")
	cases := []struct {
		name  string
		extra string // configuration sections; "-" for no observer at all
	}{
		{"observer=none", "-"},
		{"observer=metrics", ""},
		{"observer=metrics+audit", "audit: {enabled: true}\n"},
		{"observer=metrics+shadow", "shadow: {policyDir: shadow-policy}\n"},
		{"observer=metrics+shadow@0.1", "shadow: {policyDir: shadow-policy, sampleRate: 0.1}\n"},
		{"observer=metrics+audit+shadow", "audit: {enabled: true}\nshadow: {policyDir: shadow-policy}\n"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			extra := c.extra
			if extra == "-" {
				extra = ""
			}
			path := r.WriteConfig("vault.yaml", extra)
			cfg, err := config.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			st, err := server.NewStack(b.Context(), path, cfg, server.Options{Store: r.StoreOptions(), Stdout: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close(b.Context())
			rt, err := st.Builder().Build(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			rt.Config = cfg
			defer rt.Close()
			if err := rt.Authenticator.WaitReady(b.Context()); err != nil {
				b.Fatal(err)
			}
			st.OnSwap(engine.SetOf(rt))
			var obs authz.Observer = st
			if c.extra == "-" {
				obs = nil
			}
			srv := envoy.NewServer(nil, obs)
			srv.SetPipeline(rt.Pipeline)
			cr := opstest.Check(r.Token(), "203.0.113.10", "GET", "/secrets/db?api-version=7.5")
			if resp, _ := srv.Check(b.Context(), cr); resp.GetStatus().GetCode() != 0 {
				b.Fatalf("not allowed: %v", resp)
			}
			if ev := st.Shadow(); ev != nil {
				for ev.Engine().Current() == nil {
					b.Fatal("shadow candidate not loaded")
				}
			}
			auditDrops0, shadowDrops0 := st.AuditCounters().Dropped.Load(), st.ShadowStats().Dropped.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_, _ = srv.Check(b.Context(), cr)
			}
			b.StopTimer()
			if c.extra != "-" {
				b.ReportMetric(float64(st.AuditCounters().Dropped.Load()-auditDrops0)/float64(b.N), "audit-drops/op")
				b.ReportMetric(float64(st.ShadowStats().Dropped.Load()-shadowDrops0)/float64(b.N), "shadow-drops/op")
			}
		})
	}
}

// BenchmarkObserve is the hot-path cost of the stack's Observe alone.
func BenchmarkObserve(b *testing.B) {
	r := opstest.New(b)
	for _, c := range []struct{ name, extra string }{
		{"metrics", ""},
		{"metrics+audit", "audit: {enabled: true, queueSize: 1048576}\n"},
		{"metrics+audit+shadow", "audit: {enabled: true, queueSize: 1048576}\nshadow: {queueSize: 1048576, policyDir: .}\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := r.WriteConfig("vault.yaml", c.extra)
			cfg, err := config.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			st, err := server.NewStack(b.Context(), path, cfg, server.Options{Store: r.StoreOptions(), Stdout: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close(b.Context())
			rt := r.Runtime(path)
			d := r.Server(rt, nil).Decide(b.Context(), opstest.Check(r.Token(), "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
			b.ReportAllocs()
			for b.Loop() {
				st.Observe(d, 0)
			}
		})
	}
}
