package front

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewFrontPicks(t *testing.T) {
	fakeEnvoy := filepath.Join(t.TempDir(), "envoy")
	if err := os.WriteFile(fakeEnvoy, []byte("#!/bin/sh\necho 'envoy  version: 0123abcd/1.36.2/Clean/RELEASE/BoringSSL'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	emptyPath := t.TempDir()
	for _, tc := range []struct {
		name      string
		envoyBin  string
		front     string
		wantSkip  bool
		wantFront string
	}{
		{"nothing available: stand-in", "", "", false, "go stand-in"},
		{"ENVOY_BIN: envoy, skipped until envoy.yaml is wired", fakeEnvoy, "", true, ""},
		{"E2E_FRONT=standin wins over ENVOY_BIN", fakeEnvoy, "standin", false, "go stand-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", emptyPath)
			t.Setenv(EnvEnvoyBin, tc.envoyBin)
			t.Setenv(EnvFront, tc.front)
			var got Front
			var skipped bool
			r := newRigAuthzOnly(t)
			t.Run("start", func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				got = NewFront(t, r)
			})
			if skipped != tc.wantSkip {
				t.Fatalf("skipped = %v, want %v", skipped, tc.wantSkip)
			}
			if !tc.wantSkip && got.Name() != tc.wantFront {
				t.Errorf("front %q, want %q", got.Name(), tc.wantFront)
			}
		})
	}
	if v := envoyVersion(fakeEnvoy); v != "0123abcd/1.36.2/Clean/RELEASE/BoringSSL" {
		t.Errorf("envoyVersion = %q", v)
	}
	if v := envoyVersion(filepath.Join(emptyPath, "missing")); !strings.HasPrefix(v, "version unknown") {
		t.Errorf("envoyVersion of nothing = %q", v)
	}
}

// newRigAuthzOnly is the smallest valid Options: a stub authz and an
// upstream that is never reached.
func newRigAuthzOnly(t *testing.T) Options {
	r := newRig(t, allowAll, nil)
	return r.front.opts
}

func BenchmarkStandInAllow(b *testing.B) {
	r := newRig(b, allowAll, nil)
	hc := r.client(b, Client{ServerName: vaultHost})
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := do(b, hc, "GET", "https://"+vaultHost+"/secrets/s1?api-version=7.5", nil)
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
