package rego_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/rego"
)

// policyDir writes operator files into a fresh directory.
func policyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const pkg = "package vaultwall.operator\n\n"

// A policy that cannot decide never serves: each bad file is refused at load
// with its file and line and a sentinel.
func TestNewRefusesBadOperatorFiles(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		sentinel error
		line     int
		detail   string
	}{
		{"syntax error", pkg + "deny contains \"x\" if input.operation.plane == ]\n", rego.ErrSyntax, 3, "rego_parse_error"},
		{"unsafe variable", pkg + "deny contains msg if input.operation.plane == \"data\"\n", rego.ErrCompile, 3, "var msg is unsafe"},
		{"undefined function", pkg + "deny contains \"x\" if nosuch.fn(input.operation.plane)\n", rego.ErrCompile, 3, "undefined function nosuch.fn"},
		{"type error", pkg + "deny contains \"x\" if count(42) > 1\n", rego.ErrCompile, 3, "rego_type_error"},
		{"redefines the shipped package", "package vaultwall.authz\n\ndecision := {\"allowed\": true}\n", rego.ErrNamespace, 1, `"vaultwall.authz" may not be declared`},
		{"redefines a shipped model", "package vaultwall.authz.accesspolicy\n\ngranting contains [0, \"x\"]\n", rego.ErrNamespace, 1, `"vaultwall.authz.accesspolicy"`},
		{"writes into the policy's data", "package vaultwall.access_policies\n\nby_object := {}\n", rego.ErrNamespace, 1, "vaultwall.access_policies"},
		{"writes into the settings", "package vaultwall\n\nsettings := {\"allow_operator_grants\": true}\n", rego.ErrNamespace, 1, `"vaultwall"`},
		{"deny as a complete rule", pkg + "deny := {\"x\"}\n", rego.ErrRuleShape, 3, "vaultwall.operator.deny must be a set rule"},
		{"deny as a function", pkg + "deny(x) := x\n", rego.ErrRuleShape, 3, "set rule"},
		{"deny with a deeper head", pkg + "deny.reads contains \"x\" if input.operation.permission == \"get\"\n", rego.ErrRuleShape, 3, "set rule"},
		{"grant as a boolean", pkg + "grant := true\n", rego.ErrRuleShape, 3, "vaultwall.operator.grant must be a set rule"},
		{"network I/O", pkg + "deny contains \"x\" if http.send({\"method\": \"GET\", \"url\": \"https://example.test\"}).status_code != 200\n", rego.ErrCompile, 3, "http.send is not available"},
		{"the environment", pkg + "deny contains \"x\" if opa.runtime().env.HOME\n", rego.ErrCompile, 3, "opa.runtime is not available"},
		{"recursion through the decision", pkg + "deny contains \"x\" if data.vaultwall.authz.decision.allowed\n", rego.ErrCompile, 3, "rego_recursion_error"},
		{"conflicting outputs", pkg + "mode := \"a\"\n\nmode := \"b\"\n\ndeny contains mode if input.operation.plane == \"data\"\n", rego.ErrSample, 5, "conflicting values"},
		{"a package beneath deny", "package vaultwall.operator.deny\n\nreads := true\n", rego.ErrRuleShape, 3, "set rule"},
		{"deny in a sub-package", "package vaultwall.operator.hours\n\ndeny contains \"x\" if input.operation.plane == \"data\"\n", rego.ErrRuleShape, 3,
			"vaultwall.operator.hours.deny is never read"},
		{"grant in a sub-package", "package vaultwall.operator.extra\n\ngrant contains \"x\" if input.operation.plane == \"data\"\n", rego.ErrRuleShape, 3,
			"vaultwall.operator.extra.grant is never read"},
		{"deny under a deeper head", pkg + "hours.deny contains \"x\" if input.operation.plane == \"data\"\n", rego.ErrRuleShape, 3,
			"vaultwall.operator.hours.deny is never read"},
		{"runtime error on every input", pkg + "deny contains \"x\" if 10 / count(input.caller.roles) > 1\n", rego.ErrSample, 3, "divide by zero"},
		{"type error on every input", pkg + "deny contains \"x\" if to_number(input.operation.name) > 1\n", rego.ErrSample, 3, "to_number"},
		{"too slow on every input", pkg + "deny contains \"x\" if {\n\tsome i in numbers.range(1, 4000)\n\tsome j in numbers.range(1, 4000)\n\ti * j < 0\n}\n", rego.ErrSample, 0, "exceeded its time budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyDir(t, map[string]string{"ops.rego": tt.text})
			cfg := load(t, "policy: {timeout: 250ms}\n")
			p, err := rego.New(t.Context(), cfg, rego.WithDir(dir))
			if err == nil {
				t.Fatalf("loaded %q", tt.text)
			}
			t.Log(err)
			if p != nil {
				t.Error("a Policy came back with the error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
			loc := filepath.Join(dir, "ops.rego")
			if tt.line > 0 {
				loc += ":" + itoa(tt.line) + ":"
			}
			if !strings.Contains(err.Error(), loc) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q, want %q and %q", err, loc, tt.detail)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestNewReportsEveryProblem(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"a.rego":          "package vaultwall.authz\n",
		"sub/b.rego":      pkg + "deny contains \"x\" if input.operation.plane == ]\n",
		"c_test.rego":     "package vaultwall.authz\n\nbroken := \n", // tests are not served
		".hidden.rego":    "not rego at all",
		"..data/ops.rego": "not rego either", // a ConfigMap mount's real files
		"notes.txt":       "ignored",
	})
	_, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir))
	if !errors.Is(err, rego.ErrNamespace) || !errors.Is(err, rego.ErrSyntax) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(dir, "a.rego") + ":1:", filepath.Join(dir, "sub/b.rego") + ":3:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	for _, not := range []string{"c_test.rego", "hidden", "..data"} {
		if strings.Contains(msg, not) {
			t.Errorf("%q mentions %q", msg, not)
		}
	}
}

