package front

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestNewFrontPicks(t *testing.T) {
	fakeEnvoy := filepath.Join(t.TempDir(), "envoy")
	if err := os.WriteFile(fakeEnvoy, []byte("#!/bin/sh\necho 'envoy  version: 0123abcd/1.36.2/Clean/RELEASE/BoringSSL'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	emptyPath, fakePath := t.TempDir(), filepath.Dir(fakeEnvoy)
	for _, tc := range []struct {
		name                string
		path, envoyBin, env string
		wantBin             string
		wantErr             bool
		wantWhich           string
	}{
		{"nothing available: stand-in", emptyPath, "", "", "", false, "go stand-in (no ENVOY_BIN and no envoy on PATH)"},
		{"ENVOY_BIN", emptyPath, fakeEnvoy, "", fakeEnvoy, false, "envoy (" + fakeEnvoy + ", 0123abcd/1.36.2/Clean/RELEASE/BoringSSL)"},
		{"envoy on PATH", fakePath, "", "", fakeEnvoy, false, "envoy (" + fakeEnvoy + ", 0123abcd/1.36.2/Clean/RELEASE/BoringSSL)"},
		{"E2E_FRONT=standin wins over ENVOY_BIN", emptyPath, fakeEnvoy, "standin", "", false, "go stand-in (E2E_FRONT=standin)"},
		{"E2E_FRONT=envoy without one fails", emptyPath, "", "envoy", "", true, "none: E2E_FRONT=envoy but no Envoy binary (no ENVOY_BIN and no envoy on PATH)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			t.Setenv(EnvEnvoyBin, tc.envoyBin)
			t.Setenv(EnvFront, tc.env)
			bin, _, err := chooseFront()
			if bin != tc.wantBin || (err != nil) != tc.wantErr {
				t.Errorf("chooseFront = %q, %v; want %q, error %v", bin, err, tc.wantBin, tc.wantErr)
			}
			if got := Which(); got != tc.wantWhich {
				t.Errorf("Which = %q, want %q", got, tc.wantWhich)
			}
		})
	}
	t.Run("the stand-in starts", func(t *testing.T) {
		t.Setenv("PATH", emptyPath)
		t.Setenv(EnvEnvoyBin, "")
		t.Setenv(EnvFront, "")
		if f := NewFront(t, newRigAuthzOnly(t)); f.Name() != "go stand-in" {
			t.Errorf("front %q", f.Name())
		}
	})
	if v := envoyVersion(fakeEnvoy); v != "0123abcd/1.36.2/Clean/RELEASE/BoringSSL" {
		t.Errorf("envoyVersion = %q", v)
	}
	if v := envoyVersion(filepath.Join(emptyPath, "missing")); !strings.HasPrefix(v, "version unknown") {
		t.Errorf("envoyVersion of nothing = %q", v)
	}
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

// newRigAuthzOnly is the smallest valid Options: a stub authz and an
// upstream that is never reached.
func newRigAuthzOnly(t *testing.T) Options {
	r := newRig(t, allowAll, nil)
	return r.front.opts
}

// outcomeTB records how a helper ended a test: Fatal, Skip or neither.
type outcomeTB struct {
	testing.TB
	fatal, skip bool
}

func (o *outcomeTB) Helper()               {}
func (o *outcomeTB) Fatalf(string, ...any) { o.fatal = true; runtime.Goexit() }
func (o *outcomeTB) Skipf(string, ...any)  { o.skip = true; runtime.Goexit() }
func (o *outcomeTB) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(o) }()
	<-done
}

// TestRealEnvoy: without a binary, a test needing a real Envoy is skipped,
// but fails under E2E_FRONT=envoy (make test, CI); E2E_FRONT=standin skips.
func TestRealEnvoy(t *testing.T) {
	fakeEnvoy := filepath.Join(t.TempDir(), "envoy")
	if err := os.WriteFile(fakeEnvoy, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, envoyBin, env string
		fatal, skip         bool
	}{
		{"none: skipped", "", "", false, true},
		{"none with E2E_FRONT=envoy: failed", "", "envoy", true, false},
		{"E2E_FRONT=standin: skipped", fakeEnvoy, "standin", false, true},
		{"ENVOY_BIN: runs", fakeEnvoy, "envoy", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv(EnvEnvoyBin, tc.envoyBin)
			t.Setenv(EnvFront, tc.env)
			o := &outcomeTB{TB: t}
			var bin string
			o.run(func(tb testing.TB) { bin = RealEnvoy(tb) })
			if o.fatal != tc.fatal || o.skip != tc.skip {
				t.Errorf("fatal %v, skip %v; want %v, %v", o.fatal, o.skip, tc.fatal, tc.skip)
			}
			if !tc.fatal && !tc.skip && bin != fakeEnvoy {
				t.Errorf("bin %q", bin)
			}
		})
	}
}
