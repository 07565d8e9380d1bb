package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/config"
)

// TestSchemaUpToDate regenerates the schema from the Go types and fails
// when the committed docs/vault.schema.json differs (run make schema).
func TestSchemaUpToDate(t *testing.T) {
	t.Chdir("../..")
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(SchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run make schema and commit it", SchemaPath)
	}
}

// compiled is the committed schema, compiled by an independent validator.
func compiled(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(SchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validate checks one YAML document against the schema; a document that is
// not YAML at all is errNotYAML.
func validate(s *jsonschema.Schema, data []byte) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return errors.Join(errNotYAML, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return errors.Join(errNotYAML, err)
	}
	return s.Validate(inst)
}

var errNotYAML = errors.New("not YAML")

// validConfigs are the configurations users copy: the examples, the valid
// fixtures, and the one in the Istio kustomization's ConfigMap.
func validConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"examples/*.yaml", "config/testdata/config/valid-*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v (no files)", pattern, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	b, err := os.ReadFile("envoy/istio/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil || cm.Data["vault.yaml"] == "" {
		t.Fatalf("envoy/istio/configmap.yaml: no vault.yaml (%v)", err)
	}
	out["envoy/istio/configmap.yaml:vault.yaml"] = []byte(cm.Data["vault.yaml"])
	return out
}

// TestExamplesValidate: every configuration users copy passes the schema,
// and the examples carry the yaml-language-server modeline that points
// editors at it.
func TestExamplesValidate(t *testing.T) {
	t.Chdir("../..")
	s := compiled(t)
	for name, data := range validConfigs(t) {
		if err := validate(s, data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if strings.HasPrefix(name, "examples/") {
			rel, _ := filepath.Rel(filepath.Dir(name), SchemaPath)
			if modeline := "# yaml-language-server: $schema=" + filepath.ToSlash(rel); !bytes.Contains(data, []byte(modeline+"\n")) {
				t.Errorf("%s lacks the modeline %q", name, modeline)
			}
		}
	}
}

// TestInvalidFixtures runs every testdata/config/invalid-* fixture through
// the schema. Those whose error is structural (an unknown key, a wrong
// type, a missing required key) must be rejected; the others are semantic
// — values the schema cannot judge, caught by vaultwall config validate —
// and the schema is expected to let them through, so a stricter schema
// updates this list on purpose. Every fixture is listed: a new one fails
// until it is classified.
func TestInvalidFixtures(t *testing.T) {
	t.Chdir("../..")
	s := compiled(t)
	rejected := map[string]bool{
		"invalid-type.yaml":          true, // ErrType: a string where a boolean goes
		"invalid-unknown-field.yaml": true, // ErrUnknownField: a misspelt key
		"invalid-required.yaml":      true, // ErrRequired: vault.tenantId missing
		"invalid-syntax.yaml":        true, // ErrSyntax: not YAML at all (never reaches the schema)
		// Semantic, beyond a schema: each needs vaultwall's own validation.
		"invalid-conflict.yaml":      false, // an issuer with both discovery and keys, or neither
		"invalid-duplicate.yaml":     false, // the same IP rule twice
		"invalid-host-bits.yaml":     false, // a CIDR with host bits set
		"invalid-id.yaml":            false, // a malformed ARM resource id
		"invalid-prefix.yaml":        false, // an address that does not parse
		"invalid-prefix-subnet.yaml": false, // a subnet addressPrefix that does not parse
		"invalid-too-many.yaml":      false, // more rules than limits allow
		"invalid-unresolved.yaml":    false, // a subnet rule naming no known subnet
		"invalid-value.yaml":         false, // publicNetworkAccess: Sometimes (values are case-insensitive, as ARM's)
		"invalid-unsupported.yaml":   true,  // a role assignment with an ABAC condition: the schema has no condition field
	}
	files, err := filepath.Glob("config/testdata/config/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		want, listed := rejected[base]
		if !listed {
			t.Errorf("%s: not classified as structural or semantic in this test", base)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(f, data); err == nil {
			t.Errorf("%s: vaultwall accepts it: not an invalid fixture", base)
		}
		err = validate(s, data)
		switch {
		case want && err == nil:
			t.Errorf("%s: the schema accepts a structural error", base)
		case !want && err != nil:
			t.Errorf("%s: the schema rejects a semantic error (update the list if it now can): %v", base, err)
		}
	}
}
