package rego_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/rego"
)

// vaultConfig is vault i of many: its own name, resource id and n access
// policies whose object ids no other vault uses.
func vaultConfig(tb testing.TB, i, n int) *config.Config {
	tb.Helper()
	name := fmt.Sprintf("vault%04d", i)
	id := "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name
	y := fmt.Sprintf("vault:\n  name: %s\n  tenantId: %s\n  location: westeurope\n  resourceId: %s\nproperties:\n  tenantId: %s\n  accessPolicies:\n", name, tenant, id, tenant)
	for j := range n {
		y += fmt.Sprintf("  - tenantId: %s\n    objectId: %08x-0000-4000-8000-%012x\n    permissions: {secrets: [get, list]}\n", tenant, i, j)
	}
	cfg, err := config.Parse(name+".yaml", []byte(y))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkNewShared measures building the Nth vault's Policy once N-1
// vaults with the same policy sources are built and alive (100 access
// policies each): ns/op, cpu-ns/op and B/op are one more vault's build;
// live-B/vault is the heap the N vaults keep, divided by N, and
// setup-cpu-ns/vault the average CPU time building those N took (GC
// included).
func BenchmarkNewShared(b *testing.B) {
	for _, vaults := range []int{1, 1000} {
		b.Run(fmt.Sprintf("vaults=%d", vaults), func(b *testing.B) {
			cfgs := make([]*config.Config, vaults)
			for i := range cfgs {
				cfgs[i] = vaultConfig(b, i, 100)
			}
			next := vaultConfig(b, vaults, 100)
			before := liveHeap()
			keep := make([]*rego.Policy, vaults)
			start := cpuTime()
			for i, cfg := range cfgs {
				p, err := rego.New(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				keep[i] = p
			}
			setup := cpuTime() - start
			after := liveHeap()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := rego.New(b.Context(), next); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(after-before)/float64(vaults), "live-B/vault")
			b.ReportMetric(float64(setup.Nanoseconds())/float64(vaults), "setup-cpu-ns/vault")
			runtime.KeepAlive(keep)
		})
	}
}
