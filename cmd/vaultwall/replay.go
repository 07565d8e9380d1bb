package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/ops/replay"
)

// Exit codes of `vaultwall replay`.
const exitChanged = 2

func newReplayCmd() *cobra.Command {
	var files []string
	var path, policyDir string
	cmd := &cobra.Command{
		Use:   "replay --audit FILE --config CANDIDATE [--policy DIR]",
		Short: "decide the requests of an audit log again with a candidate configuration",
		Long: "Decide every request recorded in the audit log(s) again with the candidate configuration (and\n" +
			"policy directory), and print a summary — unchanged, allow → deny, deny → allow, by stage and code —\n" +
			"and each request whose outcome changes. Tokens are never recorded: requests are replayed with the\n" +
			"recorded verified claims (the candidate's issuers, audiences and tenant are applied to them), and a\n" +
			"request refused at authentication keeps its 401. --audit may be repeated (rotated files); - reads stdin.\n" +
			"Exit status: 0 no outcome changes, 2 some outcomes change, 1 error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := replay.Open(cmd.Context(), path, policyDir)
			if err != nil {
				return err
			}
			defer r.Close()
			var rep replay.Report
			for _, f := range files {
				in := cmd.InOrStdin()
				if f != "-" {
					fh, err := os.Open(f)
					if err != nil {
						return err
					}
					defer fh.Close()
					in = fh
				}
				if err := r.Run(cmd.Context(), f, in, &rep); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
			}
			if err := rep.Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			if rep.Changed() > 0 {
				return &exitError{code: exitChanged, err: fmt.Errorf("%d decisions change", rep.Changed()), quiet: true}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&files, "audit", nil, "audit log file (repeatable; - for stdin) (required)")
	cmd.Flags().StringVar(&path, "config", "", "candidate configuration file (required)")
	cmd.Flags().StringVar(&policyDir, "policy", "", "candidate operator policy directory (overrides policy.dir)")
	_ = cmd.MarkFlagRequired("audit")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
