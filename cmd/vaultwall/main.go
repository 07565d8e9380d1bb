// Command vaultwall is an Envoy ext_authz service that gives a secrets vault
// Azure Key Vault's firewall and access model. main only wires: flags,
// configuration, logging, signals; everything it calls is tested in its own
// package.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	if err := newRoot().Execute(); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.quiet {
			fmt.Fprintln(os.Stderr, "vaultwall:", err)
		}
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "vaultwall",
		Short:         "Key Vault's firewall and access model for any vault behind Envoy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newCheckCmd(),
		newConfigCmd(),
		newTrustedServicesCmd(),
		newPolicyCmd(),
		newAdminCmd(),
		newReplayCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "vaultwall", version)
			},
		},
	)
	return root
}

// exitError carries a process exit code through cobra. quiet errors have
// already been reported by the command.
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
