package token_test

import (
	"fmt"
	"testing"

	"github.com/vaultwall/vaultwall/authz/token"
)

// BenchmarkVerify is a first verification (the cache is off): parse, key
// lookup, signature, claims, Caller.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384"} {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, func(id *token.Identity, _ *token.StoreOptions) { id.TokenCache.MaxEntries = -1 })
			f.iss.Rotate(alg)
			f.clk.Advance(minInterval)
			req := bearer(f.iss.MintValid())
			mustAllow(b, f.authn, req)
			b.ReportAllocs()
			for b.Loop() {
				if c, _, _ := f.authn.Authenticate(b.Context(), req, nil); c == nil {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkCached is a verification served from the cache, on one
// goroutine and on every core, for a typical app token and for a user token
// carrying 150 groups: the token hashed (maphash), one lookup, and the
// stored token compared in full.
func BenchmarkCached(b *testing.B) {
	f := newFixture(b)
	groups := make([]string, 150)
	for i := range groups {
		groups[i] = fmt.Sprintf("%08d-0000-0000-0000-000000000000", i)
	}
	big := f.iss.Claims()
	big["groups"], big["idtyp"], big["scp"] = groups, "user", "user_impersonation"
	for _, tc := range []struct {
		name string
		tok  string
	}{{"app", f.iss.MintValid()}, {"150groups", f.iss.Mint(big)}} {
		req := bearer(tc.tok)
		mustAllow(b, f.authn, req)
		b.Run(fmt.Sprintf("%s-%dB/serial", tc.name, len(tc.tok)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c, _, _ := f.authn.Authenticate(b.Context(), req, nil); c == nil {
					b.Fatal("refused")
				}
			}
		})
		b.Run(fmt.Sprintf("%s-%dB/parallel", tc.name, len(tc.tok)), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if c, _, _ := f.authn.Authenticate(b.Context(), req, nil); c == nil {
						b.Error("refused")
						return
					}
				}
			})
		})
	}
}

// BenchmarkMissingToken is the Azure SDK's first, token-less probe.
func BenchmarkMissingToken(b *testing.B) {
	f := newFixture(b)
	req := request("")
	b.ReportAllocs()
	for b.Loop() {
		if _, d, _ := f.authn.Authenticate(b.Context(), req, nil); d == nil {
			b.Fatal("allowed")
		}
	}
}
