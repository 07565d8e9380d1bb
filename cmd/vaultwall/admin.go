package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// adminConn holds the connection flags shared by every admin verb.
type adminConn struct {
	server, token, tokenFile       string
	caFile, certFile, keyFile, sni string
	plaintext                      bool
	timeout                        time.Duration
	vault                          string
	out                            printer
}

func newAdminCmd() *cobra.Command {
	c := &adminConn{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "manage a running vaultwall through its control-plane API (like az keyvault)",
		Long: "Change the vault's network rules, access policies and role assignments through vaultwall's\n" +
			"control plane (controlPlane in the configuration). Every write sends the etag it read; the\n" +
			"idempotent verbs (update, network-rule add/remove, set-policy, delete-policy, role assignment\n" +
			"create/delete) read again and retry once when another writer got there first.\n\n" +
			"Output is az's: a vault as az keyvault show prints it (ARM's shape and spelling:\n" +
			"properties.networkAcls.defaultAction \"Deny\", publicNetworkAccess \"Enabled\"), network rules\n" +
			"as az keyvault network-rule list, role assignments as az role assignment list; -o picks\n" +
			"json (default), jsonc, yaml, table, tsv or none, and --query filters with JMESPath first.\n\n" +
			"--vault names the vault: required when the vaultwall serves several (vaults.dir), each with\n" +
			"its own state and etag; without it the only vault is managed.",
	}
	f := cmd.PersistentFlags()
	f.StringVar(&c.vault, "vault", os.Getenv("VAULTWALL_VAULT"), "the vault to manage, by name ($VAULTWALL_VAULT); required when the vaultwall serves several vaults (vaults.dir)")
	f.StringVar(&c.server, "server", envOr("VAULTWALL_SERVER", "127.0.0.1:9292"), "control-plane address host:port ($VAULTWALL_SERVER)")
	f.StringVar(&c.token, "token", "", "bearer token for the management audience ($VAULTWALL_TOKEN)")
	f.StringVar(&c.tokenFile, "token-file", "", "read the bearer token from this file")
	f.StringVar(&c.caFile, "ca-file", "", "CA bundle that signs the server's certificate (default: the system roots)")
	f.StringVar(&c.certFile, "cert-file", "", "client certificate (mTLS admin principal)")
	f.StringVar(&c.keyFile, "key-file", "", "client certificate's key")
	f.StringVar(&c.sni, "tls-server-name", "", "server name to verify (default: the host of --server)")
	f.BoolVar(&c.plaintext, "plaintext", false, "connect without TLS (loopback only, for tests and local use)")
	f.DurationVar(&c.timeout, "timeout", 15*time.Second, "time limit of each call")
	f.StringVarP(&c.out.format, "output", "o", "json", "output format: "+strings.Join(outputFormats, ", "))
	f.StringVar(&c.out.query, "query", "", "JMESPath query applied to the output (as az's --query)")
	cmd.AddCommand(
		c.showCmd(), c.updateCmd(), c.networkRuleCmd(), c.setPolicyCmd(), c.deletePolicyCmd(), c.roleCmd(), c.vaultCmd(),
	)
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// dial connects and returns a client and the context every call uses.
func (c *adminConn) dial(ctx context.Context) (v1.VaultAdminServiceClient, context.Context, func(), error) {
	tok := c.token
	if tok == "" {
		tok = os.Getenv("VAULTWALL_TOKEN")
	}
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, nil, nil, err
		}
		tok = strings.TrimSpace(string(b))
	}
	var creds credentials.TransportCredentials
	if c.plaintext {
		creds = insecure.NewCredentials()
	} else {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.sni}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, nil, nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, nil, fmt.Errorf("--ca-file %s holds no PEM certificate", c.caFile)
			}
		}
		if c.certFile != "" {
			cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--cert-file/--key-file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(c.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return v1.NewVaultAdminServiceClient(cc), ctx, func() { cancel(); cc.Close() }, nil
}

// run connects and runs fn.
func (c *adminConn) run(cmd *cobra.Command, fn func(ctx context.Context, cl v1.VaultAdminServiceClient) error) error {
	if err := c.out.validate(); err != nil { // before anything is written
		return err
	}
	cl, ctx, done, err := c.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	return explainStatus(fn(ctx, cl))
}

// retryOnConflict reads the vault, computes and sends a write from it, and
// on a stale etag does it once more from a fresh read. Only idempotent
// verbs use it: their write is recomputed from the new state, so repeating
// it cannot apply the intent twice.
func retryOnConflict(ctx context.Context, cl v1.VaultAdminServiceClient, write func(v *v1.Vault) error) error {
	return retryOnConflictIn(ctx, cl, "", write)
}

// retryOnConflictIn is retryOnConflict on the vault called vault ("": the
// only one).
func retryOnConflictIn(ctx context.Context, cl v1.VaultAdminServiceClient, vault string, write func(v *v1.Vault) error) error {
	for attempt := 0; ; attempt++ {
		got, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: vault})
		if err != nil {
			return err
		}
		err = write(got.GetVault())
		if status.Code(err) != codes.Aborted || attempt == 1 {
			return err
		}
	}
}

