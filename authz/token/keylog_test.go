package token_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/authz/token"
)

const lastGood = "the last good keys stay in use"

// TestKeyFetchLogsTellTheTruth: a failed first fetch has no last good keys
// to keep and says so (at ERROR: this issuer's tokens cannot be verified);
// a failed refresh after a good load keeps the last good keys and says that.
func TestKeyFetchLogsTellTheTruth(t *testing.T) {
	t.Run("never loaded", func(t *testing.T) {
		is := authztest.NewIssuer(t)
		is.SetFailure(authztest.Fail500)
		var logs authztest.Buffer
		store := token.NewKeyStore(token.StoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		t.Cleanup(func() { _ = store.Close() })
		a := newAuthn(t, store, identity(is.Config()))
		eventually(t, "the failed first fetch in the status", func() bool { return a.Status()[0].LastError != "" })
		eventually(t, "a log line for the failed first fetch", func() bool { return strings.Contains(logs.String(), "issuer keys not loaded") })
		got := logs.String()
		if strings.Contains(got, lastGood) {
			t.Errorf("the first failed fetch claims %q, with no keys ever loaded:\n%s", lastGood, got)
		}
		if !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "cannot be verified") {
			t.Errorf("want an ERROR saying the issuer's tokens cannot be verified:\n%s", got)
		}
	})
	t.Run("loaded, then down", func(t *testing.T) {
		var logs authztest.Buffer
		f := newFixture(t, func(id *token.Identity, so *token.StoreOptions) {
			id.Refresh.Timeout = section.Duration(time.Second)
			so.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		f.iss.SetFailure(authztest.Fail500)
		f.iss.Rotate("ES256")
		f.clk.Advance(minInterval)
		mustDeny(t, f.authn, bearer(f.iss.Mint(f.iss.Claims())), "is not among the published keys")
		eventually(t, "a log line for the failed refresh", func() bool { return strings.Contains(logs.String(), lastGood) })
		if strings.Contains(logs.String(), "issuer keys not loaded") {
			t.Errorf("a refresh with good keys in use claims none were loaded:\n%s", logs.String())
		}
	})
}
