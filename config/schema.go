package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
)

// Config is one vaultwall configuration file.
type Config struct {
	Vault           Vault           `json:"vault"`
	Properties      Properties      `json:"properties"`
	Network         Network         `json:"network"`
	Identity        Identity        `json:"identity"`
	TrustedServices TrustedServices `json:"trustedServices"`
	Policy          Policy          `json:"policy"`
	Server          Server          `json:"server"`
	Limits          Limits          `json:"limits"`
	Log             Log             `json:"log"`
	ControlPlane    ControlPlane    `json:"controlPlane"`
	// Operations: the audit log, tracing and shadow evaluation (ops.go).
	Audit   Audit   `json:"audit"`
	Tracing Tracing `json:"tracing"`
	Shadow  Shadow  `json:"shadow"`

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
}

// Properties are Microsoft.KeyVault/vaults properties, ARM-shaped, so an
// exported vault's networkAcls and accessPolicies can be pasted in.
type Properties struct {
	// TenantID, when set, must equal vault.tenantId (ARM exports carry it).
	TenantID                string                 `json:"tenantId,omitempty"`
	PublicNetworkAccess     string                 `json:"publicNetworkAccess,omitempty"`
	EnableRbacAuthorization bool                   `json:"enableRbacAuthorization,omitempty"`
	NetworkAcls             *NetworkAcls           `json:"networkAcls,omitempty"`
	AccessPolicies          []authz.AccessPolicy   `json:"accessPolicies,omitempty"`
	RoleAssignments         []authz.RoleAssignment `json:"roleAssignments,omitempty"`
	// RoleDefinitions are custom roles; built-in roles need no definition.
	RoleDefinitions []authz.RoleDefinition `json:"roleDefinitions,omitempty"`

	// PrivateEndpointConnections are the vault's connections as Azure
	// lists them. When present they decide which network.privateEndpoints
	// are approved: only those whose id is an Approved connection's
	// privateEndpoint.id; Pending, Rejected and Disconnected ones never are.
	PrivateEndpointConnections []PrivateEndpointConnection `json:"privateEndpointConnections,omitempty"`

	// ARM properties that decide nothing here (sku, vaultUri, enabledFor*,
	// softDelete*, purge protection, provisioningState, createMode,
	// hsmPoolResourceId) are accepted and set aside before decoding; see
	// Config.Ignored.

	publicAccessDisabled bool
}

// PublicAccessDisabled reports publicNetworkAccess: Disabled.
func (p *Properties) PublicAccessDisabled() bool { return p.publicAccessDisabled }

// PrivateEndpointConnection is one of a vault's private endpoint
// connections, reduced to what decides.
type PrivateEndpointConnection struct {
	// ID is the connection's ARM id.
	ID              string            `json:"id,omitempty"`
	PrivateEndpoint PrivateEndpointID `json:"privateEndpoint"`
	// PrivateLinkServiceConnectionState carries the approval.
	PrivateLinkServiceConnectionState ConnectionState `json:"privateLinkServiceConnectionState"`
}

// PrivateEndpointID names the endpoint of a connection.
type PrivateEndpointID struct {
	ID string `json:"id"`
}

// ConnectionState is a connection's approval: Approved, Pending, Rejected
// or Disconnected.
type ConnectionState struct {
	Status string `json:"status"`
}

// Approved reports status Approved.
func (c *PrivateEndpointConnection) Approved() bool {
	return strings.EqualFold(c.PrivateLinkServiceConnectionState.Status, "Approved")
}

// NetworkAcls is ARM's NetworkRuleSet.
type NetworkAcls struct {
	// Bypass is AzureServices (default) or None.
	Bypass string `json:"bypass,omitempty"`
	// DefaultAction is Allow (ARM's default) or Deny.
	DefaultAction       string               `json:"defaultAction,omitempty"`
	IPRules             []IPRule             `json:"ipRules,omitempty"`
	VirtualNetworkRules []VirtualNetworkRule `json:"virtualNetworkRules,omitempty"`

	bypassAzure bool
	denyDefault bool
}

// BypassAzureServices reports bypass: AzureServices.
func (n *NetworkAcls) BypassAzureServices() bool { return n.bypassAzure }

// DefaultDeny reports defaultAction: Deny.
func (n *NetworkAcls) DefaultDeny() bool { return n.denyDefault }

// IPRule admits an address or prefix (IPv4 or IPv6; vaultwall extends Key
// Vault's IPv4-only rules).
type IPRule struct {
	Value string `json:"value"`

	prefix netip.Prefix
}