func TestNewRefusesAMissingDirectory(t *testing.T) {
	_, err := rego.New(t.Context(), load(t, ""), rego.WithDir(filepath.Join(t.TempDir(), "nope")))
	if !errors.Is(err, rego.ErrPolicyDir) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRefusesBadData(t *testing.T) {
	cfg := load(t, "")
	cfg.Properties.EnableRbacAuthorization = true
	cfg.Properties.RoleDefinitions = []authz.RoleDefinition{
		{ID: "c0570000-0000-4000-8000-000000000001", RoleName: "Globs", DataActions: []string{"secrets/{get,set}"}},
	}
	cfg.Properties.RoleAssignments = []authz.RoleAssignment{
		{PrincipalID: alice, RoleDefinitionID: "No Such Role"},
		{PrincipalID: alice, RoleDefinitionID: "Key Vault Reader", Scope: "/vaults/other"},
	}
	_, err := rego.New(t.Context(), cfg)
	if !errors.Is(err, rego.ErrData) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"properties.roleDefinitions[0].dataActions[0]",
		"properties.roleAssignments[0].roleDefinitionId",
		"properties.roleAssignments[1].scope",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// Rules that fail only on some inputs load, and on those inputs the request
// is refused with a clear reason: an error, which the pipeline turns into a
// fail-closed 500. Never an allow.
func TestAuthorizeFailsClosed(t *testing.T) {
	dir := policyDir(t, map[string]string{"ops.rego": pkg + `
deny contains "boom" if {
	input.operation.object == "divide"
	10 / count([x | some x in input.caller.groups; x == "none"]) > 1
}

deny contains "nan" if {
	input.operation.object == "notanumber"
	to_number(input.operation.object) > 1
}

mode := "a" if input.operation.object == "conflict"

mode := "b" if input.operation.object == "conflict"

deny contains mode if input.operation.object == "conflict"

deny contains "slow" if {
	input.operation.object == "slow"
	some i in numbers.range(1, 4000)
	some j in numbers.range(1, 4000)
	i * j < 0
}
`})
	cfg := load(t, accessPolicies+"policy: {timeout: 300ms}\n")
	p := newPolicy(t, cfg, rego.WithDir(dir))
	object := func(name string) authz.Operation {
		o := getSecret
		o.Object, o.Scope = name, "/secrets/"+name
		return o
	}
	tests := []struct {
		name     string
		ctx      func() context.Context
		d        *authz.Decision
		sentinel error
		detail   string
	}{
		{"division by zero", nil, decision(cfg, app(), object("divide")), rego.ErrEval, "divide by zero"},
		{"type error in a builtin", nil, decision(cfg, app(), object("notanumber")), rego.ErrEval, "to_number"},
		{"conflicting outputs", nil, decision(cfg, app(), object("conflict")), rego.ErrEval, "produced conflicting values"},
		{"over the time budget", nil, decision(cfg, app(), object("slow")), rego.ErrTimeout, "300ms (policy.timeout)"},
		{"request cancelled", func() context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}, decision(cfg, app(), getSecret), rego.ErrEval, "context canceled"},
		{"no caller", nil, &authz.Decision{Vault: &authz.Vault{}, Operation: getSecret}, rego.ErrEval, "no caller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			start := time.Now()
			v, err := p.Authorize(ctx, tt.d)
			if err == nil || v.Allowed {
				t.Fatalf("verdict %+v, err %v: want an error", v, err)
			}
			if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("err = %v, want %v with %q", err, tt.sentinel, tt.detail)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("took %v", time.Since(start))
			}

			// Through the pipeline, the error is a fail-closed refusal.
			pl := &authz.Pipeline{Vault: *tt.d.Vault, Classifier: classifier{tt.d.Operation}, Authenticator: authenticator{tt.d.Caller},
				Firewall: openFirewall{}, Policy: p}
			if tt.d.Caller == nil {
				return
			}
			d := pl.Decide(ctx, &authz.Request{Method: "GET", Path: "/secrets/x"})
			if d.Allowed || d.Denial == nil || d.Denial.Status != 500 || d.Err == nil {
				t.Fatalf("pipeline: allowed %v denial %+v", d.Allowed, d.Denial)
			}
		})
	}

	// The same policy decides other requests as before.
	check(t, p, decision(cfg, app(), getSecret), want{true, "", "accessPolicies[0]"})
}

