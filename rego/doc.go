// Package rego is vaultwall's authorize stage: Azure Key Vault's access
// policies and RBAC written in Rego, evaluated with OPA.
//
// It owns the shipped policy (policy/*.rego, embedded, with its Rego unit
// tests), the input document built from an authz.Decision, the OPA data built
// from the configuration's access policies, role assignments and role
// definitions (indexed at load for constant-time lookup), the composition
// with operator rules from policy.dir, the JSON Schemas of the input and
// data, `vaultwall policy test` and `vaultwall policy lint` (lint.go).
//
// New compiles and prepares everything once and evaluates sample inputs, so
// a policy that does not compile or misbehaves never serves. What depends on
// the policy sources alone — the compiled modules, the input plan, whether
// verdicts may be cached, the operator rules — is shared by every Policy
// alive built from the same sources (shared.go: keyed by a digest of the
// files' names and bytes, held weakly, failures never kept), so that many
// vaults in one process compile their policy once; the data, its store, the
// queries prepared against it and the sample checks are each Policy's own.
// Authorize is the
// per-request path: it builds the input as an ast.Value, evaluates the
// prepared query under the request's context, the decision's clock and
// policy.timeout, and decodes the one result strictly. Anything unexpected is
// an error, which the pipeline turns into a fail-closed deny.
//
// The input's JSON Schema (schema.go, committed as schema/*.json) is
// generated from the description the input is built from; every policy is
// compiled against it, so a rule reading a field the input does not have,
// or using one as the wrong type, is refused at load.
//
// Verdicts are cached per Policy in an authz/cache Map, keyed by an exact
// encoding of the input fields the rules read (compared in full on every
// hit), never past the caller's token exp; the cache is off when a rule
// reads a per-request field or calls a volatile builtin (README.md, "The
// decision cache").
//
// Imports: authz, authz/cache, authz/section, config and OPA
// (github.com/open-policy-agent/opa/v1).
// Never gRPC or protobuf.
package rego
