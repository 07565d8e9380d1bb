package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testVersion = "0.1.0-imagetest"

// staticBinary builds vaultwall as make build does (CGO_ENABLED=0,
// -trimpath, version stamped) for linux.
func staticBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vaultwall")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", bin, "./cmd/vaultwall")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestImage builds the image tarball as make image does, reads it back as
// any tool would, checks its manifest and config (one layer, entrypoint
// serve, user 65532, labels), then extracts the binary from the
// layer, checks it is static and runs `vaultwall version` with it.
func TestImage(t *testing.T) {
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		t.Skipf("no CA bundle on this machine: %v", err)
	}
	bin := staticBinary(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	o := Options{Binary: bin, CA: "/etc/ssl/certs/ca-certificates.crt", Ref: DefaultRef, Version: testVersion,
		Created: time.Unix(1700000000, 0).UTC(), OS: "linux", Arch: "amd64"}
	if err := Write(out, o); err != nil {
		t.Fatal(err)
	}

	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Errorf("%d layers, want 1 (the binary, the CA bundle, /etc/passwd on scratch)", len(m.Layers))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/vaultwall", "serve"}) || !slices.Equal(c.Cmd, []string{"--config", "/etc/vaultwall/vault.yaml"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.source":   "https://github.com/vaultwall/vaultwall",
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(o.Created) {
		t.Errorf("platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if _, ok := c.ExposedPorts["9191/tcp"]; !ok {
		t.Errorf("ports %v lack 9191/tcp", c.ExposedPorts)
	}

	files := extract(t, img)
	for _, want := range []string{"usr/local/bin/vaultwall", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group"} {
		if _, ok := files[want]; !ok {
			t.Errorf("the image lacks /%s", want)
		}
	}
	if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd = %q", files["etc/passwd"].data)
	}
	if !bytes.Contains(files["etc/ssl/certs/ca-certificates.crt"].data, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Error("the CA bundle holds no certificate")
	}
	vw := files["usr/local/bin/vaultwall"]
	if vw.mode&0o111 == 0 {
		t.Errorf("binary mode %o is not executable", vw.mode)
	}
	extracted := filepath.Join(t.TempDir(), "vaultwall")
	if err := os.WriteFile(extracted, vw.data, 0o755); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(extracted)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): not static, it cannot run on scratch")
		}
	}
	ef.Close()
	got, err := exec.Command(extracted, "version").Output()
	if err != nil || string(got) != "vaultwall "+testVersion+"\n" {
		t.Fatalf("the image's binary: version = %q, %v", got, err)
	}
}

// TestImageIsReproducible: the same inputs give the same image digest.
func TestImageIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vaultwall")
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(bin, []byte("\x7fELF not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Binary: bin, CA: ca, Ref: DefaultRef, Version: "v", Created: time.Unix(0, 0).UTC(), OS: "linux", Arch: "amd64"}
	digest := func() v1.Hash {
		img, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if a, b := digest(), digest(); a != b {
		t.Errorf("two builds of the same inputs: %s and %s", a, b)
	}
	if _, err := Build(Options{Binary: ca, CA: ca}); err == nil {
		t.Error("a non-ELF binary was accepted")
	}
}

// TestDeploymentsNameTheImage: the kustomization and the Helm chart deploy
// exactly the image make image tags.
func TestDeploymentsNameTheImage(t *testing.T) {
	repo, tag, _ := strings.Cut(DefaultRef, ":")
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("../..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	checks := []struct {
		file string
		re   string
		want string
	}{
		{"envoy/istio/deployment.yaml", `(?m)^\s+image:\s*(\S+)`, DefaultRef},
		{"envoy/istio/kustomization.yaml", `(?m)^- name:\s*(\S+)`, repo},
		{"envoy/istio/kustomization.yaml", `(?m)^\s+newTag:\s*(\S+)`, tag},
		{"deploy/helm/vaultwall/values.yaml", `(?m)^\s+repository:\s*(\S+)`, repo},
		{"deploy/helm/vaultwall/Chart.yaml", `(?m)^appVersion:\s*"?([^"\s]+)`, tag},
		{"Makefile", `(?m)^IMAGE_REF\s*\?=\s*(\S+)`, DefaultRef},
	}
	for _, c := range checks {
		m := regexp.MustCompile(c.re).FindStringSubmatch(read(c.file))
		if m == nil || m[1] != c.want {
			t.Errorf("%s: %s gives %q, want %q", c.file, c.re, m, c.want)
		}
	}
}

type entry struct {
	mode int64
	data []byte
}

// extract reads the image's flattened file system.
func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "/")] = entry{mode: h.Mode, data: data}
	}
}
