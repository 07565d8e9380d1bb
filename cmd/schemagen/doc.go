// Command schemagen generates docs/vault.schema.json, the JSON Schema of
// vault.yaml, from the Go configuration types (config) with
// github.com/invopop/jsonschema, so the schema cannot drift from what
// vaultwall accepts: `make schema` (or go generate ./cmd/schemagen)
// rewrites it, and its tests fail when the committed file differs, and
// validate every example and invalid-* fixture against it.
//
// The schema catches what is structural — unknown keys, wrong types, a
// missing vault section — so editors with the yaml-language-server modeline
// of the examples complete and check keys. Semantic rules (CIDR syntax,
// duplicates, references between sections, limits) stay with
// `vaultwall config validate`.
//
// Not part of the product binary; imports config only.
package main
