package envoy_test

// Tests of the configuration users deploy: envoy.yaml, envoy-behind-l7.yaml,
// envoy-multi-vault.yaml, istio/ and istio-multi-vault/. Each shipped file must load with Envoy's, Istio's and
// Kubernetes' own API types and keep the invariants vaultwall relies on; each
// deliberately broken copy in testdata/deploy/ must fail, for its reason.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestEnvoyFrontProxies(t *testing.T) {
	for _, front := range frontFiles {
		t.Run(front.name, func(t *testing.T) {
			data, err := os.ReadFile(front.name)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkEnvoyFile(front.name, data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIstioManifests(t *testing.T) {
	if err := checkIstio(nil); err != nil {
		t.Fatal(err)
	}
}

// brokenCase is one testdata/deploy/broken-*.yaml: a shipped file, the
// edits that break it, and what the error must say.
type brokenCase struct {
	// Why says what the case proves.
	Why string `json:"why"`
	// Base is the shipped file to break, relative to envoy/.
	Base string `json:"base"`
	// Replace edits are applied in order; each old text must occur exactly
	// once, so a case cannot silently stop breaking anything when the
	// shipped file changes.
	Replace []edit `json:"replace"`
	// Want are substrings the error must contain, every one.
	Want []string `json:"want"`
}

type edit struct {
	Old string `json:"old"`
	New string `json:"new"`
}

func (c *brokenCase) apply(src string) (string, error) {
	for i, e := range c.Replace {
		if n := strings.Count(src, e.Old); n != 1 {
			return "", fmt.Errorf("replace[%d]: the old text occurs %d times in the base, want exactly once:\n%s", i, n, e.Old)
		}
		src = strings.Replace(src, e.Old, e.New, 1)
	}
	return src, nil
}

// checkDeployFile checks one shipped file, given its (possibly edited)
// content.
func checkDeployFile(base string, data []byte) error {
	for _, dir := range istioKustomizations {
		if strings.HasPrefix(base, dir+"/") {
			return checkIstio(map[string][]byte{base: data})
		}
	}
	return checkEnvoyFile(base, data)
}

func TestDeployBroken(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "deploy", "broken-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/deploy/broken-*.yaml")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c brokenCase
			if err := yaml.UnmarshalStrict(raw, &c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if c.Base == "" || c.Why == "" || len(c.Replace) == 0 || len(c.Want) == 0 {
				t.Fatalf("%s: why, base, replace and want are required", file)
			}
			src, err := os.ReadFile(filepath.FromSlash(c.Base))
			if err != nil {
				t.Fatal(err)
			}
			broken, err := c.apply(string(src))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			err = checkDeployFile(c.Base, []byte(broken))
			if err == nil {
				t.Fatalf("%s: the broken copy passed; it should fail because: %s", file, c.Why)
			}
			t.Logf("fails as it should: %v", err)
			for _, w := range c.Want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: the error does not mention %q:\n%v", file, w, err)
				}
			}
		})
	}
}

// TestShippedConfigsFailClosed walks every YAML file shipped under envoy/
// (the front proxies, the Istio manifests and mesh overlays, and any file
// added later) and requires each ext_authz filter to say
// failure_mode_allow: false and each Istio envoyExtAuthzGrpc provider to say
// failOpen: false, explicitly. vaultwall answers every request that reaches
// it with an allow or a refusal, but grpc-go refuses some requests before
// vaultwall sees them (a headers value that is not UTF-8, a message over
// maxRecvMsgBytes) and answers with an RPC error: failing open would let
// exactly those through.
func TestShippedConfigsFailClosed(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (p == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filters, providers := 0, 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---") {
			var v any
			if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
				t.Fatalf("%s (document %d): %v", file, i, err)
			}
			walkYAML(v, func(m map[string]any, key string) {
				switch typ, _ := m["@type"].(string); {
				case strings.HasSuffix(typ, ".filters.http.ext_authz.v3.ExtAuthz"):
					filters++
					if b, ok := m["failure_mode_allow"].(bool); !ok || b {
						t.Errorf("%s: an ext_authz filter has failure_mode_allow %v; want an explicit false", file, m["failure_mode_allow"])
					}
				case key == "envoyExtAuthzGrpc":
					providers++
					if b, ok := m["failOpen"].(bool); !ok || b {
						t.Errorf("%s: an envoyExtAuthzGrpc provider has failOpen %v; want an explicit false", file, m["failOpen"])
					}
				}
			}, "")
		}
	}
	// envoy.yaml, envoy-behind-l7.yaml and envoy-multi-vault.yaml; istiooperator.yaml and
	// istiod-values.yaml. Fewer means the walk missed a file.
	if filters < 3 || providers < 2 {
		t.Errorf("found %d ext_authz filters and %d Istio providers in %v; want at least 3 and 2", filters, providers, files)
	}
}

// walkYAML calls fn on every mapping in v, with the key it is the value of.
func walkYAML(v any, fn func(m map[string]any, key string), key string) {
	switch x := v.(type) {
	case map[string]any:
		fn(x, key)
		for k, c := range x {
			walkYAML(c, fn, k)
		}
	case []any:
		for _, c := range x {
			walkYAML(c, fn, key)
		}
	}
}
