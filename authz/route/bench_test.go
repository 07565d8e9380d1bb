package route_test

import (
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/route"
)

// benchMix is weighted like a vault's traffic: mostly secret reads and key
// wrap/unwrap by services, some listing and writes, a probe.
var benchMix = func() []*authz.Request {
	v := route.ExampleVersion
	json := map[string]string{"content-type": "application/json", "user-agent": "azsdk-go-azkeys/v1.4.0"}
	return []*authz.Request{
		{Method: "GET", Path: "/secrets/db-password?api-version=2026-04-01"},
		{Method: "GET", Path: "/secrets/db-password/?api-version=2026-04-01"},
		{Method: "GET", Path: "/secrets/db-password/" + v + "?api-version=7.5"},
		{Method: "GET", Path: "/secrets/tls-cert?api-version=7.5"},
		{Method: "POST", Path: "/keys/storage-cmk/wrapkey?api-version=2025-07-01", Headers: json},
		{Method: "POST", Path: "/keys/storage-cmk/" + v + "/unwrapkey?api-version=7.5", Headers: json},
		{Method: "POST", Path: "/keys/sql-tde//unwrapkey?api-version=7.5", Headers: json},
		{Method: "GET", Path: "/keys/storage-cmk/" + v + "?api-version=7.5"},
		{Method: "GET", Path: "/secrets?api-version=2026-04-01&maxresults=25"},
		{Method: "PUT", Path: "/secrets/db-password?api-version=2026-04-01", Headers: json},
		{Method: "GET", Path: "/certificates/web/policy?api-version=7.5"},
		{Method: "GET", Path: "/healthstatus"},
	}
}()

func BenchmarkClassify(b *testing.B) {
	r := route.New()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, den := r.Classify(benchMix[i%len(benchMix)]); den != nil {
			b.Fatal(den.Message)
		}
		i++
	}
}

// BenchmarkClassifyRefused is the cost of turning away junk.
func BenchmarkClassifyRefused(b *testing.B) {
	r := route.New()
	junk := []*authz.Request{
		{Method: "GET", Path: "/secrets/a%2Fb?api-version=7.5"},
		{Method: "GET", Path: "/secrets/../keys/k"},
		{Method: "GET", Path: "/wp-admin/index.php"},
		{Method: "GET", Path: "/secrets/my_secret"},
		{Method: "PUT", Path: "/keys/k/versions"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, den := r.Classify(junk[i%len(junk)]); den == nil {
			b.Fatal("classified junk")
		}
		i++
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = route.New()
	}
}
