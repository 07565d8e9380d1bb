package main

import (
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
	return cmd
}
