package rego_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/vaultwall/vaultwall/rego"
)

func TestShippedRegoTests(t *testing.T) {
	var out bytes.Buffer
	rep, err := rego.Test(t.Context(), &out, nil, rego.TestOptions{Coverage: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Passed < 100 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	if rep.ShippedCoverage < 90 {
		t.Errorf("the Rego tests cover %.2f%% of the shipped policy, want at least 90%%\n%s", rep.ShippedCoverage, out.String())
	}
	for _, want := range []string{"PASS: ", "rego/policy/accesspolicy.rego", "rego/policy/rbac.rego", "rego/policy/authz.rego", "shipped policy: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("%d passed, shipped policy covered %.2f%%", rep.Passed, rep.ShippedCoverage)
}

func TestExampleRegoTests(t *testing.T) {
	for _, dir := range []string{"examples/business-hours", "examples/purge-mfa"} {
		t.Run(dir, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Verbose: true})
			if err != nil {
				t.Fatal(err)
			}
			mine := 0
			for _, c := range rep.Cases {
				if strings.HasPrefix(c.File, dir) {
					mine++
				}
			}
			if !rep.OK() || mine < 5 {
				t.Fatalf("report %+v (%d cases in %s)\n%s", rep, mine, dir, out.String())
			}
		})
	}
}

// vaultwall policy test gives what opa test gives on the same files: here
// OPA's own loader and runner, set up as cmd/opa test sets them up.
func TestSameResultsAsOPATest(t *testing.T) {
	paths := []string{"policy", "examples/business-hours", "examples/purge-mfa"}
	mods, store, err := tester.LoadWithParserOptions(paths, nil, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if err != nil {
		t.Fatal(err)
	}
	txn, err := store.NewTransaction(t.Context(), storage.WriteParams)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Abort(t.Context(), txn)
	ch, err := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithEnablePrintStatements(true).WithCapabilities(ast.CapabilitiesForThisVersion())).
		SetStore(store).SetModules(mods).CapturePrintOutput(true).RunTests(t.Context(), txn)
	if err != nil {
		t.Fatal(err)
	}
	var opa []string
	for r := range ch {
		outcome := "PASS"
		switch {
		case r.Skip:
			outcome = "SKIPPED"
		case r.Error != nil:
			outcome = "ERROR"
		case r.Fail:
			outcome = "FAIL"
		}
		opa = append(opa, r.Package+"."+r.Name+" "+outcome)
	}

	rep, err := rego.Test(t.Context(), &bytes.Buffer{}, paths[1:], rego.TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, c := range rep.Cases {
		ours = append(ours, c.Name+" "+c.Outcome)
	}
	slices.Sort(opa)
	slices.Sort(ours)
	if !slices.Equal(opa, ours) || len(ours) < 50 {
		t.Errorf("opa test:\n%s\nvaultwall policy test:\n%s", strings.Join(opa, "\n"), strings.Join(ours, "\n"))
	}
}

func TestTestReportsFailures(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"ops.rego":      pkg + "deny contains \"writes\" if input.operation.permission == \"set\"\n",
		"ops_test.rego": "package vaultwall.operator_test\n\nimport data.vaultwall.operator\n\ntest_denies_sets if operator.deny[\"writes\"] with input.operation.permission as \"set\"\n\ntest_wrong if operator.deny[\"writes\"] with input.operation.permission as \"get\"\n",
	})
	var out bytes.Buffer
	rep, err := rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Coverage: true, JSON: true, Run: "vaultwall.operator_test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Failed != 1 || rep.Passed != 1 || len(rep.Cases) != 2 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "data.vaultwall.operator_test.test_wrong: FAIL") {
		t.Errorf("output:\n%s", text)
	}
	if i := strings.Index(text, "{"); i < 0 || !json.Valid([]byte(text[i:])) {
		t.Errorf("coverage is not opa test's JSON:\n%s", text)
	}
	if rep.Coverage == nil || rep.Coverage.Files[filepath.Join(dir, "ops.rego")] == nil {
		t.Errorf("no coverage of the operator file: %+v", rep.Coverage)
	}
}

func TestTestRefusesWhatNewRefuses(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		sentinel error
	}{
		{"policy in the shipped package", map[string]string{"x.rego": "package vaultwall.authz\n\ndecision := {}\n"}, rego.ErrNamespace},
		{"test in the shipped package", map[string]string{"x_test.rego": "package vaultwall.authz.rbac\n\ntest_x if true\n"}, rego.ErrNamespace},
		{"syntax error", map[string]string{"x.rego": pkg + "deny contains if\n"}, rego.ErrSyntax},
		{"a deny that is not a set", map[string]string{"x.rego": pkg + "deny := true\n"}, rego.ErrRuleShape},
		{"a forbidden builtin", map[string]string{"x.rego": pkg + "deny contains \"x\" if net.lookup_ip_addr(\"example.test\")\n"}, rego.ErrCompile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rego.Test(t.Context(), &bytes.Buffer{}, []string{policyDir(t, tt.files)}, rego.TestOptions{})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
		})
	}
	// Test packages outside vaultwall, or vaultwall.operator_test, are fine.
	dir := policyDir(t, map[string]string{"mine_test.rego": "package mytests\n\ntest_ok if true\n"})
	if rep, err := rego.Test(t.Context(), &bytes.Buffer{}, []string{dir}, rego.TestOptions{Run: "mytests"}); err != nil || !rep.OK() {
		t.Fatalf("report %+v, err %v", rep, err)
	}
}
