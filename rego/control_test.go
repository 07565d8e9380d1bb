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

// TestControlBadDir: running the tests of a directory that cannot be read,
// or holds no policy, is an error — never zero tests passed and none failed.
func TestControlBadDir(t *testing.T) {
	for name, dir := range map[string]string{
		"missing": filepath.Join(t.TempDir(), "nope"),
		"empty":   t.TempDir(),
	} {
		passed, failures, err := rego.TestControl(t.Context(), dir)
		if !errors.Is(err, rego.ErrPolicyDir) || passed != 0 || len(failures) != 0 {
			t.Errorf("%s dir: passed %d, failures %v, err %v; want ErrPolicyDir", name, passed, failures, err)
		}
	}
}

func TestControlPolicy(t *testing.T) {
	p, err := rego.NewControl(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		input rego.ControlInput
		allow bool
	}{
		{"admin role writes", rego.ControlInput{Action: "networkAcls/write", Token: &rego.ControlToken{ObjectID: "o", Roles: []string{"Vault.Admin"}}}, true},
		{"reader reads", rego.ControlInput{Action: "vault/read", ReadOnly: true, Token: &rego.ControlToken{ObjectID: "o", Roles: []string{"Vault.Reader"}}}, true},
		{"reader cannot write", rego.ControlInput{Action: "networkAcls/write", Token: &rego.ControlToken{ObjectID: "o", Roles: []string{"Vault.Reader"}}}, false},
		{"admin certificate", rego.ControlInput{Action: "networkAcls/write", Certificate: &rego.ControlCertificate{Principal: "spiffe://a/b", Admin: true}}, true},
		{"anonymous", rego.ControlInput{Action: "vault/read", ReadOnly: true}, false},
		{"no roles", rego.ControlInput{Action: "vault/read", Token: &rego.ControlToken{ObjectID: "o"}}, false},
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
		d, err := p.Authorize(t.Context(), rego.ControlInput{Token: &rego.ControlToken{Groups: []string{"ops"}}})
		if err != nil || !d.Allow {
			t.Fatalf("%+v %v", d, err)
		}
		d, _ = p.Authorize(t.Context(), rego.ControlInput{Token: &rego.ControlToken{Roles: []string{"Vault.Admin"}}})
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
		if d, err := p.Authorize(t.Context(), rego.ControlInput{Token: &rego.ControlToken{}}); !errors.Is(err, rego.ErrResult) || d.Allow {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("an evaluation error is ErrEval, not a timeout", func(t *testing.T) {
		dir := write(t, `package vaultwall.control
import rego.v1
decision := {"allow": false, "reason": "a"} if "boom" in input.token.groups
decision := {"allow": false, "reason": "b"} if "boom" in input.token.groups
default decision := {"allow": false, "reason": "no"}
`)
		p, err := rego.NewControl(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Authorize(t.Context(), rego.ControlInput{Token: &rego.ControlToken{Groups: []string{"boom"}}})
		if !errors.Is(err, rego.ErrEval) || errors.Is(err, rego.ErrTimeout) || d.Allow {
			t.Fatalf("conflicting outputs: %+v %v, want ErrEval and no ErrTimeout", d, err)
		}
	})
	t.Run("syntax errors name the file", func(t *testing.T) {
		dir := write(t, "package vaultwall.control\ndecision := {\n")
		if _, err := rego.NewControl(t.Context(), dir); !errors.Is(err, rego.ErrSyntax) {
			t.Fatalf("err = %v", err)
		}
	})
}
