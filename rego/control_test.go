package rego_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vaultwall/vaultwall/rego"
)

func TestControlPolicyRegoTests(t *testing.T) {
	passed, failures, err := rego.TestControl(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if passed < 5 {
		t.Fatalf("only %d control-plane policy tests passed", passed)
	}
}

func TestControlPolicy(t *testing.T) {
	p, err := rego.NewControl(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		input map[string]any
		allow bool
	}{
		{"admin role writes", map[string]any{"action": "networkAcls/write", "token": map[string]any{"objectId": "o", "roles": []any{"Vault.Admin"}}}, true},
		{"reader reads", map[string]any{"action": "vault/read", "readOnly": true, "token": map[string]any{"objectId": "o", "roles": []any{"Vault.Reader"}}}, true},
		{"reader cannot write", map[string]any{"action": "networkAcls/write", "token": map[string]any{"objectId": "o", "roles": []any{"Vault.Reader"}}}, false},
		{"admin certificate", map[string]any{"action": "networkAcls/write", "certificate": map[string]any{"principal": "spiffe://a/b", "admin": true}}, true},
		{"anonymous", map[string]any{"action": "vault/read", "readOnly": true}, false},
		{"roles not a list", map[string]any{"action": "vault/read", "token": map[string]any{"objectId": "o", "roles": "Vault.Admin"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Authorize(t.Context(), tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.allow || d.Reason == "" {
				t.Fatalf("decision %+v, want allow=%v with a reason", d, tc.allow)
			}
		})
	}
}

func TestControlPolicyOverride(t *testing.T) {
	write := func(t *testing.T, src string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "control.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("an operator policy replaces the shipped one", func(t *testing.T) {
		dir := write(t, `package vaultwall.control
import rego.v1
decision := {"allow": true, "reason": "ops group"} if "ops" in input.token.groups
else := {"allow": false, "reason": "not ops"}
`)
		p, err := rego.NewControl(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Authorize(t.Context(), map[string]any{"token": map[string]any{"groups": []any{"ops"}, "roles": []any{}}})
		if err != nil || !d.Allow {
			t.Fatalf("%+v %v", d, err)
		}
		d, _ = p.Authorize(t.Context(), map[string]any{"token": map[string]any{"roles": []any{"Vault.Admin"}}})
		if d.Allow {
			t.Fatal("the shipped rule still applies after the override")
		}
	})
	t.Run("a policy that lets anyone in is refused", func(t *testing.T) {
		dir := write(t, "package vaultwall.control\ndecision := {\"allow\": true}\n")
		if _, err := rego.NewControl(t.Context(), dir); !errors.Is(err, rego.ErrSample) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a malformed answer is an error, never an allow", func(t *testing.T) {
		dir := write(t, "package vaultwall.control\nimport rego.v1\ndecision := {\"allow\": \"yes\"} if input.token\ndecision := {\"allow\": false} if not input.token\n")
		p, err := rego.NewControl(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := p.Authorize(t.Context(), map[string]any{"token": map[string]any{}}); !errors.Is(err, rego.ErrResult) || d.Allow {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("syntax errors name the file", func(t *testing.T) {
		dir := write(t, "package vaultwall.control\ndecision := {\n")
		if _, err := rego.NewControl(t.Context(), dir); !errors.Is(err, rego.ErrSyntax) {
			t.Fatalf("err = %v", err)
		}
	})
}
