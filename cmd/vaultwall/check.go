package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

// Exit codes of `vaultwall check`.
const (
	exitAllowed = 0
	exitFailed  = 1
	exitDenied  = 2
)

func newCheckCmd() *cobra.Command {
	var path, input, policyDir string
	var explain bool
	cmd := &cobra.Command{
		Use:   "check --config FILE --input REQUEST.json [--explain]",
		Short: "decide one CheckRequest offline and print the CheckResponse",
		Long: "Decide one request, given as an Envoy CheckRequest in JSON (\"-\" reads stdin), with the\n" +
			"configuration's full pipeline, and print the CheckResponse Envoy would receive. --explain first\n" +
			"prints each stage's verdict and the rule that decided. Exit status: 0 allowed, 2 denied, 1 error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, resp, err := checkOnce(cmd.Context(), path, policyDir, input, cmd.InOrStdin())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if explain {
				if err := d.WriteExplanation(out); err != nil {
					return err
				}
				if d.Err != nil {
					fmt.Fprintf(out, "  internal error: %v\n", d.Err)
				}
			}
			if err := printJSON(out, resp); err != nil {
				return err
			}
			if !d.Allowed {
				return &exitError{code: exitDenied, err: fmt.Errorf("denied"), quiet: true}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&input, "input", "", "CheckRequest JSON file, or - for stdin (required)")
	cmd.Flags().StringVar(&policyDir, "policy", "", "operator policy directory (overrides policy.dir)")
	cmd.Flags().BoolVar(&explain, "explain", false, "print each stage's verdict before the response")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

// checkOnce builds the configuration's pipeline, waits briefly for issuer
// keys (so tokens can be verified), and decides the request.
func checkOnce(ctx context.Context, path, policyDir, input string, stdin io.Reader) (*authz.Decision, *authv3.CheckResponse, error) {
	keys := token.NewKeyStore(token.StoreOptions{})
	defer keys.Close()
	b := &engine.Builder{Keys: keys, PolicyDir: policyDir}
	set, err := engine.CompileSet(ctx, path, b.Build, nil)
	if err != nil {
		return nil, nil, err
	}
	defer set.Close()
	cr, err := readCheckRequest(input, stdin)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	for _, rt := range set.Runtimes {
		if rt.Authenticator != nil {
			_ = rt.Authenticator.WaitReady(wctx) // not ready: the decision says so
		}
	}
	cancel()
	srv := envoy.NewServer(nil, nil)
	srv.SetVaults(set.Vaults)
	d := srv.Decide(ctx, cr)
	return d, envoy.ResponseFrom(d.Response()), nil
}

func readCheckRequest(input string, stdin io.Reader) (*authv3.CheckRequest, error) {
	var data []byte
	var err error
	if input == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(input)
	}
	if err != nil {
		return nil, err
	}
	var cr authv3.CheckRequest
	if err := protojson.Unmarshal(data, &cr); err != nil {
		return nil, fmt.Errorf("%s: not a CheckRequest in JSON: %w", input, err)
	}
	return &cr, nil
}
