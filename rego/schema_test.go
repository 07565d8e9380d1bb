package rego_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/rego"
)

// An operator rule that reads a field the input does not have, or uses a
// field as the wrong type, is refused at load — by New (serve, config
// validate), by Test (policy test) and, for the control plane, by
// NewControl — with file:line and the field.
func TestSchemaRefusesTyposAndWrongTypes(t *testing.T) {
	tests := []struct {
		name   string
		rule   string
		detail string
	}{
		{"a misspelt field", `deny contains "no" if input.operation.objct == "prod-root"`, "input.operation.objct"},
		{"a misspelt section", `deny contains "no" if "ops" in input.calller.groups`, "input.calller.groups"},
		{"a field below a string", `deny contains "no" if input.operation.object.name == "x"`, "input.operation.object.name"},
		{"a boolean compared with a string", `deny contains "no" if input.vault.rbac == "true"`, "input.vault.rbac"},
		{"a list compared with a string", `deny contains "no" if input.caller.groups == "ops"`, "input.caller.groups"},
		{"a boolean passed as a string", `deny contains "no" if startswith(input.caller.is_user, "t")`, "input.caller.is_user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := policyDir(t, map[string]string{"rules.rego": pkg + tc.rule + "\n"})
			cfg := load(t, "")
			_, err := rego.New(t.Context(), cfg, rego.WithDir(dir))
			want := dir + "/rules.rego:3: "
			if !errors.Is(err, rego.ErrCompile) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("New: err = %v, want ErrCompile at %s naming %s", err, want, tc.detail)
			}
			if _, err := rego.Test(t.Context(), io.Discard, []string{dir}, rego.TestOptions{}); !errors.Is(err, rego.ErrCompile) ||
				!strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("Test: err = %v, want ErrCompile at %s naming %s", err, want, tc.detail)
			}
		})
	}
	t.Run("the control plane's input", func(t *testing.T) {
		dir := policyDir(t, map[string]string{"control.rego": "package vaultwall.control\n\n" +
			"decision := {\"allow\": true, \"reason\": \"ops\"} if \"ops\" in input.token.group\nelse := {\"allow\": false, \"reason\": \"no\"}\n"})
		_, err := rego.NewControl(t.Context(), dir)
		want := dir + "/control.rego:3: "
		if !errors.Is(err, rego.ErrCompile) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "input.token.group") {
			t.Fatalf("NewControl: err = %v, want ErrCompile at %s naming input.token.group", err, want)
		}
	})
	t.Run("data.vaultwall", func(t *testing.T) {
		for rule, field := range map[string]string{
			`deny contains "x" if data.vaultwall.settings.allow_operator_grant`:                                               "data.vaultwall.settings.allow_operator_grant",
			`deny contains "x" if { some e in data.vaultwall.access_policies.entries; e.objectId == input.caller.object_id }`: "objectId",
			`deny contains "x" if data.vaultwall.role_assignments.entries[0].principal == "p"`:                                "data.vaultwall.role_assignments.entries[0].principal",
		} {
			dir := policyDir(t, map[string]string{"rules.rego": pkg + rule + "\n"})
			_, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir))
			if !errors.Is(err, rego.ErrCompile) || !strings.Contains(err.Error(), dir+"/rules.rego:3: ") || !strings.Contains(err.Error(), field) {
				t.Errorf("%s: err = %v, want ErrCompile at rules.rego:3 naming %s", rule, err, field)
			}
		}
		dir := policyDir(t, map[string]string{"rules.rego": pkg +
			"deny contains \"x\" if {\n\tsome e in data.vaultwall.access_policies.by_object[input.caller.object_id]\n\te.permissions.secrets[\"purge\"]\n\t\"get\" in e.permissions.keys\n\tnot data.vaultwall.settings.allow_operator_grants\n\tdata.vaultwall.role_definitions[_].name == \"Reader\"\n}\n"})
		if _, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir)); err != nil {
			t.Fatalf("correct reads of data.vaultwall refused: %v", err)
		}
	})
	t.Run("schema annotations", func(t *testing.T) {
		annotated := "# METADATA\n# schemas:\n#   - input: schema.input\n"
		dir := policyDir(t, map[string]string{"rules.rego": pkg + annotated + `deny contains "x" if input.operation.object == "prod-root"` + "\n"})
		if _, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir)); err != nil {
			t.Fatalf("a rule annotated with schema.input: %v", err)
		}
		dir = policyDir(t, map[string]string{"rules.rego": pkg + strings.Replace(annotated, "schema.input", "schema.nosuch", 1) + `deny contains "x" if input.operation.object == "prod-root"` + "\n"})
		if _, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir)); !errors.Is(err, rego.ErrCompile) || !strings.Contains(err.Error(), "schema.nosuch") {
			t.Fatalf("an annotation naming an unknown schema: %v", err)
		}
	})
	t.Run("correct rules load", func(t *testing.T) {
		dir := policyDir(t, map[string]string{"rules.rego": pkg +
			`deny contains "no" if { input.operation.object == "prod-root"; not input.vault.rbac; "ops" in input.caller.groups; input.caller.claims.amr[_] == "mfa"; input.request.headers["user-agent"] == "x" }` + "\n"})
		if _, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir)); err != nil {
			t.Fatal(err)
		}
	})
}