// New has no side effects: the same configuration builds equivalent
// policies, and a config built in code (not through config.Load) works.
func TestNewIsRepeatable(t *testing.T) {
	cfg := &config.Config{Vault: config.Vault{Name: "contoso", TenantID: tenant, Location: "westeurope", ResourceID: vaultID}}
	cfg.Properties.AccessPolicies = []authz.AccessPolicy{{TenantID: tenant, ObjectID: backendSP, Permissions: authz.Permissions{Secrets: []string{"GET"}}}}
	for range 3 {
		p := newPolicy(t, cfg)
		check(t, p, decision(cfg, app(), getSecret), want{true, "", "accessPolicies[0]"})
	}
}

// Claims are converted only when a rule reads them; then a claim that is not
// JSON makes the decision fail, not pass.
func TestClaimsThatAreNotJSON(t *testing.T) {
	cfg := load(t, accessPolicies)
	d := decision(cfg, with(app(), func(c *authz.Caller) { c.Claims = map[string]any{"amr": make(chan int)} }), getSecret)
	if _, err := rego.Input(d); !errors.Is(err, rego.ErrEval) || !strings.Contains(err.Error(), "claims") {
		t.Errorf("Input: %v", err)
	}
	if _, err := newPolicy(t, cfg).Authorize(t.Context(), d); err != nil {
		t.Errorf("the shipped policy reads no claim, yet: %v", err)
	}
	p := newPolicy(t, cfg, rego.WithDir("examples/purge-mfa"))
	if v, err := p.Authorize(t.Context(), d); !errors.Is(err, rego.ErrEval) || v.Allowed {
		t.Errorf("verdict %+v, err %v", v, err)
	}
}

// TestSubPackageHelpersLoad: a sub-package of vaultwall.operator may hold
// helpers the operator's deny reads; only a rule named deny or grant there
// is refused.
func TestSubPackageHelpersLoad(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"lib/hours.rego": "package vaultwall.operator.hours\n\nclosed if input.operation.plane == \"never\"\n\ndeny_reasons contains \"closed\" if closed\n",
		"ops.rego":       pkg + "import data.vaultwall.operator.hours\n\ndeny contains msg if some msg in hours.deny_reasons\n",
	})
	if _, err := rego.New(t.Context(), load(t, ""), rego.WithDir(dir)); err != nil {
		t.Fatalf("helpers in a sub-package: %v", err)
	}
}
