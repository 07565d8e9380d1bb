package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/rego"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "validate a configuration (every stage compiled, nothing started) and print a summary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateConfig(cmd, args[0])
		},
	})
	var roleAssignments, output string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "turn az keyvault show output or an ARM template into a commented vaultwall configuration",
		Long: `import reads what Azure gives you — the document az keyvault show prints (JSON or
YAML), or an ARM template / az group export --skip-all-params with one
Microsoft.KeyVault/vaults resource — and writes a vaultwall configuration:
the vault's identity and properties as Azure holds them, and the network
inventory, issuers and trusted services an Azure document cannot carry, as
placeholders marked ` + config.ImportMarker + `. With --role-assignments, the output of
az role assignment list --scope <vault id> --include-inherited becomes
properties.roleAssignments.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var ra []byte
			if roleAssignments != "" {
				if ra, err = os.ReadFile(roleAssignments); err != nil {
					return err
				}
			}
			out, err := config.Import(args[0], data, ra)
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			return os.WriteFile(output, out, 0o644)
		},
	}
	imp.Flags().StringVar(&roleAssignments, "role-assignments", "", "az role assignment list output (JSON or YAML) to import as properties.roleAssignments")
	imp.Flags().StringVar(&output, "output-file", "", "write the configuration here instead of to standard output")
	cmd.AddCommand(imp)
	return cmd
}

// validateConfig parses and builds the configuration as a reload would;
// a panic in either is reported as an error (engine.ErrPanic), never a
// stack trace on the terminal.
func validateConfig(cmd *cobra.Command, path string) error {
	keys := token.NewKeyStore(token.StoreOptions{})
	defer keys.Close()
	b := &engine.Builder{Keys: keys}
	set, err := engine.CompileSet(cmd.Context(), path, b.Build, nil)
	if err != nil {
		return err
	}
	set.Close()
	// The control-plane policy is compiled where vaultwall serve starts the
	// control plane: compile it here too, so that an error in
	// controlPlane.policyDir (a misspelt input field) is found before.
	if cp := set.Main.ControlPlane; cp.Enabled {
		if _, err := rego.NewControl(cmd.Context(), cp.PolicyDir); err != nil {
			return fmt.Errorf("%s: controlPlane.policyDir: %w", path, err)
		}
	}
	if set.Multi {
		fmt.Fprintf(cmd.OutOrStdout(), "%s: valid, %d vaults from %s\n", path, len(set.Runtimes), set.Main.Vaults.Dir)
		for _, rt := range set.Runtimes {
			writeSummary(cmd.OutOrStdout(), rt.Config)
		}
		return warnOverriddenVaults(cmd.ErrOrStderr(), path, set)
	}
	rt := set.Runtimes[0]
	writeSummary(cmd.OutOrStdout(), rt.Config)
	return warnOverridden(cmd.ErrOrStderr(), path, rt.Config)
}

// warnOverridden names the properties the file sets whose value is not the
// one served, because the control plane's stored value overrides them: an
// edit there would be ignored. It can know only for a file store; with
// etcd it says it cannot. The file and the stored state failing to merge is
// an error, as vaultwall serve would refuse them.
func warnOverridden(w io.Writer, path string, cfg *config.Config) error {
	cp := cfg.ControlPlane
	if !cp.Enabled {
		return nil
	}
	if cp.Store.Type == config.StoreEtcd {
		fmt.Fprintf(w, "note: properties stored by the control plane in etcd override the file's; validate cannot read them offline (vaultwall admin show lists them)\n")
		return nil
	}
	return warnStored(w, cfg, cp.Store.Path, config.Parse)
}

// warnOverriddenVaults is warnOverridden for every vault of vaults.dir:
// each vault's stored state (the file store's vaultwall-state.<vault>.json)
// is laid over that vault's composed configuration (its file parsed onto
// the main file, config.ParseVault), as the control plane lays it. A state
// that does not merge is an error naming its vault; every vault is checked.
func warnOverriddenVaults(w io.Writer, path string, set *engine.Set) error {
	cp := set.Main.ControlPlane
	if !cp.Enabled {
		return nil
	}
	if cp.Store.Type == config.StoreEtcd {
		fmt.Fprintf(w, "note: properties stored by the control plane in etcd (%s<vault>/state) override the vaults' files; validate cannot read them offline (vaultwall admin --vault NAME show lists them)\n", cp.Store.KeyPrefix)
		return nil
	}
	mainData, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	parse := func(name string, data []byte) (*config.Config, error) {
		return config.ParseVault(path, mainData, name, data)
	}
	var errs []error
	for _, rt := range set.Runtimes {
		name := rt.Config.Vault.Name
		state := controlplane.VaultStateFile(cp.Store.Path, name)
		if err := warnStored(w, rt.Config, state, parse); err != nil {
			errs = append(errs, fmt.Errorf("vault %s: stored state %s: %w", name, state, err))
		}
	}
	return errors.Join(errs...)
}

// warnStored lays the file store's state at state over cfg's file, parsed
// with parse, and warns about each property of the file it overrides.
func warnStored(w io.Writer, cfg *config.Config, state string, parse engine.ParseFunc) error {
	snap, err := store.ReadFile(state)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		return err
	}
	merged, err := controlplane.MergeWith(parse, cfg.Path, data, snap.State)
	if err != nil {
		return err
	}
	for _, p := range engine.IgnoredFileProperties(cfg, merged) {
		fmt.Fprintf(w, "warning: %s: the control plane's stored value (%s) is the one served; edits here are ignored — make them through the management API\n", p, state)
	}
	return nil
}

func writeSummary(w io.Writer, c *config.Config) {
	p := &c.Properties
	fmt.Fprintf(w, "%s: valid\n", c.Path)
	if f := c.Format(); f != config.FormatVaultwall {
		fmt.Fprintf(w, "  read as          %s\n", f)
	}
	fmt.Fprintf(w, "  vault            %s (tenant %s, %s)\n", c.Vault.Name, c.Vault.TenantID, c.Vault.Location)
	access := "Enabled"
	if p.PublicAccessDisabled() {
		access = "Disabled"
	}
	fmt.Fprintf(w, "  public access    %s\n", access)
	if acl := p.NetworkAcls; acl != nil {
		fmt.Fprintf(w, "  network ACLs     defaultAction %s, bypass %s, %d IP rules, %d virtual-network rules\n",
			acl.DefaultAction, acl.Bypass, len(acl.IPRules), len(acl.VirtualNetworkRules))
	} else {
		fmt.Fprintf(w, "  network ACLs     none (every address is allowed)\n")
	}
	fmt.Fprintf(w, "  network          %d subnets, %d private endpoints, trusted proxies: %d hops, %d CIDRs\n",
		len(c.Network.Subnets), len(c.Network.PrivateEndpoints), c.Network.TrustedProxies.Hops, len(c.Network.TrustedProxies.CIDRs))
	if p.EnableRbacAuthorization {
		fmt.Fprintf(w, "  authorization    RBAC: %d role assignments, %d custom roles\n", len(p.RoleAssignments), len(p.RoleDefinitions))
	} else {
		fmt.Fprintf(w, "  authorization    access policies: %d entries\n", len(p.AccessPolicies))
	}
	if len(c.Identity.Issuers) == 0 {
		fmt.Fprintf(w, "  issuers          0 (no token is accepted: every request that needs one gets the 401)\n")
	} else {
		fmt.Fprintf(w, "  issuers          %d\n", len(c.Identity.Issuers))
	}
	for _, is := range c.Identity.Issuers {
		src := "discovery"
		switch {
		case is.JWKSURI != "":
			src = "jwksUri " + is.JWKSURI
		case is.JWKSFile != "":
			src = "jwksFile " + is.JWKSFile
		}
		fmt.Fprintf(w, "    %s (%s)\n", is.Issuer, src)
	}
	fmt.Fprintf(w, "  challenge        %s\n", c.ChallengeHeader())
	fmt.Fprintf(w, "  trusted services %d bound\n", len(c.TrustedServices.Services))
	for _, s := range c.TrustedServices.Services {
		fmt.Fprintf(w, "    %s ← %v\n", s.Name, s.Principals)
	}
	policy := "shipped"
	if c.Policy.Dir != "" {
		policy = "shipped + operator rules in " + c.Policy.Dir
	}
	fmt.Fprintf(w, "  policy           %s\n", policy)
	fmt.Fprintf(w, "  listeners        grpc %s, http %s\n", c.Server.GRPCAddr, c.Server.HTTPAddr)
	if cp := c.ControlPlane; cp.Enabled {
		where := cp.Store.Path
		if cp.Store.Type == config.StoreEtcd {
			where = strings.Join(cp.Store.Endpoints, ",") + " " + cp.Store.KeyPrefix
		}
		fmt.Fprintf(w, "  control plane    %s (tls %v), %d audiences, %d admin principals, store %s %s\n",
			cp.ListenAddr, cp.TLS.Enabled(), len(cp.Audiences), len(cp.AdminPrincipals), cp.Store.Type, where)
	} else {
		fmt.Fprintf(w, "  control plane    off\n")
	}
	if ig := c.IgnoredSummary(); len(ig) > 0 {
		fmt.Fprintf(w, "  ignored          %d fields that decide nothing here:\n", len(c.Ignored()))
		for _, f := range ig {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	for _, n := range c.Notes() {
		fmt.Fprintf(w, "  note             %s\n", n)
	}
	switch a := c.Audit; {
	case !a.Enabled:
		fmt.Fprintf(w, "  audit            off\n")
	case a.Sink == "file":
		fmt.Fprintf(w, "  audit            file %s (rotated at %d MB)\n", a.Path, a.MaxSizeMB)
	default:
		fmt.Fprintf(w, "  audit            %s\n", a.Sink)
	}
	if t := c.Tracing; t.Endpoint != "" {
		fmt.Fprintf(w, "  tracing          OTLP/%s %s\n", t.Protocol, t.Endpoint)
	} else {
		fmt.Fprintf(w, "  tracing          off\n")
	}
	if sh := c.Shadow; sh.Config != "" || sh.PolicyDir != "" {
		fmt.Fprintf(w, "  shadow           config %q, policy dir %q\n", sh.Config, sh.PolicyDir)
	} else {
		fmt.Fprintf(w, "  shadow           off\n")
	}
}

func newTrustedServicesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "trusted-services", Short: "the built-in trusted-service catalog"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "print every catalog entry with its scenario and bypass scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return peer.WriteTable(cmd.OutOrStdout())
		},
	})
	return cmd
}
