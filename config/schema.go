package config

import (
	"strings"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/authz/token"
)

// Config is one vaultwall configuration file.
type Config struct {
	Vault           Vault                `json:"vault"`
	Properties      Properties           `json:"properties"`
	Network         network.Network      `json:"network"`
	Identity        token.Identity       `json:"identity"`
	TrustedServices peer.TrustedServices `json:"trustedServices"`
	Policy          Policy               `json:"policy"`
	Server          Server               `json:"server"`
	Limits          Limits               `json:"limits"`
	Log             Log                  `json:"log"`
	ControlPlane    ControlPlane         `json:"controlPlane"`
	// Operations: the audit log, tracing and shadow evaluation (ops.go).
	Audit   Audit   `json:"audit"`
	Tracing Tracing `json:"tracing"`
	Shadow  Shadow  `json:"shadow"`
	// Vaults serves several vaults from this process, one file each.
	Vaults Vaults `json:"vaults"`

	// Path is the file the configuration was loaded from.
	Path    string `json:"-"`
	src     *source
	format  Format
	ignored []string
	notes   []fieldNote
}

// fieldNote is one Notes entry, its field a vaultwall path until rendered.
type fieldNote struct{ field, text string }

// Format is the kind of document the configuration was read from.
func (c *Config) Format() Format {
	if c.format == "" {
		return FormatVaultwall
	}
	return c.format
}

// Ignored lists the fields of the document that were accepted but decide
// nothing (sku, vaultUri, role-assignment metadata, …), by their paths in
// the document.
func (c *Config) Ignored() []string { return c.ignored }

// Notes are what validation wants the operator to know without refusing
// the configuration: rules that can match nothing yet, private endpoints a
// connection state keeps unapproved.
// Fields are named as in the document (resources[0].properties… for a
// template).
func (c *Config) Notes() []string {
	out := make([]string, 0, len(c.notes))
	for _, n := range c.notes {
		f := n.field
		if c.src != nil && c.src.rewrite != nil {
			f = c.src.rewrite(f)
		}
		out = append(out, f+": "+n.text)
	}
	return out
}