// explainStatus turns a gRPC status into a CLI message: its code in
// words ("invalid argument: …", "not found: …").
func explainStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return fmt.Errorf("%s: %s", codeWords(st.Code()), st.Message())
}

// codeWords spells a gRPC code in lower-case words: grpc-go's
// Code.String is CamelCase (InvalidArgument), not the spec's
// INVALID_ARGUMENT, so both are split.
func codeWords(c codes.Code) string {
	var b strings.Builder
	prev := ' '
	for _, r := range c.String() {
		switch {
		case r == '_':
			r = ' '
		case r >= 'A' && r <= 'Z' && prev >= 'a' && prev <= 'z':
			b.WriteByte(' ')
		}
		b.WriteRune(r)
		prev = r
	}
	return strings.ToLower(b.String())
}

// printJSON prints a message as stable, indented JSON (protojson's own
// indentation varies on purpose).
func printJSON(w io.Writer, m proto.Message) error {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

func (c *adminConn) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "print the vault's properties in force and its etag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				got, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: c.vault})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armVault(got.GetVault()), vaultTable(got.GetVault()))
			})
		},
	}
}

// updateCmd is az keyvault update's network properties.
func (c *adminConn) updateCmd() *cobra.Command {
	var defaultAction, bypass, public string
	cmd := &cobra.Command{
		Use:   "update [--default-action Allow|Deny] [--bypass AzureServices|None] [--public-network-access Enabled|Disabled]",
		Short: "change the firewall's default action, bypass or public network access (az keyvault update)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props := &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{}}
			var paths []string
			if defaultAction != "" {
				switch strings.ToLower(defaultAction) {
				case "allow":
					props.NetworkAcls.DefaultAction = v1.DefaultAction_DEFAULT_ACTION_ALLOW
				case "deny":
					props.NetworkAcls.DefaultAction = v1.DefaultAction_DEFAULT_ACTION_DENY
				default:
					return fmt.Errorf("--default-action %q: want Allow or Deny", defaultAction)
				}
				paths = append(paths, "network_acls.default_action")
			}
			if bypass != "" {
				switch strings.ToLower(bypass) {
				case "azureservices":
					props.NetworkAcls.Bypass = v1.Bypass_BYPASS_AZURE_SERVICES
				case "none":
					props.NetworkAcls.Bypass = v1.Bypass_BYPASS_NONE
				default:
					return fmt.Errorf("--bypass %q: want AzureServices or None", bypass)
				}
				paths = append(paths, "network_acls.bypass")
			}
			if public != "" {
				switch strings.ToLower(public) {
				case "enabled":
					props.PublicNetworkAccess = v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_ENABLED
				case "disabled":
					props.PublicNetworkAccess = v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED
				default:
					return fmt.Errorf("--public-network-access %q: want Enabled or Disabled", public)
				}
				paths = append(paths, "public_network_access")
			}
			if len(paths) == 0 {
				return errors.New("give at least one of --default-action, --bypass and --public-network-access")
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				var out *v1.Vault
				err := retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					resp, err := cl.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Vault: c.vault,
						Etag: v.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}, Properties: props})
					out = resp.GetVault()
					return err
				})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armVault(out), vaultTable(out))
			})
		},
	}
	cmd.Flags().StringVar(&defaultAction, "default-action", "", "Allow or Deny: what happens when no rule matches")
	cmd.Flags().StringVar(&bypass, "bypass", "", "AzureServices or None: whether trusted services pass the firewall")
	cmd.Flags().StringVar(&public, "public-network-access", "", "Enabled or Disabled")
	return cmd
}