// Prefix is the parsed rule; a single address is a full-length prefix.
func (r *IPRule) Prefix() netip.Prefix { return r.prefix }

// VirtualNetworkRule admits a subnet by its ARM id.
type VirtualNetworkRule struct {
	ID                               string `json:"id"`
	IgnoreMissingVnetServiceEndpoint bool   `json:"ignoreMissingVnetServiceEndpoint,omitempty"`
}

// Network describes the network around the vault: which addresses each
// subnet holds, the approved private endpoints, and which proxies to believe.
type Network struct {
	Subnets          []Subnet          `json:"subnets,omitempty"`
	PrivateEndpoints []PrivateEndpoint `json:"privateEndpoints,omitempty"`
	TrustedProxies   TrustedProxies    `json:"trustedProxies"`
}

// Subnet gives a virtual-network subnet its address prefixes.
type Subnet struct {
	ID              string   `json:"id"`
	AddressPrefixes []string `json:"addressPrefixes"`

	prefixes []netip.Prefix
}

// Prefixes are the parsed addressPrefixes.
func (s *Subnet) Prefixes() []netip.Prefix { return s.prefixes }

// PrivateEndpoint is an approved private endpoint, recognised from the
// PROXY-protocol TLV its load balancer adds.
type PrivateEndpoint struct {
	ID string `json:"id"`
	// LinkID is the Azure Private Link LINKID (TLV 0xEE).
	LinkID *uint32 `json:"linkId,omitempty"`
	// VpceID is the AWS VPC endpoint id (TLV 0xEA).
	VpceID string `json:"vpceId,omitempty"`

	unapproved bool
}

// Approved reports whether the endpoint admits traffic: always, unless
// properties.privateEndpointConnections is given and holds no Approved
// connection of this endpoint.
func (p *PrivateEndpoint) Approved() bool { return !p.unapproved }

// TrustedProxies says when to believe X-Forwarded-For.
type TrustedProxies struct {
	// Hops is how many trusted proxies stand in front of the front proxy
	// (Envoy's xff_num_trusted_hops). The chain is X-Forwarded-For plus the
	// connection's peer (not repeated when Envoy already appended it); the
	// client is the entry hops places left of its rightmost. 0 ignores
	// X-Forwarded-For unless cidrs is set.
	Hops int `json:"hops"`
	// CIDRs are the addresses of proxies to believe: walking from the
	// right, addresses inside them are skipped.
	CIDRs []string `json:"cidrs,omitempty"`

	prefixes []netip.Prefix
}

// Prefixes are the parsed cidrs.
func (t *TrustedProxies) Prefixes() []netip.Prefix { return t.prefixes }

// Identity configures token validation.
type Identity struct {
	Issuers []Issuer `json:"issuers"`
	// ClockSkew tolerated on exp and nbf (default 5m, as Entra clients expect).
	ClockSkew Duration  `json:"clockSkew,omitempty"`
	Challenge Challenge `json:"challenge"`
	// TokenCache bounds the verified-token cache.
	TokenCache TokenCache `json:"tokenCache"`
	// Refresh governs background JWKS refresh.
	Refresh Refresh `json:"refresh"`
}

// Issuer is a trusted token issuer.
type Issuer struct {
	// Issuer is the exact iss value, e.g. https://sts.windows.net/<tid>/.
	Issuer string `json:"issuer"`
	// Discovery fetches <issuer>/.well-known/openid-configuration for the
	// jwks_uri. Exactly one of discovery, jwksUri and jwksFile is set.
	Discovery bool   `json:"discovery,omitempty"`
	JWKSURI   string `json:"jwksUri,omitempty"`
	// JWKSFile reads the keys from a local JSON Web Key Set (air-gapped
	// deployments and tests); reloaded with the configuration.
	JWKSFile string `json:"jwksFile,omitempty"`
	// Audiences accepted in aud (default: https://vault.azure.net).
	Audiences []string `json:"audiences,omitempty"`
	// CAFile is a PEM bundle trusted for this issuer's HTTPS endpoints
	// (default: the system roots).
	CAFile string `json:"caFile,omitempty"`
	// Algorithms narrows the signature algorithms accepted (default: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384).
	Algorithms []string `json:"algorithms,omitempty"`
}

