package peer

import (
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// TestRecognizeCABoundsTheCachedVerdict: with a caFile, a cached verdict
// lasts no longer than the chain that vouched for it. A CA that expires
// before its leaf ends the recognition at the CA's expiry, not the leaf's,
// although the verdict was cached while the CA was valid; and a CA that
// became valid after its leaf bounds the start (a clock stepped back).
func TestRecognizeCABoundsTheCachedVerdict(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{
		NotBefore: now.Add(-10 * time.Minute), NotAfter: now.Add(30 * time.Minute)})
	id := []string{"spiffe://trusted.example/azure-backup"}
	leaf := ca.Issue(authztest.CertOptions{URIs: id, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * time.Hour)})
	clock := now
	m := mustMatcher(t, TrustedServices{CAFile: ca.WriteBundle(), Services: []TrustedService{svc("Backup", id[0])}},
		WithClock(func() time.Time { return clock }))
	steps := []struct {
		at   time.Duration
		want string
	}{
		{0, "Backup"}, // verified and cached
		{29 * time.Minute, "Backup"},
		{31 * time.Minute, ""}, // the CA expired; the leaf has 89 minutes left
		{90 * time.Minute, ""},
		{-5 * time.Minute, "Backup"},
		{-20 * time.Minute, ""}, // before the CA's NotBefore, within the leaf's
	}
	for _, s := range steps {
		clock = now.Add(s.at)
		if name, _ := m.Recognize(certReq(leaf), nil, opKeyGet); name != s.want {
			t.Errorf("at %+v: got %q, want %q", s.at, name, s.want)
		}
	}
	// The verdict was computed once and is cached: the bound came from the
	// cache entry, not from a new verification.
	v := m.cache.get(maphashOf(m, leaf.PEM()), leaf.PEM())
	if v == nil {
		t.Fatal("the verdict is not cached")
	}
	if !v.until.Equal(ca.Cert.NotAfter) || !v.from.Equal(ca.Cert.NotBefore) {
		t.Errorf("cached verdict bounded by [%v, %v], want the CA's [%v, %v]", v.from, v.until, ca.Cert.NotBefore, ca.Cert.NotAfter)
	}
}
