package rego

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions shape a Test run; they mirror `opa test` flags.
type TestOptions struct {
	// Coverage records which lines the tests evaluate (opa test --coverage).
	Coverage bool
	// Verbose prints every test, not only failures (opa test -v).
	Verbose bool
	// Run selects tests by a regular expression on package.rule (opa test --run).
	Run string
	// Timeout bounds each test (default 5s, as opa test).
	Timeout time.Duration
	// Format is "pretty" (default) or "json", as opa test --format: json
	// prints the results as opa test's JSON array, or with coverage the
	// coverage report as opa test --coverage prints it.
	Format string
	// Threshold fails the run when the coverage of every file run is
	// under this percentage (opa test --threshold); it turns coverage on.
	Threshold float64
}

// Test output formats.
const (
	FormatPretty = "pretty"
	FormatJSON   = "json"
)

// TestReport counts a Test run.
type TestReport struct {
	Passed, Failed, Errored, Skipped int
	// Cases are the tests run, in file order.
	Cases []TestCase
	// Coverage is OPA's report over every file run, when asked for.
	Coverage *cover.Report
	// ShippedCoverage is the percentage of the shipped policy's lines
	// (rego/policy/*.rego without the tests) that the tests evaluated.
	ShippedCoverage float64
	// BelowThreshold: the coverage is under TestOptions.Threshold.
	BelowThreshold bool
}

// TestCase is one test rule's outcome.
type TestCase struct {
	File    string
	Line    int
	Name    string // package.rule, e.g. data.vaultwall.authz_test.test_x
	Outcome string // PASS, FAIL, ERROR or SKIPPED, as opa test prints it
}

// OK reports whether every test passed, at least one ran, and the
// coverage threshold, if any, is met.
func (r TestReport) OK() bool {
	return r.Failed == 0 && r.Errored == 0 && r.Passed > 0 && !r.BelowThreshold
}

// ExitCode is opa test's exit status for the report: 0 when every test
// passed, 2 when a test failed or errored or the coverage is under the
// threshold. (opa test exits 1 when the tests could not run: Test returns
// an error then.)
func (r TestReport) ExitCode() int {
	if r.Failed+r.Errored > 0 || r.BelowThreshold {
		return 2
	}
	return 0
}

// Test runs the Rego unit tests of the shipped policy and of the given
// directories (operator policies and their *_test.rego files) with OPA's
// tester, as `vaultwall policy test [DIR]` does, and writes `opa test`'s
// report to w. The results are those `opa test` gives for the same files;
// in addition, files are held to the rules New enforces (operator packages,
// forbidden builtins, the shape of deny and grant), since a policy that
// fails them can never serve.
//
// An error means the tests could not run (a file does not parse or
// compile); failing tests are counted in the report.
func Test(ctx context.Context, w io.Writer, dirs []string, opts TestOptions) (TestReport, error) {
	var rep TestReport
	switch opts.Format {
	case "", FormatPretty, FormatJSON:
	default:
		return rep, fmt.Errorf("unknown test output format %q: want %s or %s", opts.Format, FormatPretty, FormatJSON)
	}
	if opts.Threshold < 0 || opts.Threshold > 100 {
		return rep, fmt.Errorf("the coverage threshold must be between 0 and 100, not %v", opts.Threshold)
	}
	if opts.Threshold > 0 {
		opts.Coverage = true
	}
	srcs, err := shippedSources(true)
	if err != nil {
		return rep, err
	}
	for _, d := range dirs {
		ds, err := dirSources(d, true)
		if err != nil {
			return rep, err
		}
		srcs = append(srcs, ds...)
	}
	mods, err := parse(srcs)
	if err != nil {
		return rep, err
	}
	if _, err := compile(mods, dataInputSchemaSet, true); err != nil {
		return rep, err
	}

	var cov *cover.Cover
	runner := tester.NewRunner().
		SetCompiler(ast.NewCompiler().
			WithCapabilities(capabilities()).
			WithDefaultRegoVersion(ast.RegoV1).
			WithSchemas(dataInputSchemaSet).
			WithUseTypeCheckAnnotations(true).
			WithEnablePrintStatements(true)).
		SetStore(inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false))).
		CapturePrintOutput(true).
		EnableTracing(opts.Verbose).
		SetModules(mods).
		SetTimeout(cmp.Or(opts.Timeout, 5*time.Second)).
		Filter(opts.Run)
	if opts.Coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return rep, joinErrors(astErrors("", ErrCompile, err))
	}
	// Results arrive in any order; report them in file order.
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i].Location, results[j].Location
		if a == nil || b == nil {
			return b != nil
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	sorted := make(chan *tester.Result, len(results))
	for _, r := range results {
		rep.count(r)
		sorted <- r
	}
	close(sorted)
	if cov != nil {
		report := cov.Report(mods)
		rep.Coverage = &report
		rep.ShippedCoverage = shippedCoverage(report)
		rep.BelowThreshold = report.Coverage < opts.Threshold
	}
	switch {
	case opts.Format == FormatJSON && cov != nil:
		// opa test --coverage: failures as text, else the coverage
		// report, or the threshold error.
		err := tester.JSONCoverageReporter{Cover: cov, Modules: mods, Output: w, Threshold: opts.Threshold, Verbose: opts.Verbose}.Report(sorted)
		if rep.Failed+rep.Errored > 0 || rep.BelowThreshold {
			err = nil // counted in the report
		}
		return rep, err
	case opts.Format == FormatJSON:
		return rep, tester.JSONReporter{Output: w}.Report(sorted)
	}
	if err := (tester.PrettyReporter{Output: w, Verbose: opts.Verbose}).Report(sorted); err != nil {
		return rep, err
	}
	if cov == nil {
		return rep, nil
	}
	return rep, writeCoverage(w, *rep.Coverage, rep.ShippedCoverage)
}

