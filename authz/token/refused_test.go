package token_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
)

// verifications is how many tokens were verified from scratch so far.
func verifications(f *fixture) uint64 { return f.authn.CacheStats().Misses }

// A final refusal — a forged signature under a published key, an expired
// token, a wrong audience or tenant, a malformed token — is verified once;
// the same token is then refused from the refused-token cache with the
// same answer (an expiry's message states the current time), never
// allowed.
func TestRefusedCached(t *testing.T) {
	f := newFixture(t)
	stranger := authztest.WrapSigningKey(t, f.iss.Key().KID, "RS256", authztest.NewSigningKey(t, "RS256").Signer)
	expired := f.iss.Claims()
	expired["exp"] = f.clk.Now().Add(-time.Hour).Unix()
	wrongAud := f.iss.Claims()
	wrongAud["aud"] = "https://storage.azure.com"
	wrongTenant := f.iss.Claims()
	wrongTenant["tid"] = "00000000-0000-0000-0000-00000000ffff"
	for _, tc := range []struct{ name, tok, want string }{
		{"forged", authztest.Sign(t, stranger, nil, f.iss.Claims()), "signature is invalid"},
		{"tampered", authztest.Tamper(f.iss.MintValid()), "signature is invalid"},
		{"expired", f.iss.Mint(expired), "Token is expired"},
		{"audience", f.iss.Mint(wrongAud), "AKV10022"},
		{"tenant", f.iss.Mint(wrongTenant), "Expected tenant"},
		{"alg none", authztest.Unsigned(t, f.iss.Key().KID, f.iss.Claims()), "none"},
		{"claims", authztest.SignBytes(t, f.iss.Key(), nil, []byte(`{"iss": 1`)), "claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := mustDeny(t, f.authn, bearer(tc.tok), tc.want)
			v := verifications(f)
			hits := f.authn.RefusedCacheStats().Hits
			f.clk.Advance(time.Minute)
			again := mustDeny(t, f.authn, bearer(tc.tok), tc.want)
			if verifications(f) != v || f.authn.RefusedCacheStats().Hits != hits+1 {
				t.Errorf("the refusal was verified again (verifications %d → %d)", v, verifications(f))
			}
			if again == first {
				t.Error("two requests share one Denial")
			}
			wantMsg := first.Message
			if tc.name == "expired" {
				stamp := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }
				wantMsg = strings.Replace(first.Message, "current time "+stamp(f.clk.Now().Add(-time.Minute)), "current time "+stamp(f.clk.Now()), 1)
				if wantMsg == first.Message {
					t.Fatalf("message %q states no current time", first.Message)
				}
			}
			if again.Message != wantMsg || again.Status != first.Status || again.Challenge != first.Challenge {
				t.Errorf("cached refusal %+v, want %+v with message %q", again, first, wantMsg)
			}
		})
	}
	// The valid token of the same caller is unaffected.
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
}

// Refusals that time or a key refresh can undo are never cached: a token
// whose kid is not published yet is allowed once its key is, and one not
// yet valid once its nbf has come.
func TestRefusedNotFinalNotCached(t *testing.T) {
	f := newFixture(t)
	next := authztest.NewSigningKey(t, "RS256")
	early := authztest.Sign(t, next, nil, f.iss.Claims())
	mustDeny(t, f.authn, bearer(early), "not among the published keys")
	mustDeny(t, f.authn, bearer(early), "not among the published keys")
	f.iss.Publish(next)
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(early))

	c := f.iss.Claims()
	c["nbf"] = f.clk.Now().Add(time.Hour).Unix()
	notYet := f.iss.Mint(c)
	mustDeny(t, f.authn, bearer(notYet), "not yet valid")
	mustDeny(t, f.authn, bearer(notYet), "not yet valid")
	f.clk.Advance(time.Hour)
	mustAllow(t, f.authn, bearer(notYet))
	if s := f.authn.RefusedCacheStats(); s.Entries != 0 || s.Hits != 0 {
		t.Errorf("refused-token cache %+v: want nothing kept", s)
	}
}

// A change of the issuer's keys drops the refusals reached under them: a
// token refused for its signature under kid K is allowed once K names the
// key that signed it.
func TestRefusedInvalidatedOnKeyChange(t *testing.T) {
	f := newFixture(t)
	old := f.iss.Key()
	f.iss.Rotate("RS256") // Mint's key is another one from now on
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
	reused := authztest.WrapSigningKey(t, old.KID, "RS256", authztest.NewSigningKey(t, "RS256").Signer)
	tok := authztest.Sign(t, reused, nil, f.iss.Claims())
	mustDeny(t, f.authn, bearer(tok), "signature is invalid")
	mustDeny(t, f.authn, bearer(tok), "signature is invalid")
	if s := f.authn.RefusedCacheStats(); s.Hits != 1 {
		t.Fatalf("refused-token cache %+v: want the second refusal from it", s)
	}

	// The issuer withdraws the old key and publishes the new one under its
	// kid; a token with an unknown kid makes vaultwall refetch.
	f.iss.RemoveKey(old.KID)
	f.iss.Publish(reused)
	f.iss.Rotate("RS256")
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
	mustAllow(t, f.authn, bearer(tok))
}

// The refused-token cache is bounded (a tenth of
// identity.tokenCache.maxEntries) and disabled with the verified-token
// cache.
func TestRefusedBounded(t *testing.T) {
	f := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) { id.TokenCache.MaxEntries = 40 })
	for i := range 50 {
		c := f.iss.Claims()
		c["jti"] = strconv.Itoa(i)
		mustDeny(t, f.authn, bearer(authztest.Tamper(f.iss.Mint(c))), "signature")
	}
	if s := f.authn.RefusedCacheStats(); s.Entries > 4 || s.Entries == 0 || s.Capacity != 4 {
		t.Errorf("refused-token cache %+v: want at most 4 entries", s)
	}

	off := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) { id.TokenCache.MaxEntries = -1 })
	bad := authztest.Tamper(off.iss.MintValid())
	mustDeny(t, off.authn, bearer(bad), "signature")
	mustDeny(t, off.authn, bearer(bad), "signature")
	if s := off.authn.RefusedCacheStats(); s != (token.CacheStats{}) {
		t.Errorf("disabled: %+v", s)
	}
}
