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
	test := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "run the Rego unit tests of the shipped policy and of operator policy directories",
		Long: "Run the *_test.rego tests of the shipped policy and of each DIR (operator policies) with OPA's\n" +
			"tester — the results `opa test` gives — and print its report. --coverage adds the coverage\n" +
			"report and the shipped policy's coverage. Exit status 1 when a test fails.",
		RunE: func(cmd *cobra.Command, dirs []string) error {
			rep, err := rego.Test(cmd.Context(), cmd.OutOrStdout(), dirs, opts)
			if err != nil {
				return err
			}
			// The shipped control-plane policy's tests run too.
			passed, failures, err := rego.TestControl(cmd.Context(), "")
			if err != nil {
				return err
			}
			for _, f := range failures {
				fmt.Fprintln(cmd.OutOrStdout(), "control-plane policy:", f)
			}
			if opts.Verbose {
				fmt.Fprintf(cmd.OutOrStdout(), "control-plane policy: %d passed\n", passed)
			}
			if rep.Failed+rep.Errored+len(failures) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d failed, %d errored", rep.Failed+len(failures), rep.Errored), quiet: true}
			}
			return nil
		},
	}
	test.Flags().BoolVar(&opts.Coverage, "coverage", false, "report coverage")
	test.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "print every test, not only failures")
	test.Flags().StringVar(&opts.Run, "run", "", "run only tests matching this regular expression")
	test.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Second, "timeout per test")
	test.Flags().BoolVar(&opts.JSON, "json", false, "print the coverage report as opa test --coverage JSON")
	cmd.AddCommand(test)
	return cmd
}
