package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=…", as make build
// does); when it is not, versionOf falls back to the module build info.
var version = ""

func init() { version = versionOf(version, debug.ReadBuildInfo) }

// versionOf is the stamped version, else the main module's version from the
// build info (a tag, or Go's pseudo-version with the commit when built from
// a checkout: `go install …@v1.2.3`, `go build`), else the VCS revision
// (with "+dirty" for uncommitted changes), else "dev".
func versionOf(stamped string, info func() (*debug.BuildInfo, bool)) string {
	if stamped != "" {
		return stamped
	}
	bi, ok := info()
	if !ok || bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

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
		// --version prints what `vaultwall version` prints.
		Version: version,
	}
	root.SetVersionTemplate("vaultwall {{.Version}}\n")
	// cobra's own `completion bash|zsh|fish|powershell` command stays on:
	// `source <(vaultwall completion bash)`.
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