// Vault names the protected vault.
type Vault struct {
	Name     string `json:"name"`
	TenantID string `json:"tenantId"`
	Location string `json:"location"`
	// ResourceID is the vault's ARM id; derived from subscriptionId,
	// resourceGroup and name when empty.
	ResourceID     string `json:"resourceId,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	ResourceGroup  string `json:"resourceGroup,omitempty"`
	// Hostnames are the hosts (the request's :authority, without its
	// port; any case) this vault answers to. A vault of vaults.dir that
	// lists none answers to <name>.vault.azure.net. A single-vault file
	// that lists none answers to every host, as it always has; listing
	// them makes it refuse every other host.
	Hostnames []string `json:"hostnames,omitempty"`
}

// Vaults is the multi-vault configuration: the main file keeps the
// process-wide sections (server, identity, limits, log, controlPlane,
// audit, tracing, shadow, and the defaults of trustedServices and policy),
// and each vault is one file of Dir.
type Vaults struct {
	// Dir holds one document per vault (*.yaml, *.yml, *.json; other
	// files and subdirectories are ignored), each with the vault, its
	// properties and network, and optionally its own trustedServices and
	// policy. Each file is reloaded on its own: a broken file keeps that
	// vault's running configuration and never touches the others. The main
	// file then holds no vault, properties or network of its own.
	Dir string `json:"dir,omitempty"`
	// MetricsLabel adds vaultwall_vault_decisions_total, decisions by
	// vault (one series per vault, stage and code): off by default, since
	// its series grow with the number of vaults. Requests no vault answers
	// to are never counted by vault.
	MetricsLabel bool `json:"metricsLabel,omitempty"`
}

// DefaultHostSuffix follows a vault's name in its default hostname.
const DefaultHostSuffix = ".vault.azure.net"

// Hostnames are the hosts the vault answers to (see Vault.Hostnames): its
// own list, else <name>.vault.azure.net when multi is set (a vault of
// vaults.dir), else none (every host).
func (c *Config) Hostnames(multi bool) []string {
	if len(c.Vault.Hostnames) > 0 || !multi {
		return c.Vault.Hostnames
	}
	return []string{strings.ToLower(c.Vault.Name) + DefaultHostSuffix}
}

// Properties are Microsoft.KeyVault/vaults properties, ARM-shaped, so an
// exported vault's networkAcls and accessPolicies can be pasted in.
type Properties struct {
	// TenantID, when set, must equal vault.tenantId (ARM exports carry it).
	TenantID                string                 `json:"tenantId,omitempty"`
	PublicNetworkAccess     string                 `json:"publicNetworkAccess,omitempty"`
	EnableRbacAuthorization bool                   `json:"enableRbacAuthorization,omitempty"`
	NetworkAcls             *network.NetworkAcls   `json:"networkAcls,omitempty"`
	AccessPolicies          []authz.AccessPolicy   `json:"accessPolicies,omitempty"`
	RoleAssignments         []authz.RoleAssignment `json:"roleAssignments,omitempty"`
	// RoleDefinitions are custom roles; built-in roles need no definition.
	RoleDefinitions []authz.RoleDefinition `json:"roleDefinitions,omitempty"`

	// PrivateEndpointConnections are the vault's connections as Azure
	// lists them. When present they decide which network.privateEndpoints
	// are approved: only those whose id is an Approved connection's
	// privateEndpoint.id; Pending, Rejected and Disconnected ones never are.
	PrivateEndpointConnections []network.PrivateEndpointConnection `json:"privateEndpointConnections,omitempty"`

	// ARM properties that decide nothing here (sku, vaultUri, enabledFor*,
	// softDelete*, purge protection, provisioningState, createMode,
	// hsmPoolResourceId) are accepted and set aside before decoding; see
	// Config.Ignored.

	publicAccessDisabled bool
}

// PublicAccessDisabled reports publicNetworkAccess: Disabled.
func (p *Properties) PublicAccessDisabled() bool { return p.publicAccessDisabled }

// Policy configures the authorization policy.
type Policy struct {
	// Dir is a directory of operator .rego files loaded beside the shipped
	// policy; empty uses the shipped policy alone.
	Dir string `json:"dir,omitempty"`
	// AllowOperatorGrants lets operator rules grant access the shipped policy
	// would refuse (rules named grant); off by default, so operator rules
	// can only narrow access.
	AllowOperatorGrants bool `json:"allowOperatorGrants,omitempty"`
	// Timeout is the evaluation budget per request (default 250ms, inside
	// Envoy's 500ms ext_authz timeout of envoy.yaml).
	Timeout Duration `json:"timeout,omitempty"`
}

// Server configures vaultwall's listeners.
type Server struct {
	GRPCAddr string `json:"grpcAddr,omitempty"` // default :9191
	HTTPAddr string `json:"httpAddr,omitempty"` // default :9090
	// Reflection registers gRPC server reflection (off by default).
	Reflection bool      `json:"reflection,omitempty"`
	TLS        ServerTLS `json:"tls"`
	// MaxRecvMsgBytes bounds one CheckRequest (default 1 MiB).
	MaxRecvMsgBytes int `json:"maxRecvMsgBytes,omitempty"`
	// ShutdownGrace is how long SIGTERM waits for in-flight checks (default 10s).
	ShutdownGrace Duration `json:"shutdownGrace,omitempty"`
}

// ServerTLS secures the gRPC listener.
type ServerTLS struct {
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ClientCAFile enables mTLS: clients (Envoy) must present a certificate
	// chaining to it.
	ClientCAFile string `json:"clientCAFile,omitempty"`
}

// Enabled reports whether the listener serves TLS.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// Limits caps list sizes, as Key Vault does.
type Limits struct {
	MaxIPRules             int `json:"maxIpRules,omitempty"`             // default 1000
	MaxVirtualNetworkRules int `json:"maxVirtualNetworkRules,omitempty"` // default 200
	MaxAccessPolicies      int `json:"maxAccessPolicies,omitempty"`      // default 1024
}

// Log configures vaultwall's own log.
type Log struct {
	Level  string `json:"level,omitempty"`  // debug | info (default) | warn | error
	Format string `json:"format,omitempty"` // json (default) | text
}
