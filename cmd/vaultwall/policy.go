package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/rego"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "work with the Rego authorization policy"}
	var opts rego.TestOptions
	var jsonAlias bool
	test := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "run the Rego unit tests of the shipped policy and of operator policy directories",
		Long: "Run the *_test.rego tests of the shipped policy and of each DIR (operator policies) with OPA's\n" +
			"tester — the results `opa test` gives — and print its report, in opa test's formats:\n" +
			"--format json prints opa test's JSON (with --coverage, its coverage report); --coverage in the\n" +
			"pretty format adds each policy file's coverage and the shipped policy's; --threshold N fails when\n" +
			"the coverage is under N%. The shipped control-plane policy's tests run too.\n" +
			"Exit status as opa test's: 0 all passed, 2 a test failed or the coverage is under the threshold,\n" +
			"1 the tests could not run (a file does not parse or compile).",
		RunE: func(cmd *cobra.Command, dirs []string) error {
			if jsonAlias {
				opts.Format = rego.FormatJSON
			}
			rep, err := rego.Test(cmd.Context(), cmd.OutOrStdout(), dirs, opts)
			if err != nil {
				return err
			}
			// The shipped control-plane policy's tests run too; in JSON
			// their failures go to stderr, so that stdout stays opa's JSON.
			passed, failures, err := rego.TestControl(cmd.Context(), "")
			if err != nil {
				return err
			}
			notes := cmd.OutOrStdout()
			if opts.Format == rego.FormatJSON {
				notes = cmd.ErrOrStderr()
			}
			for _, f := range failures {
				fmt.Fprintln(notes, "control-plane policy:", f)
			}
			if opts.Verbose {
				fmt.Fprintf(notes, "control-plane policy: %d passed\n", passed)
			}
			if err := rep.ThresholdError(opts.Threshold); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
			}
			if code := rep.ExitCode(); code != 0 || len(failures) > 0 {
				return &exitError{code: 2, err: fmt.Errorf("%d failed, %d errored", rep.Failed+len(failures), rep.Errored), quiet: true}
			}
			return nil
		},
	}
	test.Flags().BoolVar(&opts.Coverage, "coverage", false, "report coverage")
	test.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "print every test, not only failures")
	test.Flags().StringVar(&opts.Run, "run", "", "run only tests matching this regular expression")
	test.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Second, "timeout per test")
	test.Flags().StringVarP(&opts.Format, "format", "f", rego.FormatPretty, "output format: pretty or json (opa test's)")
	test.Flags().Float64Var(&opts.Threshold, "threshold", 0, "fail (exit 2) when the coverage is under this percentage; implies --coverage")
	test.Flags().BoolVar(&jsonAlias, "json", false, "the same as --format json")
	_ = test.Flags().MarkDeprecated("json", "use --format json")
	cmd.AddCommand(test)
	cmd.AddCommand(newPolicyLintCmd())
	return cmd
}

// exitLintFindings is the status of a lint run with findings (Regal's).
const exitLintFindings = 3

func newPolicyLintCmd() *cobra.Command {
	var format, controlDir string
	lint := &cobra.Command{
		Use:   "lint [DIR...]",
		Short: "lint the shipped policies and operator policy directories",
		Long: "Load the shipped data-plane policy and each DIR's operator files, and the control-plane policy\n" +
			"(the shipped one, or --control DIR's), tests included, as vaultwall does, then apply Regal-style\n" +
			"rules and vaultwall's own: a comparison that can never hold given the input schema, a raw name\n" +
			"compared instead of the canonical one, a header the input never carries, opa fmt, print calls,\n" +
			"constant conditions, … (rego/README.md lists them).\n" +
			"`# regal ignore:<rule>` on the line or the line above silences a finding.\n" +
			"Exit status: 0 clean, 3 findings, 1 a file does not load.",
		RunE: func(cmd *cobra.Command, dirs []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("unknown format %q: want text or json", format)
			}
			findings, err := rego.Lint(dirs, controlDir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Findings []rego.Finding `json:"findings"`
				}{append([]rego.Finding{}, findings...)}); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(w, f)
				}
			}
			if len(findings) > 0 {
				return &exitError{code: exitLintFindings, err: fmt.Errorf("%d lint findings", len(findings)), quiet: format == "json"}
			}
			return nil
		},
	}
	lint.Flags().StringVarP(&format, "format", "f", "text", "output format: text (file:line:col: category/rule: message) or json")
	lint.Flags().StringVar(&controlDir, "control", "", "a control-plane policy directory (controlPlane.policyDir) to lint instead of the shipped one")
	return lint
}