// ThresholdError is opa test's message for a coverage under the threshold.
func (r TestReport) ThresholdError(threshold float64) error {
	if !r.BelowThreshold || r.Coverage == nil {
		return nil
	}
	return &cover.CoverageThresholdError{Coverage: r.Coverage.Coverage, Threshold: threshold}
}

// count counts like opa test: a parameterized test counts each case.
func (rep *TestReport) count(r *tester.Result) {
	c := TestCase{Name: r.Package + "." + r.Name, Outcome: "PASS"}
	if r.Location != nil {
		c.File, c.Line = r.Location.File, r.Location.Row
	}
	switch {
	case r.Skip:
		c.Outcome = "SKIPPED"
	case r.Error != nil:
		c.Outcome = "ERROR"
	case r.Fail:
		c.Outcome = "FAIL"
	}
	rep.Cases = append(rep.Cases, c)
	switch {
	case r.Skip:
		rep.Skipped++
	case r.Error != nil:
		rep.Errored++
	case len(r.SubResults) > 0:
		for _, sr := range r.SubResults.Iter {
			if len(sr.SubResults) > 0 {
				continue
			}
			if sr.Fail {
				rep.Failed++
			} else {
				rep.Passed++
			}
		}
	case r.Fail:
		rep.Failed++
	default:
		rep.Passed++
	}
}

func isShippedPolicy(file string) bool {
	return strings.HasPrefix(file, shippedPrefix+"policy/") && !strings.HasSuffix(file, "_test.rego")
}

func shippedCoverage(r cover.Report) float64 {
	var covered, total int
	for file, fr := range r.Files {
		if isShippedPolicy(file) {
			covered += fr.CoveredLines
			total += fr.CoveredLines + fr.NotCoveredLines
		}
	}
	if total == 0 {
		return 0
	}
	return 100 * float64(covered) / float64(total)
}

// writeCoverage prints, per policy file (tests left out), the share of its
// lines covered and the lines that are not.
func writeCoverage(w io.Writer, r cover.Report, shipped float64) error {
	files := make([]string, 0, len(r.Files))
	for f := range r.Files {
		if !strings.HasSuffix(f, "_test.rego") {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	var errs []error
	p := func(format string, args ...any) {
		_, err := fmt.Fprintf(w, format, args...)
		errs = append(errs, err)
	}
	p("\ncoverage:\n")
	for _, f := range files {
		fr := r.Files[f]
		p("  %-40s %6.2f%%  (%d of %d lines)\n", f, fr.Coverage, fr.CoveredLines, fr.CoveredLines+fr.NotCoveredLines)
		if len(fr.NotCovered) > 0 {
			p("    not covered: %s\n", lineRanges(fr.NotCovered))
		}
	}
	p("  shipped policy: %.2f%%\n", shipped)
	return errors.Join(errs...)
}

// lineRanges prints ranges as "3, 7-9, 12", merging overlaps.
func lineRanges(rs []cover.Range) string {
	type span struct{ a, b int }
	spans := make([]span, 0, len(rs))
	for _, r := range rs {
		spans = append(spans, span{r.Start.Row, r.End.Row})
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.a, y.a) })
	var b strings.Builder
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].a <= cur.b+1; i++ {
			cur.b = max(cur.b, spans[i].b)
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(cur.a))
		if cur.b > cur.a {
			b.WriteString("-" + strconv.Itoa(cur.b))
		}
	}
	return b.String()
}
