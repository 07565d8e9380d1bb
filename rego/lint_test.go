package rego_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/rego"
)

// The shipped policies (data plane, control plane, tests) and the examples
// lint clean: make check runs policy lint on them.
func TestShippedPolicyLintsClean(t *testing.T) {
	fs, err := rego.Lint([]string{"examples/business-hours", "examples/purge-mfa"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		t.Error(f)
	}
}

// A deliberately bad policy draws each finding, at its line.
func TestLintFindings(t *testing.T) {
	fs, err := rego.Lint([]string{"testdata/lint/bad"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%d %s/%s", f.Line, f.Category, f.Rule))
		if f.File != "testdata/lint/bad/rules.rego" || f.Message == "" {
			t.Errorf("finding %+v", f)
		}
	}
	want := []string{
		"1 style/opa-fmt",
		"6 vaultwall/never-fires",
		"10 vaultwall/never-fires",
		"14 vaultwall/raw-name-compared",
		"18 vaultwall/header-never-present",
		"22 testing/print-or-trace-call",
		"23 vaultwall/never-fires",
		"27 bugs/constant-condition",
		"28 bugs/not-equals-in-loop",
		"31 style/prefer-snake-case",
		"40 bugs/rule-shadows-builtin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range fs {
		t.Log(f)
	}
}

// A control-plane policy directory is loaded as NewControl loads it (its
// input schema, not the data plane's) and linted.
func TestLintControlDir(t *testing.T) {
	dir := policyDir(t, map[string]string{"control.rego": "package vaultwall.control\n\n" +
		"decision := {\"allow\": true, \"reason\": \"ops\"} if \"ops\" in input.token.groups\n" +
		"else := {\"allow\": false, \"reason\": \"no\"}\n\nisOps if 1 == 1\n"})
	fs, err := rego.Lint(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s:%d %s", filepath.Base(f.File), f.Line, f.Rule))
	}
	if want := []string{"control.rego:1 opa-fmt", "control.rego:6 prefer-snake-case", "control.rego:6 constant-condition"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	bad := policyDir(t, map[string]string{"control.rego": "package vaultwall.control\n\ndecision := {\"allow\": false, \"reason\": input.token.object_id}\n"})
	if _, err := rego.Lint(nil, bad); !errors.Is(err, rego.ErrCompile) || !strings.Contains(err.Error(), "input.token.object_id") {
		t.Errorf("a control policy that does not type-check: %v", err)
	}
}

// TestLintOnlyEqualityNeverFires: only ==, = and in on an input field are
// judged against the values it can have; another call on the same operands
// (a prefix test, an ordering), or a data path that looks like an input
// field, draws no never-fires finding.
func TestLintOnlyEqualityNeverFires(t *testing.T) {
	dir := t.TempDir()
	src := `package vaultwall.operator

import rego.v1

deny contains "prefix" if {
	startswith(input.operation.resource, "sec")
}

deny contains "ordered" if {
	input.operation.object > "PROD"
}

# Not input: data.source.firewall.auth_type is the operator's own data, with
# any value it likes.
deny contains "own data" if {
	data.source.firewall.auth_type == "NotAnAuthType"
}
`
	if err := os.WriteFile(filepath.Join(dir, "rules.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := rego.Lint([]string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Rule == "never-fires" {
			t.Errorf("never-fires finding on something other than an equality on input: %+v", f)
		}
	}
}
