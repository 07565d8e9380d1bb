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
	"github.com/open-policy-agent/opa/v1/cover"
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
	rep, err := rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Coverage: true, Run: "vaultwall.operator_test"})
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

// --format json prints what opa test --format json prints: OPA's own
// tester.Result values, which decode back into them.
func TestTestJSONIsOpaTests(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"ops.rego":      pkg + "deny contains \"writes\" if input.operation.permission == \"set\"\n\nother contains 1 if input.operation.permission == \"purge\"\n",
		"ops_test.rego": "package vaultwall.operator_test\n\nimport data.vaultwall.operator\n\ntest_denies_sets if operator.deny[\"writes\"] with input.operation.permission as \"set\"\n\ntest_wrong if operator.deny[\"writes\"] with input.operation.permission as \"get\"\n",
	})
	var out bytes.Buffer
	rep, err := rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Format: rego.FormatJSON, Run: "vaultwall.operator_test"})
	if err != nil {
		t.Fatal(err)
	}
	var results []*tester.Result
	if err := json.Unmarshal(out.Bytes(), &results); err != nil {
		t.Fatalf("not opa test's JSON: %v\n%s", err, out.String())
	}
	got := map[string]bool{}
	for _, r := range results {
		if r.Package != "data.vaultwall.operator_test" || r.Location == nil || r.Location.File != filepath.Join(dir, "ops_test.rego") {
			t.Errorf("result %+v", r)
		}
		got[r.Name] = r.Fail
	}
	if len(results) != 2 || got["test_denies_sets"] || !got["test_wrong"] {
		t.Errorf("results %v\n%s", got, out.String())
	}
	if rep.ExitCode() != 2 || rep.OK() {
		t.Errorf("exit code %d for a failing test, want opa's 2", rep.ExitCode())
	}

	// With coverage, opa test --coverage's report, which decodes into OPA's
	// cover.Report; under the threshold, no report and exit code 2.
	out.Reset()
	rep, err = rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Format: rego.FormatJSON, Coverage: true, Run: "test_denies_sets"})
	if err != nil || rep.ExitCode() != 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	var cov cover.Report
	if err := json.Unmarshal(out.Bytes(), &cov); err != nil || cov.Files[filepath.Join(dir, "ops.rego")] == nil {
		t.Fatalf("not opa test --coverage's JSON: %v\n%s", err, out.String())
	}
	if fr := cov.Files[filepath.Join(dir, "ops.rego")]; len(fr.NotCovered) == 0 {
		t.Fatalf("the purge rule is covered: %+v", fr)
	}
	out.Reset()
	rep, err = rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Format: rego.FormatJSON, Threshold: 100, Run: "test_denies_sets"})
	if err != nil || !rep.BelowThreshold || rep.ExitCode() != 2 || rep.ThresholdError(100) == nil || out.Len() != 0 {
		t.Fatalf("threshold 100: %v %+v %q", err, rep, out.String())
	}
	if !strings.Contains(rep.ThresholdError(100).Error(), "Code coverage threshold not met") {
		t.Errorf("threshold error %q is not opa's", rep.ThresholdError(100))
	}
	// The coverage is over every file run, the shipped policy's too, as
	// opa test computes it: one operator test covers a fraction of 1%.
	rep, err = rego.Test(t.Context(), &bytes.Buffer{}, []string{dir}, rego.TestOptions{Threshold: 0.1, Run: "test_denies_sets"})
	if err != nil || rep.BelowThreshold || rep.ExitCode() != 0 {
		t.Fatalf("threshold 0.1: %v %+v", err, rep)
	}
	if _, err := rego.Test(t.Context(), &bytes.Buffer{}, nil, rego.TestOptions{Format: "junit"}); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// TestTestRefusesBadOptions: a coverage threshold outside 0..100, or an
// unknown output format, is refused before anything runs.
func TestTestRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts rego.TestOptions
		want string
	}{
		{rego.TestOptions{Threshold: -1}, "coverage threshold must be between 0 and 100"},
		{rego.TestOptions{Threshold: 100.5}, "coverage threshold must be between 0 and 100"},
		{rego.TestOptions{Format: "xml"}, `unknown test output format "xml"`},
	} {
		var out bytes.Buffer
		if _, err := rego.Test(t.Context(), &out, nil, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) || out.Len() != 0 {
			t.Errorf("%+v: err %v, output %q; want %q and no output", tc.opts, err, out.String(), tc.want)
		}
	}
}

// TestTestShowsPrintOutput: print() in a failing test shows in the report,
// as opa test shows it.
func TestTestShowsPrintOutput(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"ops.rego":      pkg + "deny contains \"writes\" if input.operation.permission == \"set\"\n",
		"ops_test.rego": "package vaultwall.operator_test\n\nimport data.vaultwall.operator\n\ntest_wrong if {\n\tprint(\"probe-7f3a\", count(operator.deny))\n\toperator.deny[\"writes\"] with input.operation.permission as \"get\"\n}\n",
	})
	var out bytes.Buffer
	rep, err := rego.Test(t.Context(), &out, []string{dir}, rego.TestOptions{Run: "vaultwall.operator_test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || !strings.Contains(out.String(), "probe-7f3a") {
		t.Errorf("report %+v, output:\n%s\nwant the failing test's print output", rep, out.String())
	}
}
