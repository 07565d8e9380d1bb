package vaultwall_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/vaultwall/vaultwall/"

// imports lists every package of the module (relative to it) with its
// non-test imports, as `go list` reports them.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	goTool := "go"
	if g := os.Getenv("GO"); g != "" {
		goTool = g
	}
	out, err := exec.Command(goTool, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkgs[strings.TrimPrefix(f[0], module)] = f[1:]
	}
	if len(pkgs) < 30 {
		t.Fatalf("go list found %d packages: the scan is broken", len(pkgs))
	}
	return pkgs
}

// under reports whether pkg is dir or below it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

func underAny(pkg string, dirs ...string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(pkg, d) })
}

// testKit reports whether pkg is a test kit (authztest, opstest, etcdtest…):
// test code that lives in a package of its own.
func testKit(pkg string) bool { return strings.HasSuffix(filepath.Base(pkg), "test") }

// TestLayering states the layering and fails naming each import that
// breaks it. Only non-test code is held to it (a test may run a whole
// process through server.Serve).
func TestLayering(t *testing.T) {
	thirdParty := func(imp string, prefixes ...string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return imp == p || strings.HasPrefix(imp, p+"/") })
	}
	const (
		controlPlaneAPI = "github.com/envoyproxy/go-control-plane"
		prometheus      = "github.com/prometheus/client_golang"
	)
	rules := []struct {
		name string
		// broken reports whether pkg importing imp breaks the rule.
		broken func(pkg, imp string) bool
	}{
		{"authz/... imports no protobuf, gRPC, OPA, YAML, config nor any package of ours outside authz", func(pkg, imp string) bool {
			if !under(pkg, "authz") {
				return false
			}
			if own, ok := strings.CutPrefix(imp, module); ok {
				return !under(own, "authz")
			}
			return thirdParty(imp, "google.golang.org/protobuf", "google.golang.org/grpc", "google.golang.org/genproto",
				controlPlaneAPI, "github.com/cncf/xds", "github.com/open-policy-agent/opa",
				"go.yaml.in/yaml", "gopkg.in/yaml.v2", "gopkg.in/yaml.v3", "sigs.k8s.io/yaml")
		}},
		{"only envoy/, server/, controlplane/, cmd/, e2e/ and bench/ import go-control-plane", func(pkg, imp string) bool {
			return thirdParty(imp, controlPlaneAPI) && !testKit(pkg) &&
				!underAny(pkg, "envoy", "server", "controlplane", "cmd", "e2e", "bench")
		}},
		{"engine imports neither envoy nor Prometheus", func(pkg, imp string) bool {
			return under(pkg, "engine") && (imp == module+"envoy" || thirdParty(imp, prometheus))
		}},
		{"nothing imports cmd/ or server/ but cmd/ (and server's own test kit, servertest)", func(pkg, imp string) bool {
			own, ok := strings.CutPrefix(imp, module)
			return ok && underAny(own, "cmd", "server") && !underAny(pkg, "cmd", "server")
		}},
		{"config imports no package of ours but authz/...", func(pkg, imp string) bool {
			own, ok := strings.CutPrefix(imp, module)
			return under(pkg, "config") && ok && !under(own, "authz")
		}},
		{"ops/... decides nothing and serves nothing: no controlplane, envoy or server", func(pkg, imp string) bool {
			own, ok := strings.CutPrefix(imp, module)
			return under(pkg, "ops") && !testKit(pkg) && ok && underAny(own, "controlplane", "envoy", "server")
		}},
	}
	pkgs := imports(t)
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, r := range rules {
		for _, pkg := range names {
			for _, imp := range pkgs[pkg] {
				if r.broken(pkg, imp) {
					t.Errorf("%s imports %s: %s", pkg, imp, r.name)
				}
			}
		}
	}
}

// TestTopLevelFolders: at most twelve top-level folders hold Go code, so
// that the layout stays one screen (README's "Layout" lists each).
func TestTopLevelFolders(t *testing.T) {
	var withGo []string
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "bin" {
			continue
		}
		found := false
		_ = filepath.WalkDir(e.Name(), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
				found = true
				return filepath.SkipAll
			}
			return nil
		})
		if found {
			withGo = append(withGo, e.Name())
		}
	}
	if len(withGo) > 12 {
		t.Errorf("%d top-level folders hold Go code, at most 12: %v", len(withGo), withGo)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range withGo {
		if !bytes.Contains(readme, []byte("\n"+d+"/")) {
			t.Errorf("README's layout does not list %s/", d)
		}
	}
}