// ruleFlags are network-rule's list flags; az takes several values
// space-separated (--ip-address 203.0.113.7 198.51.100.0/24).
var ruleFlags = []string{"--ip-address", "--subnet"}

func (c *adminConn) networkRuleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network-rule", Short: "add, remove or list the vault's IP and virtual-network rules"}
	var ips, subnets []string
	change := func(add bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if len(ips) == 0 && len(subnets) == 0 {
				return errors.New("give --ip-address or --subnet (several values allowed)")
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				var out *v1.Vault
				err := retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					acls := v.GetProperties().GetNetworkAcls()
					rules, vnets := slices.Clone(acls.GetIpRules()), slices.Clone(acls.GetVirtualNetworkRules())
					var paths []string
					for _, ip := range ips {
						i := slices.IndexFunc(rules, func(r *v1.IpRule) bool { return sameIP(r.GetValue(), ip) })
						switch {
						case add && i < 0:
							rules = append(rules, &v1.IpRule{Value: ip})
						case !add && i >= 0:
							rules = slices.Delete(rules, i, i+1)
						default:
							continue // already as asked
						}
						if !slices.Contains(paths, "network_acls.ip_rules") {
							paths = append(paths, "network_acls.ip_rules")
						}
					}
					for _, subnet := range subnets {
						i := slices.IndexFunc(vnets, func(r *v1.VirtualNetworkRule) bool { return strings.EqualFold(r.GetId(), subnet) })
						switch {
						case add && i < 0:
							vnets = append(vnets, &v1.VirtualNetworkRule{Id: subnet})
						case !add && i >= 0:
							vnets = slices.Delete(vnets, i, i+1)
						default:
							continue
						}
						if !slices.Contains(paths, "network_acls.virtual_network_rules") {
							paths = append(paths, "network_acls.virtual_network_rules")
						}
					}
					if len(paths) == 0 {
						out = v // already as asked: nothing to write
						return nil
					}
					resp, err := cl.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Vault: c.vault,
						Etag: v.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
						Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: rules, VirtualNetworkRules: vnets}},
					})
					out = resp.GetVault()
					return err
				})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armVault(out), vaultTable(out)) // az prints the vault
			})
		}
	}
	add := &cobra.Command{Use: "add [--ip-address ADDR[/BITS]...] [--subnet ID...]", Short: "add rules (no-op for those present), as az keyvault network-rule add", RunE: change(true)}
	remove := &cobra.Command{Use: "remove [--ip-address ADDR[/BITS]...] [--subnet ID...]", Short: "remove rules (no-op for those absent)", RunE: change(false)}
	for _, sub := range []*cobra.Command{add, remove} {
		sub.Flags().StringSliceVar(&ips, "ip-address", nil, "IP addresses or CIDR prefixes (space- or comma-separated, or repeated)")
		sub.Flags().StringSliceVar(&subnets, "subnet", nil, "subnets' ARM ids")
		azFlagParsing(sub, ruleFlags)
	}
	list := &cobra.Command{
		Use: "list", Short: "list the network rules (az keyvault network-rule list)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				got, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: c.vault})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armNetworkRules(got.GetVault()), networkRulesTable(got.GetVault()))
			})
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

