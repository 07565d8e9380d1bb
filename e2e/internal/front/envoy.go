package front

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Envoy is a real Envoy started from the repository's envoy/envoy.yaml,
// patched for the test: listener on a loopback port, the test's
// certificates, the ext_authz cluster pointed at the test's authz server
// and the vault cluster at the test's upstream.
type Envoy struct {
	bin, version string
	addr         netip.AddrPort
}

var _ Front = (*Envoy)(nil)

// EnvoyConfig is the path of the front-proxy configuration the suite
// starts a real Envoy from, relative to the module root.
const EnvoyConfig = "envoy/envoy.yaml"

// StartEnvoy starts bin with envoy/envoy.yaml patched for this test. Until
// envoy/envoy.yaml is on the branch and the patching is written, it skips
// the test, naming the binary it found and how to use the stand-in
// instead.
func StartEnvoy(tb testing.TB, bin string, opts Options) *Envoy {
	tb.Helper()
	e := &Envoy{bin: bin, version: envoyVersion(bin)}
	root, err := moduleRoot()
	if err != nil {
		tb.Skipf("front: %s: %v; set %s=standin to use the Go stand-in", e.Name(), err, EnvFront)
	}
	if _, err := os.Stat(filepath.Join(root, EnvoyConfig)); err != nil {
		tb.Skipf("front: %s: %s is not on this branch yet; set %s=standin to use the Go stand-in", e.Name(), EnvoyConfig, EnvFront)
	}
	// The patching of envoy.yaml (listener address, certificate files,
	// cluster endpoints, the options above) and a recording ext_authz
	// relay for Checks land with envoy/envoy.yaml.
	tb.Skipf("front: %s: starting Envoy from %s is not written yet; set %s=standin to use the Go stand-in", e.Name(), EnvoyConfig, EnvFront)
	return e
}

// Name implements Front.
func (e *Envoy) Name() string { return "envoy (" + e.bin + ", " + e.version + ")" }

// Addr implements Front.
func (e *Envoy) Addr() netip.AddrPort { return e.addr }

// Checks implements Front. A real Envoy's checks are seen through a
// recording relay in front of the authz server; until that lands, none.
func (e *Envoy) Checks() []Check { return nil }

// envoyVersion is the first line of `envoy --version`, trimmed.
func envoyVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndex(s, "version: "); i >= 0 {
		s = s[i+len("version: "):]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