// Challenge shapes the WWW-Authenticate header of every 401.
type Challenge struct {
	// Authorization is the authority URL whose path is exactly the tenant,
	// as Azure SDKs read it (the JavaScript and Python SDKs take the whole
	// path as the tenant). Accepted forms: "https://host/{tenantId}"
	// (replaced by the vault's tenant), a bare authority "https://host"
	// (the tenant is appended), or "https://host/<the vault's tenant>"
	// (kept as is). Any other path is refused, so the tenant is never
	// doubled. Default: https://login.microsoftonline.com/{tenantId}.
	Authorization string `json:"authorization,omitempty"`
	// Resource is the token audience clients should ask for
	// (default https://vault.azure.net).
	Resource string `json:"resource,omitempty"`
}

// Authority resolves the authorization URL for a tenant: the URL whose path
// is exactly "/<tenantID>", or an error saying why the configured value
// cannot give one.
func (c Challenge) Authority(tenantID string) (string, error) {
	raw := c.Authorization
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q: an authority is an https URL such as https://login.microsoftonline.com/{tenantId}", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("%q: an authority has no query or fragment (Azure SDK clients read the tenant from its path)", raw)
	}
	if strings.ContainsAny(u.Host, "{}") {
		return "", fmt.Errorf("%q: {tenantId} may only be the whole path", raw)
	}
	path := strings.Trim(u.Path, "/")
	base := "https://" + u.Host + "/"
	switch {
	case path == "", path == "{tenantId}":
		return base + tenantID, nil
	case strings.EqualFold(path, tenantID):
		return base + path, nil
	case strings.Contains(path, "{tenantId}"):
		return "", fmt.Errorf("%q: {tenantId} must be the whole path (https://%s/{tenantId}): Azure SDK clients take the whole path as the tenant", raw, u.Host)
	}
	last := path[strings.LastIndex(path, "/")+1:]
	if IsGUID(last) && !strings.EqualFold(last, tenantID) {
		return "", fmt.Errorf("%q ends in tenant %s, not the vault's tenant %s: write https://%s/{tenantId}", raw, last, tenantID, u.Host)
	}
	return "", fmt.Errorf("%q: the path must be exactly the tenant (https://%s/{tenantId}, https://%s/%s or https://%s): Azure SDK clients take the whole path as the tenant", raw, u.Host, u.Host, tenantID, u.Host)
}

// Header renders the challenge for a tenant. It returns "" when the
// authority cannot give exactly one tenant (validation refuses such a
// configuration).
func (c Challenge) Header(tenantID string) string {
	auth, err := c.Authority(tenantID)
	if err != nil {
		return ""
	}
	return `Bearer authorization="` + auth + `", resource="` + c.Resource + `"`
}

// TokenCache bounds the verified-token cache and the refused-token cache.
type TokenCache struct {
	// MaxEntries is the number of verified tokens kept (default 10000; 0
	// keeps the default, -1 disables the cache); the refused-token cache
	// keeps a tenth as many final refusals, and is disabled with it.
	MaxEntries int `json:"maxEntries,omitempty"`
}

// Refresh governs JWKS refresh.
type Refresh struct {
	// Interval between background refreshes (default 15m).
	Interval Duration `json:"interval,omitempty"`
	// MinInterval is the least time between two refetches triggered by an
	// unknown kid (default 10s).
	MinInterval Duration `json:"minInterval,omitempty"`
	// Timeout of one fetch (default 5s).
	Timeout Duration `json:"timeout,omitempty"`
}

// TrustedServices binds client-certificate principals to the built-in
// trusted-service catalog.
type TrustedServices struct {
	// CAFile (relative paths are relative to the configuration file), when set, is the PEM bundle a trusted service's certificate
	// (sent by the proxy as source.certificate) must chain to.
	CAFile   string           `json:"caFile,omitempty"`
	Services []TrustedService `json:"services,omitempty"`
}

// TrustedService binds principals to a catalog entry.
type TrustedService struct {
	// Name is a catalog name (vaultwall trusted-services list).
	Name string `json:"name"`
	// Principals match the caller's certificate: "spiffe://td/path" exact,
	// "spiffe://td/ns/x/*" any path below, "dns:host.example" a DNS SAN,
	// "subject:CN=…,O=…" a subject DN.
	Principals []string `json:"principals"`
	// ApplicationIDs, when set, also require the token's application id to
	// be one of these (defence in depth).
	ApplicationIDs []string `json:"applicationIds,omitempty"`
	// Scope narrows the catalog's scope: family → operations. It can never
	// widen it.
	Scope map[string][]string `json:"scope,omitempty"`
}

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