// azFlagParsing lets cmd take az's space-separated lists for the named
// flags: cobra's own parsing is turned off and done in RunE on the
// rewritten arguments.
func azFlagParsing(cmd *cobra.Command, flags []string) {
	run := cmd.RunE
	cmd.DisableFlagParsing = true
	cmd.Flags().BoolP("help", "h", false, "help for "+cmd.Name())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.DisableFlagParsing = false // ParseFlags is a no-op while it is set
		err := cmd.ParseFlags(azLists(args, flags))
		cmd.DisableFlagParsing = true
		if err != nil {
			return err
		}
		if help, _ := cmd.Flags().GetBool("help"); help {
			return cmd.Help()
		}
		if rest := cmd.Flags().Args(); len(rest) > 0 {
			return fmt.Errorf("unexpected arguments %v", rest)
		}
		return run(cmd, nil)
	}
}

// sameIP compares rules as ARM echoes them: a single address equals its
// full-length prefix.
func sameIP(a, b string) bool {
	trim := func(s string) string {
		s = strings.TrimSuffix(s, "/32")
		return strings.TrimSuffix(s, "/128")
	}
	return strings.EqualFold(trim(a), trim(b))
}

// permissionFlags are set-policy's list flags; az takes their values
// space-separated (--secret-permissions get list).
var permissionFlags = []string{"--key-permissions", "--secret-permissions", "--certificate-permissions", "--storage-permissions"}

// azLists rewrites "--flag a b c" into "--flag=a,b,c" for the named list
// flags, so az's habit parses with cobra.
func azLists(args, flags []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !slices.Contains(flags, a) {
			out = append(out, a)
			continue
		}
		var vals []string
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			vals = append(vals, strings.Split(args[i], ",")...)
		}
		out = append(out, a+"="+strings.Join(vals, ","))
	}
	return out
}

func (c *adminConn) setPolicyCmd() *cobra.Command {
	var oid, app string
	var keys, secrets, certs, storage []string
	cmd := &cobra.Command{
		Use:   "set-policy --object-id OID [--application-id APP] [--secret-permissions P...] [--key-permissions P...] [--certificate-permissions P...] [--storage-permissions P...]",
		Short: "set an identity's permissions: each family given is replaced, the others kept (az keyvault set-policy)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if oid == "" {
				return errors.New("--object-id is required")
			}
			fl := cmd.Flags()
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				var out *v1.Vault
				err := retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					list := slices.Clone(v.GetProperties().GetAccessPolicies())
					i := slices.IndexFunc(list, func(p *v1.AccessPolicy) bool {
						return strings.EqualFold(p.GetObjectId(), oid) && strings.EqualFold(p.GetApplicationId(), app)
					})
					entry := &v1.AccessPolicy{ObjectId: oid, ApplicationId: app, Permissions: &v1.Permissions{}}
					if i >= 0 {
						entry = proto.Clone(list[i]).(*v1.AccessPolicy)
					}
					p := entry.Permissions
					if p == nil {
						p = &v1.Permissions{}
						entry.Permissions = p
					}
					if fl.Changed("key-permissions") {
						p.Keys = keys
					}
					if fl.Changed("secret-permissions") {
						p.Secrets = secrets
					}
					if fl.Changed("certificate-permissions") {
						p.Certificates = certs
					}
					if fl.Changed("storage-permissions") {
						p.Storage = storage
					}
					if i >= 0 {
						list[i] = entry
					} else {
						list = append(list, entry)
					}
					resp, err := cl.UpdateAccessPolicies(ctx, &v1.UpdateAccessPoliciesRequest{Vault: c.vault,
						Kind: v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REPLACE, Etag: v.GetEtag(), AccessPolicies: list})
					out = resp.GetVault()
					return err
				})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armVault(out), vaultTable(out)) // az prints the vault
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&oid, "object-id", "", "the identity's object id (user, group or service principal)")
	f.StringVar(&app, "application-id", "", "application id, for a compound identity")
	f.StringSliceVar(&keys, "key-permissions", nil, "key permissions (space- or comma-separated)")
	f.StringSliceVar(&secrets, "secret-permissions", nil, "secret permissions")
	f.StringSliceVar(&certs, "certificate-permissions", nil, "certificate permissions")
	f.StringSliceVar(&storage, "storage-permissions", nil, "storage permissions")
	azFlagParsing(cmd, permissionFlags)
	return cmd
}

