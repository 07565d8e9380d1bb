package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/vaultwall/vaultwall/config"
)

//go:generate go run . -root ../.. -o docs/vault.schema.json

// SchemaPath is where the schema is committed, from the module root; the
// examples' yaml-language-server modelines point at it.
const SchemaPath = "docs/vault.schema.json"

// SchemaID is the schema's $id.
const SchemaID = "https://github.com/vaultwall/vaultwall/docs/vault.schema.json"

func main() {
	root := flag.String("root", ".", "the module root (the Go comments are read from its authz/)")
	out := flag.String("o", SchemaPath, "output file, relative to -root")
	flag.Parse()
	if err := os.Chdir(*root); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
	b, err := Generate()
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

// Generate reflects config.Config into a JSON Schema (draft 2020-12), with
// the Go doc comments of authz/ as descriptions. It must run from the
// module root.
func Generate() ([]byte, error) {
	r := &jsonschema.Reflector{
		// A key is required only where listed below (what validation
		// requires of every file), not wherever a Go field lacks omitempty.
		RequiredFromJSONSchemaTags: true,
		Mapper:                     mapType,
	}
	// The sections' types live in config and in the stage packages below
	// authz that own them.
	for _, dir := range []string{"./config", "./authz"} {
		if err := r.AddGoComments("github.com/vaultwall/vaultwall", dir); err != nil {
			return nil, err
		}
	}
	s := r.Reflect(&config.Config{})
	s.ID = SchemaID
	s.Title = "vaultwall configuration (vault.yaml)"
	s.Description = "The configuration file of vaultwall serve, check and config validate. Generated from the Go configuration types by cmd/schemagen (make schema): do not edit."
	s.Required = []string{"vault"}
	if v, ok := s.Definitions["Vault"]; ok {
		v.Required = []string{"name", "tenantId", "location"}
	} else {
		return nil, fmt.Errorf("no Vault definition")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mapType gives the types with their own JSON form their schema.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[config.Duration]():
		return &jsonschema.Schema{
			Description: `A duration such as "30s", "5m" or "1h30m", or a number of seconds.`,
			OneOf: []*jsonschema.Schema{
				{Type: "string", Pattern: `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`},
				{Type: "number", Minimum: json.Number("0")},
			},
		}
	case reflect.TypeFor[json.RawMessage]():
		return &jsonschema.Schema{Description: "Accepted as exported by Azure Resource Manager, and ignored."}
	}
	return nil
}
