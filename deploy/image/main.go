package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Where things are inside the image.
const (
	BinaryPath = "/usr/local/bin/vaultwall"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"
	ConfigPath = "/etc/vaultwall/vault.yaml"
	// UID is the non-root user (distroless's "nonroot").
	UID = 65532
	// Source is the repository named by the org.opencontainers.image.source label.
	Source = "https://github.com/vaultwall/vaultwall"
	// Licence is the SPDX identifier of LICENSE.
	Licence = "Apache-2.0"
	// DefaultRef is the image the kustomization (envoy/istio) and the Helm
	// chart (deploy/helm/vaultwall) deploy; a test keeps them equal.
	DefaultRef = "ghcr.io/vaultwall/vaultwall:0.1.0"
)

// Options are one image build.
type Options struct {
	Binary  string    // the static vaultwall binary
	CA      string    // the CA bundle (PEM)
	Ref     string    // the image reference (repository:tag) recorded in the tarball
	Version string    // the org.opencontainers.image.version label
	Created time.Time // every timestamp in the image
	OS      string    // linux
	Arch    string    // the binary's GOARCH
}

func main() {
	var o Options
	var out string
	flag.StringVar(&o.Binary, "binary", "bin/vaultwall", "the static vaultwall binary (make build)")
	flag.StringVar(&o.CA, "ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to ship")
	flag.StringVar(&o.Ref, "ref", DefaultRef, "image reference (repository:tag)")
	flag.StringVar(&o.Version, "version", "dev", "org.opencontainers.image.version")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's architecture")
	flag.StringVar(&out, "o", "bin/vaultwall-image.tar", "output tarball")
	flag.Parse()
	o.OS = "linux"
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err == nil {
		o.Created = created
		err = Write(out, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(out, o.Ref)
}

func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// Write builds the image of o and writes it as a tarball to path.
func Write(path string, o Options) error {
	img, err := Build(o)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(o.Ref)
	if err != nil {
		return fmt.Errorf("-ref: %w", err)
	}
	return tarball.WriteToFile(path, ref, img)
}

// Build assembles the image: one layer on scratch.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF binary (build it for linux: make build)", o.Binary)
	}
	ca, err := os.ReadFile(o.CA)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("%s holds no PEM certificate", o.CA)
	}
	layerTar, err := rootfs(o.Created, bin, ca)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "vaultwall deploy/image: " + BinaryPath + ", " + CAPath + ", /etc/passwd",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = o.OS, o.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Author = Source
	cf.Config = v1.Config{
		Entrypoint:   []string{BinaryPath, "serve"},
		Cmd:          []string{"--config", ConfigPath},
		User:         fmt.Sprintf("%d:%d", UID, UID),
		WorkingDir:   "/",
		Env:          []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CAPath},
		ExposedPorts: map[string]struct{}{"9191/tcp": {}, "9090/tcp": {}},
		Labels:       Labels(o.Version),
	}
	return mutate.ConfigFile(img, cf)
}

// Labels are the image's OCI annotations-as-labels.
func Labels(version string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "vaultwall",
		"org.opencontainers.image.description": "Azure Key Vault's firewall and access model for any vault behind Envoy (ext_authz)",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.url":         Source,
		"org.opencontainers.image.licenses":    Licence,
	}
}

// rootfs is the layer: directories, the binary, the CA bundle, and
// /etc/passwd and /etc/group for the non-root user, all owned by root and
// dated created.
func rootfs(created time.Time, bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: created, Format: tar.FormatPAX})
	}
	file := func(p string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	var errs []error
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "etc/vaultwall", "usr", "usr/local", "usr/local/bin"} {
		errs = append(errs, dir(d))
	}
	errs = append(errs,
		file("etc/passwd", 0o644, []byte(passwd)),
		file("etc/group", 0o644, []byte(group)),
		file(CAPath[1:], 0o644, ca),
		file(BinaryPath[1:], 0o755, bin),
		// /tmp, writable by anyone (sticky), for a read-only root file system
		// with an emptyDir there.
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: created, Format: tar.FormatPAX}),
		tw.Close())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