func (c *adminConn) deletePolicyCmd() *cobra.Command {
	var oid, app string
	cmd := &cobra.Command{
		Use:   "delete-policy --object-id OID [--application-id APP]",
		Short: "delete an identity's access policy (az keyvault delete-policy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if oid == "" {
				return errors.New("--object-id is required")
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				var out *v1.Vault
				err := retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					resp, err := cl.UpdateAccessPolicies(ctx, &v1.UpdateAccessPoliciesRequest{Vault: c.vault,
						Kind: v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REMOVE, Etag: v.GetEtag(),
						AccessPolicies: []*v1.AccessPolicy{{ObjectId: oid, ApplicationId: app}}})
					out = resp.GetVault()
					return err
				})
				if err != nil {
					return err
				}
				return c.out.printView(cmd.OutOrStdout(), armVault(out), vaultTable(out)) // az prints the vault
			})
		},
	}
	cmd.Flags().StringVar(&oid, "object-id", "", "the identity's object id")
	cmd.Flags().StringVar(&app, "application-id", "", "application id, for a compound identity")
	return cmd
}

func (c *adminConn) roleCmd() *cobra.Command {
	role := &cobra.Command{Use: "role", Short: "role-based access (RBAC vaults)"}
	ra := &cobra.Command{Use: "assignment", Short: "create, delete or list role assignments (az role assignment)"}
	var assignee, roleName, scope, id string
	create := &cobra.Command{
		Use: "create --assignee PRINCIPAL --role ROLE [--scope /|/secrets/NAME|…] [--id ID]", Short: "assign a role", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if assignee == "" || roleName == "" {
				return errors.New("--assignee and --role are required")
			}
			if id == "" {
				id = uuid.NewString() // chosen once, so a retry creates the same assignment
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				var out *v1.RoleAssignment
				var vault *v1.Vault
				err := retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					resp, err := cl.CreateRoleAssignment(ctx, &v1.CreateRoleAssignmentRequest{Vault: c.vault, Etag: v.GetEtag(),
						RoleAssignment: &v1.RoleAssignment{Id: id, PrincipalId: assignee, RoleDefinitionId: roleName, Scope: scope}})
					out, vault = resp.GetRoleAssignment(), v
					return err
				})
				if err != nil {
					return err
				}
				ra := armRoleAssignment(out, vault)
				return c.out.printView(cmd.OutOrStdout(), ra, roleAssignmentsTable([]any{ra}))
			})
		},
	}
	create.Flags().StringVar(&assignee, "assignee", "", "the principal's object id (a GUID)")
	create.Flags().StringVar(&roleName, "role", "", "role name or id, e.g. \"Key Vault Secrets User\"")
	create.Flags().StringVar(&scope, "scope", "/", "/ (the vault) or /secrets/NAME, /keys/NAME, /certificates/NAME")
	create.Flags().StringVar(&id, "id", "", "assignment id, a GUID (default: a new one)")
	var delID string
	del := &cobra.Command{
		Use: "delete --id ID", Short: "delete a role assignment (no-op when absent)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if delID == "" {
				return errors.New("--id is required")
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				return retryOnConflictIn(ctx, cl, c.vault, func(v *v1.Vault) error {
					resp, err := cl.DeleteRoleAssignment(ctx, &v1.DeleteRoleAssignmentRequest{Vault: c.vault, Id: delID, Etag: v.GetEtag()})
					if err == nil && !resp.GetDeleted() {
						fmt.Fprintf(cmd.ErrOrStderr(), "no role assignment %s\n", delID)
					}
					return err
				})
			})
		},
	}
	del.Flags().StringVar(&delID, "id", "", "assignment id")
	var listAssignee, listScope string
	list := &cobra.Command{
		Use: "list [--assignee PRINCIPAL] [--scope SCOPE]", Short: "list role assignments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				resp, err := cl.ListRoleAssignments(ctx, &v1.ListRoleAssignmentsRequest{Vault: c.vault, PrincipalId: listAssignee, Scope: listScope})
				if err != nil {
					return err
				}
				got, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: c.vault}) // the vault's ARM id and custom roles
				if err != nil {
					return err
				}
				out := mapList(resp.GetRoleAssignments(), func(ra *v1.RoleAssignment) any { return armRoleAssignment(ra, got.GetVault()) })
				return c.out.printView(cmd.OutOrStdout(), out, roleAssignmentsTable(out))
			})
		},
	}
	list.Flags().StringVar(&listAssignee, "assignee", "", "only this principal's assignments")
	list.Short = "list role assignments (as az role assignment list prints them)"
	list.Flags().StringVar(&listScope, "scope", "", "only assignments at exactly this scope")
	ra.AddCommand(create, del, list)
	role.AddCommand(ra)
	return role
}

// vaultCmd creates, deletes and lists the vaults themselves: a vault
// created here keeps its whole document in the control plane's store
// (vaults.dir configurations only).
func (c *adminConn) vaultCmd() *cobra.Command {
	vault := &cobra.Command{Use: "vault", Short: "create, delete or list the vaults this vaultwall serves (vaults.dir)"}
	var file, createEtag string
	create := &cobra.Command{
		Use:   "create --file F",
		Short: "create a vault from a vault document (YAML or JSON, as a file of vaults.dir), kept in the control-plane store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--file is required")
			}
			doc, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				resp, err := cl.CreateVault(ctx, &v1.CreateVaultRequest{Document: doc, Etag: createEtag})
				if err != nil {
					return err
				}
				out := []any{vaultSummary(resp.GetVault())}
				return c.out.printView(cmd.OutOrStdout(), out[0], vaultsTable(out))
			})
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "the vault document")
	create.Flags().StringVar(&createEtag, "etag", "*", "create only if the list of vaults (vault list -o json: its etag) is still this")
	var etag string
	del := &cobra.Command{
		Use:   "delete NAME [--etag ETAG]",
		Short: "delete a vault created through the control plane (a vault of a file: remove the file)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				_, err := cl.DeleteVault(ctx, &v1.DeleteVaultRequest{Vault: args[0], Etag: etag})
				return err
			})
		},
	}
	del.Flags().StringVar(&etag, "etag", "*", "delete only if the vault's etag (vault list) is still this")
	list := &cobra.Command{
		Use:   "list",
		Short: "list the vaults: name, source (file or control-plane store), hostnames, etag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd, func(ctx context.Context, cl v1.VaultAdminServiceClient) error {
				resp, err := cl.ListVaults(ctx, &v1.ListVaultsRequest{})
				if err != nil {
					return err
				}
				out := mapList(resp.GetVaults(), vaultSummary)
				return c.out.printView(cmd.OutOrStdout(), out, vaultsTable(out))
			})
		},
	}
	vault.AddCommand(create, del, list)
	return vault
}

func vaultSummary(v *v1.VaultSummary) any {
	return map[string]any{"name": v.GetName(), "source": v.GetSource(), "hostnames": orEmpty(v.GetHostnames()),
		"etag": v.GetEtag(), "inForce": v.GetInForce()}
}

func vaultsTable(list []any) func() tableView {
	return func() tableView {
		tv := tableView{cols: []string{"Name", "Source", "Hostnames", "InForce"}}
		for _, e := range list {
			m := e.(map[string]any)
			tv.rows = append(tv.rows, []string{str(m["name"]), str(m["source"]), strings.Join(m["hostnames"].([]string), ","), fmt.Sprint(m["inForce"])})
		}
		return tv
	}
}
