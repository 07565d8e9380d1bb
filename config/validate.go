package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
)

// Defaults applied when a field is omitted.
const (
	DefaultGRPCAddr          = ":9191"
	DefaultHTTPAddr          = ":9090"
	DefaultAudience          = "https://vault.azure.net"
	DefaultAuthority         = "https://login.microsoftonline.com/{tenantId}"
	DefaultMaxIPRules        = 1000
	DefaultMaxVNetRules      = 200
	DefaultMaxAccessPolicies = 1024
	DefaultMaxRecvMsgBytes   = 1 << 20
)

func (c *Config) defaults() {
	if c.Server.GRPCAddr == "" {
		c.Server.GRPCAddr = DefaultGRPCAddr
	}
	if c.Server.HTTPAddr == "" {
		c.Server.HTTPAddr = DefaultHTTPAddr
	}
	if c.Server.MaxRecvMsgBytes == 0 {
		c.Server.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	if c.Server.ShutdownGrace == 0 {
		c.Server.ShutdownGrace = Duration(10 * time.Second)
	}
	if c.Limits.MaxIPRules == 0 {
		c.Limits.MaxIPRules = DefaultMaxIPRules
	}
	if c.Limits.MaxVirtualNetworkRules == 0 {
		c.Limits.MaxVirtualNetworkRules = DefaultMaxVNetRules
	}
	if c.Limits.MaxAccessPolicies == 0 {
		c.Limits.MaxAccessPolicies = DefaultMaxAccessPolicies
	}
	id := &c.Identity
	if id.ClockSkew == 0 {
		id.ClockSkew = Duration(5 * time.Minute)
	}
	if id.Challenge.Authorization == "" {
		id.Challenge.Authorization = DefaultAuthority
	}
	if id.Challenge.Resource == "" {
		id.Challenge.Resource = DefaultAudience
	}
	if id.TokenCache.MaxEntries == 0 {
		id.TokenCache.MaxEntries = 10000
	}
	if id.Refresh.Interval == 0 {
		id.Refresh.Interval = Duration(15 * time.Minute)
	}
	if id.Refresh.MinInterval == 0 {
		id.Refresh.MinInterval = Duration(10 * time.Second)
	}
	if id.Refresh.Timeout == 0 {
		id.Refresh.Timeout = Duration(5 * time.Second)
	}
	for i := range id.Issuers {
		if len(id.Issuers[i].Audiences) == 0 {
			id.Issuers[i].Audiences = []string{DefaultAudience}
		}
	}
	c.controlPlaneDefaults()
	if c.Policy.Timeout == 0 {
		c.Policy.Timeout = Duration(250 * time.Millisecond)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Vault.ResourceID == "" {
		sub, rg := c.Vault.SubscriptionID, c.Vault.ResourceGroup
		if sub == "" {
			sub = "00000000-0000-0000-0000-000000000000"
		}
		if rg == "" {
			rg = "vaultwall"
		}
		c.Vault.ResourceID = "/subscriptions/" + sub + "/resourceGroups/" + rg +
			"/providers/Microsoft.KeyVault/vaults/" + c.Vault.Name
	}
	c.opsDefaults()
	if acl := c.Properties.NetworkAcls; acl != nil {
		if acl.Bypass == "" {
			acl.Bypass = "AzureServices"
		}
		if acl.DefaultAction == "" {
			acl.DefaultAction = "Allow"
		}
	}
}

var (
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	subnetIDRE  = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.network/virtualnetworks/[^/]+/subnets/[^/]+$`)
	objectRE    = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
)

func (c *Config) validate(e *errs) {
	c.validateVault(e)
	c.validateProperties(e)
	c.validateNetwork(e)
	c.validateConnections(e)
	c.validateIdentity(e)
	c.validateTrustedServices(e)
	c.validateServer(e)
	c.validateControlPlane(e)
	c.validateOps(e)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		e.Add("log.level", ErrInvalidValue, "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		e.Add("log.format", ErrInvalidValue, "%q: want json or text", c.Log.Format)
	}
}

func (c *Config) validateVault(e *errs) {
	v := &c.Vault
	if v.Name == "" {
		e.Add("vault.name", ErrRequired, "")
	} else if !vaultNameRE.MatchString(v.Name) || strings.Contains(v.Name, "--") {
		e.Add("vault.name", ErrInvalidValue, "%q: a vault name is 3-24 letters, digits and single hyphens, starting with a letter", v.Name)
	}
	if v.TenantID == "" {
		e.Add("vault.tenantId", ErrRequired, "")
	} else if !IsGUID(v.TenantID) {
		e.Add("vault.tenantId", ErrInvalidValue, "%q is not a GUID", v.TenantID)
	}
	if !strings.HasPrefix(strings.ToLower(v.ResourceID), "/subscriptions/") ||
		!strings.Contains(strings.ToLower(v.ResourceID), "/providers/microsoft.keyvault/vaults/") {
		e.Add("vault.resourceId", ErrInvalidID, "%q: want /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>", v.ResourceID)
	}
}

func (c *Config) validateProperties(e *errs) {
	p := &c.Properties
	if p.TenantID != "" && !strings.EqualFold(p.TenantID, c.Vault.TenantID) {
		e.Add("properties.tenantId", ErrConflict, "%q differs from vault.tenantId %q", p.TenantID, c.Vault.TenantID)
	}
	switch strings.ToLower(p.PublicNetworkAccess) {
	case "", "enabled":
	case "disabled":
		p.publicAccessDisabled = true
	case "securedbyperimeter":
		e.Add("properties.publicNetworkAccess", ErrInvalidValue, "SecuredByPerimeter (network security perimeters) is not supported: use Enabled or Disabled")
	default:
		e.Add("properties.publicNetworkAccess", ErrInvalidValue, "%q: want Enabled or Disabled", p.PublicNetworkAccess)
	}
	if acl := p.NetworkAcls; acl != nil {
		c.validateACLs(e, acl)
	}
	c.validateAccessPolicies(e)
	c.validateRBAC(e)
}

func (c *Config) validateACLs(e *errs, acl *NetworkAcls) {
	const base = "properties.networkAcls"
	switch strings.ToLower(acl.Bypass) {
	case "azureservices":
		acl.bypassAzure = true
	case "none":
	default:
		e.Add(base+".bypass", ErrInvalidValue, "%q: want AzureServices or None", acl.Bypass)
	}
	switch strings.ToLower(acl.DefaultAction) {
	case "deny":
		acl.denyDefault = true
	case "allow":
	default:
		e.Add(base+".defaultAction", ErrInvalidValue, "%q: want Allow or Deny", acl.DefaultAction)
	}
	if n := len(acl.IPRules); n > c.Limits.MaxIPRules {
		e.Add(base+".ipRules", ErrTooMany, "%d rules, the limit is %d (limits.maxIpRules)", n, c.Limits.MaxIPRules)
	}
	seen := map[netip.Prefix]int{}
	for i := range acl.IPRules {
		r := &acl.IPRules[i]
		f := fmt.Sprintf("%s.ipRules[%d].value", base, i)
		pfx, err := ParsePrefix(r.Value)
		if err != nil {
			e.Add(f, ErrInvalidPrefix, "%v", err)
			continue
		}
		r.prefix = pfx
		if j, dup := seen[pfx]; dup {
			e.Add(f, ErrDuplicate, "%q is the same rule as ipRules[%d]", r.Value, j)
			continue
		}
		seen[pfx] = i
	}
	if n := len(acl.VirtualNetworkRules); n > c.Limits.MaxVirtualNetworkRules {
		e.Add(base+".virtualNetworkRules", ErrTooMany, "%d rules, the limit is %d (limits.maxVirtualNetworkRules)", n, c.Limits.MaxVirtualNetworkRules)
	}
	known := map[string]bool{}
	for _, s := range c.Network.Subnets {
		known[strings.ToLower(s.ID)] = true
	}
	seenID := map[string]int{}
	for i, r := range acl.VirtualNetworkRules {
		f := fmt.Sprintf("%s.virtualNetworkRules[%d].id", base, i)
		if r.ID == "" {
			e.Add(f, ErrRequired, "")
			continue
		}
		if !subnetIDRE.MatchString(r.ID) {
			e.Add(f, ErrInvalidID, "%q: want /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>", r.ID)
			continue
		}
		key := strings.ToLower(r.ID)
		if j, dup := seenID[key]; dup {
			e.Add(f, ErrDuplicate, "same subnet as virtualNetworkRules[%d] (ids compare case-insensitively)", j)
			continue
		}
		seenID[key] = i
		if !known[key] {
			if c.Format() != FormatVaultwall {
				// An Azure document cannot say which addresses a subnet
				// holds: the rule stands and matches nothing yet.
				c.note(f, "%s matches no address until network.subnets gives it its addressPrefixes (vaultwall config import writes a placeholder)", r.ID)
				continue
			}
			e.Add(f, ErrUnresolved, "no entry of network.subnets has this id, so the rule could never match; add the subnet and its addressPrefixes")
		}
	}
}

func (c *Config) validateAccessPolicies(e *errs) {
	p := &c.Properties
	if n := len(p.AccessPolicies); n > c.Limits.MaxAccessPolicies {
		e.Add("properties.accessPolicies", ErrTooMany, "%d entries, the limit is %d (limits.maxAccessPolicies)", n, c.Limits.MaxAccessPolicies)
	}
	seen := map[string]int{}
	for i := range p.AccessPolicies {
		ap := &p.AccessPolicies[i]
		base := fmt.Sprintf("properties.accessPolicies[%d]", i)
		switch {
		case ap.TenantID == "":
			e.Add(base+".tenantId", ErrRequired, "")
		case !strings.EqualFold(ap.TenantID, c.Vault.TenantID):
			e.Add(base+".tenantId", ErrConflict, "%q: every entry must carry the vault's tenant %q", ap.TenantID, c.Vault.TenantID)
		}
		if ap.ObjectID == "" {
			e.Add(base+".objectId", ErrRequired, "")
		}
		if ap.ApplicationID != "" && !IsGUID(ap.ApplicationID) {
			e.Add(base+".applicationId", ErrInvalidValue, "%q is not a GUID", ap.ApplicationID)
		}
		key := strings.ToLower(ap.ObjectID) + "|" + strings.ToLower(ap.ApplicationID)
		if j, dup := seen[key]; dup && ap.ObjectID != "" {
			e.Add(base+".objectId", ErrDuplicate, "accessPolicies[%d] has the same objectId and applicationId", j)
		}
		seen[key] = i
		perms := map[string]*[]string{
			authz.FamilyKeys: &ap.Permissions.Keys, authz.FamilySecrets: &ap.Permissions.Secrets,
			authz.FamilyCertificates: &ap.Permissions.Certificates, authz.FamilyStorage: &ap.Permissions.Storage,
		}
		for fam, list := range perms {
			for j, perm := range *list {
				canon, ok := authz.CanonicalPermission(fam, perm)
				if !ok {
					e.Add(fmt.Sprintf("%s.permissions.%s[%d]", base, fam, j), ErrInvalidValue,
						"%q is not a %s permission; known: %s", perm, fam, strings.Join(authz.KnownPermissions[fam], ", "))
					continue
				}
				(*list)[j] = canon
			}
		}
	}
}

func (c *Config) validateRBAC(e *errs) {
	p := &c.Properties
	seenRole := map[string]int{}
	for i := range p.RoleDefinitions {
		rd := &p.RoleDefinitions[i]
		base := fmt.Sprintf("properties.roleDefinitions[%d]", i)
		if rd.ID == "" {
			e.Add(base+".id", ErrRequired, "")
		}
		if rd.RoleName == "" {
			e.Add(base+".roleName", ErrRequired, "")
		}
		if _, builtin := authz.LookupRole(rd.ID, nil); builtin && rd.ID != "" {
			e.Add(base+".id", ErrConflict, "%q is a built-in role", rd.ID)
		}
		if _, builtin := authz.LookupRole(rd.RoleName, nil); builtin && rd.RoleName != "" {
			e.Add(base+".roleName", ErrConflict, "%q is a built-in role", rd.RoleName)
		}
		for _, k := range []string{strings.ToLower(rd.ID), strings.ToLower(rd.RoleName)} {
			if k == "" {
				continue
			}
			if j, dup := seenRole[k]; dup {
				e.Add(base, ErrDuplicate, "same id or name as roleDefinitions[%d]", j)
			}
			seenRole[k] = i
		}
		for j, a := range append(append([]string{}, rd.DataActions...), rd.NotDataActions...) {
			if err := ValidateDataAction(a); err != nil {
				e.Add(fmt.Sprintf("%s.dataActions[%d]", base, j), ErrInvalidValue, "%v", err)
			}
		}
	}
	seenID := map[string]int{}
	for i := range p.RoleAssignments {
		ra := &p.RoleAssignments[i]
		base := fmt.Sprintf("properties.roleAssignments[%d]", i)
		if ra.PrincipalID == "" {
			e.Add(base+".principalId", ErrRequired, "")
		}
		if ra.RoleDefinitionID == "" {
			e.Add(base+".roleDefinitionId", ErrRequired, "")
		} else if _, ok := authz.LookupRole(lastSegment(ra.RoleDefinitionID), p.RoleDefinitions); !ok {
			e.Add(base+".roleDefinitionId", ErrUnresolved, "%q is neither a built-in role nor in properties.roleDefinitions", ra.RoleDefinitionID)
		}
		scope, err := c.normalizeScope(ra.Scope)
		if err != nil {
			e.Add(base+".scope", ErrInvalidValue, "%v", err)
		} else {
			ra.Scope = scope
		}
		if ra.ID == "" {
			ra.ID = fmt.Sprintf("roleAssignments[%d]", i)
		}
		if j, dup := seenID[ra.ID]; dup {
			e.Add(base+".id", ErrDuplicate, "same id as roleAssignments[%d]", j)
		}
		seenID[ra.ID] = i
	}
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// normalizeScope turns an assignment scope into "" (the vault) or
// "/secrets|keys|certificates/<name>". The vault's own ARM id may prefix it,
// as a whole path (…/vaults/<name>/…, never …/vaults/<name>keys/…); a
// relative scope starts with "/".
func (c *Config) normalizeScope(s string) (string, error) {
	rest, id := s, c.Vault.ResourceID
	if len(rest) >= len(id) && strings.EqualFold(rest[:len(id)], id) && (len(rest) == len(id) || rest[len(id)] == '/') {
		rest = rest[len(id):]
	} else if rest != "" && !strings.HasPrefix(rest, "/") {
		return "", fmt.Errorf("%q: a scope starts with \"/\" (or is the vault's ARM id)", s)
	}
	if rest == "" || rest == "/" {
		return "", nil
	}
	if ancestorScope(rest, c.Vault.ResourceID) {
		// az role assignment list --include-inherited: an assignment at the
		// vault's subscription or resource group applies to the whole vault.
		return "", nil
	}
	if strings.HasPrefix(strings.ToLower(rest), "/providers/microsoft.management/managementgroups/") {
		return "", fmt.Errorf("%q: a management-group scope is not supported (whether the vault is below it is not known here): assign at the vault, its resource group or subscription", s)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(parts) == 2 && objectRE.MatchString(parts[1]) {
		switch strings.ToLower(parts[0]) {
		case "secrets", "keys", "certificates":
			return "/" + strings.ToLower(parts[0]) + "/" + parts[1], nil
		}
	}
	return "", fmt.Errorf("%q: want \"/\" (the vault) or /secrets/<name>, /keys/<name>, /certificates/<name>", s)
}

// ancestorScope reports whether scope is the subscription or resource group
// holding the vault vaultID.
func ancestorScope(scope, vaultID string) bool {
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	vault := strings.Split(strings.Trim(vaultID, "/"), "/")
	if (len(parts) != 2 && len(parts) != 4) || len(parts) > len(vault) || !strings.EqualFold(parts[0], "subscriptions") {
		return false
	}
	if len(parts) == 4 && !strings.EqualFold(parts[2], "resourceGroups") {
		return false
	}
	for i := range parts {
		if !strings.EqualFold(parts[i], vault[i]) {
			return false
		}
	}
	return true
}

// ValidateDataAction checks a role's data action: relative to
// Microsoft.KeyVault/vaults/ (or written in full), wildcards allowed.
func ValidateDataAction(a string) error {
	rel := a
	if len(rel) >= len(authz.DataActionPrefix) && strings.EqualFold(rel[:len(authz.DataActionPrefix)], authz.DataActionPrefix) {
		rel = rel[len(authz.DataActionPrefix):]
	}
	if rel == "" || strings.ContainsAny(rel, " \t") || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") {
		return fmt.Errorf("%q is not a data action such as secrets/getSecret/action, keys/* or */read", a)
	}
	return nil
}

func (c *Config) validateNetwork(e *errs) {
	n := &c.Network
	seen := map[string]int{}
	owner := map[netip.Prefix]string{}
	for i := range n.Subnets {
		s := &n.Subnets[i]
		base := fmt.Sprintf("network.subnets[%d]", i)
		if !subnetIDRE.MatchString(s.ID) {
			e.Add(base+".id", ErrInvalidID, "%q: want /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>", s.ID)
		}
		key := strings.ToLower(s.ID)
		if j, dup := seen[key]; dup {
			e.Add(base+".id", ErrDuplicate, "same subnet as network.subnets[%d]", j)
		}
		seen[key] = i
		if len(s.AddressPrefixes) == 0 {
			e.Add(base+".addressPrefixes", ErrRequired, "a subnet needs at least one prefix")
		}
		s.prefixes = s.prefixes[:0]
		for j, v := range s.AddressPrefixes {
			f := fmt.Sprintf("%s.addressPrefixes[%d]", base, j)
			p, err := ParsePrefix(v)
			if err != nil {
				e.Add(f, ErrInvalidPrefix, "%v", err)
				continue
			}
			for q, other := range owner {
				if q.Overlaps(p) {
					e.Add(f, ErrConflict, "%s overlaps %s of subnet %s: an address must belong to one subnet", p, q, other)
				}
			}
			owner[p] = s.ID
			s.prefixes = append(s.prefixes, p)
		}
	}
	seenPE := map[string]int{}
	seenLink := map[string]int{}
	for i, pe := range n.PrivateEndpoints {
		base := fmt.Sprintf("network.privateEndpoints[%d]", i)
		if pe.ID == "" {
			e.Add(base+".id", ErrRequired, "")
		}
		if j, dup := seenPE[strings.ToLower(pe.ID)]; dup && pe.ID != "" {
			e.Add(base+".id", ErrDuplicate, "same id as privateEndpoints[%d]", j)
		}
		seenPE[strings.ToLower(pe.ID)] = i
		switch {
		case pe.LinkID != nil && pe.VpceID != "":
			e.Add(base, ErrConflict, "set linkId (Azure) or vpceId (AWS), not both")
		case pe.LinkID == nil && pe.VpceID == "":
			e.Add(base, ErrRequired, "linkId (Azure Private Link) or vpceId (AWS PrivateLink) is required")
		case pe.VpceID != "" && !strings.HasPrefix(pe.VpceID, "vpce-"):
			e.Add(base+".vpceId", ErrInvalidValue, "%q: an AWS endpoint id starts with vpce-", pe.VpceID)
		}
		var key string
		if pe.LinkID != nil {
			key = "link:" + strconv.FormatUint(uint64(*pe.LinkID), 10)
		} else {
			key = "vpce:" + pe.VpceID
		}
		if j, dup := seenLink[key]; dup {
			e.Add(base, ErrDuplicate, "same endpoint identity as privateEndpoints[%d]", j)
		}
		seenLink[key] = i
	}
	tp := &n.TrustedProxies
	if tp.Hops < 0 || tp.Hops > 16 {
		e.Add("network.trustedProxies.hops", ErrInvalidValue, "%d: want 0 to 16", tp.Hops)
	}
	tp.prefixes = tp.prefixes[:0]
	for i, v := range tp.CIDRs {
		p, err := ParsePrefix(v)
		if err != nil {
			e.Add(fmt.Sprintf("network.trustedProxies.cidrs[%d]", i), ErrInvalidPrefix, "%v", err)
			continue
		}
		tp.prefixes = append(tp.prefixes, p)
	}
}

// note records what the operator should know about field without refusing
// the configuration.
func (c *Config) note(field, format string, args ...any) {
	c.notes = append(c.notes, fieldNote{field, fmt.Sprintf(format, args...)})
}

// validateConnections applies properties.privateEndpointConnections: when
// given, a network.privateEndpoints entry is approved only if an Approved
// connection names its id.
func (c *Config) validateConnections(e *errs) {
	conns := c.Properties.PrivateEndpointConnections
	if len(conns) == 0 {
		return
	}
	status := map[string]string{}
	for i, pc := range conns {
		base := fmt.Sprintf("properties.privateEndpointConnections[%d]", i)
		st := pc.PrivateLinkServiceConnectionState.Status
		switch strings.ToLower(st) {
		case "approved", "pending", "rejected", "disconnected":
		case "":
			e.Add(base+".privateLinkServiceConnectionState.status", ErrRequired, "")
		default:
			e.Add(base+".privateLinkServiceConnectionState.status", ErrInvalidValue, "%q: want Approved, Pending, Rejected or Disconnected", st)
		}
		id := strings.ToLower(pc.PrivateEndpoint.ID)
		if id == "" {
			// It names no endpoint, so it approves none.
			c.note(base+".privateEndpoint.id", "missing: the connection approves no endpoint")
			continue
		}
		if prev, dup := status[id]; dup && !strings.EqualFold(prev, "approved") {
			continue // any non-Approved state of an endpoint wins
		}
		status[id] = st
	}
	described := map[string]bool{}
	for i := range c.Network.PrivateEndpoints {
		pe := &c.Network.PrivateEndpoints[i]
		id := strings.ToLower(pe.ID)
		described[id] = true
		st, ok := status[id]
		switch {
		case !ok:
			pe.unapproved = true
			c.note(fmt.Sprintf("network.privateEndpoints[%d]", i), "%s has no connection in properties.privateEndpointConnections: not approved", pe.ID)
		case !strings.EqualFold(st, "approved"):
			pe.unapproved = true
			c.note(fmt.Sprintf("network.privateEndpoints[%d]", i), "%s: connection %s: not approved", pe.ID, st)
		}
	}
	for i, pc := range conns {
		id := strings.ToLower(pc.PrivateEndpoint.ID)
		if pc.Approved() && id != "" && !described[id] {
			c.note(fmt.Sprintf("properties.privateEndpointConnections[%d]", i), "%s is Approved, but no network.privateEndpoints entry gives its linkId or vpceId, so no traffic matches it", pc.PrivateEndpoint.ID)
		}
	}
}

// ParsePrefix parses an IP address or CIDR prefix. IPv4-mapped IPv6 input is
// unmapped; a prefix with host bits set is refused, since it usually hides a
// typo.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q", s)
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

func (c *Config) validateIdentity(e *errs) {
	id := &c.Identity
	seen := map[string]int{}
	for i := range id.Issuers {
		is := &id.Issuers[i]
		base := fmt.Sprintf("identity.issuers[%d]", i)
		u, err := url.Parse(is.Issuer)
		if is.Issuer == "" {
			e.Add(base+".issuer", ErrRequired, "")
		} else if err != nil || u.Scheme != "https" || u.Host == "" {
			e.Add(base+".issuer", ErrInvalidValue, "%q: an issuer is an https URL", is.Issuer)
		}
		if j, dup := seen[is.Issuer]; dup {
			e.Add(base+".issuer", ErrDuplicate, "same issuer as issuers[%d]", j)
		}
		seen[is.Issuer] = i
		sources := 0
		if is.Discovery {
			sources++
		}
		if is.JWKSURI != "" {
			sources++
			if u, err := url.Parse(is.JWKSURI); err != nil || u.Scheme != "https" || u.Host == "" {
				e.Add(base+".jwksUri", ErrInvalidValue, "%q: a JWKS endpoint is an https URL", is.JWKSURI)
			}
		}
		if is.JWKSFile != "" {
			sources++
		}
		if sources != 1 {
			e.Add(base, ErrConflict, "set exactly one of discovery: true, jwksUri and jwksFile")
		}
		for j, a := range is.Audiences {
			if a == "" {
				e.Add(fmt.Sprintf("%s.audiences[%d]", base, j), ErrRequired, "")
			}
		}
		for j, a := range is.Algorithms {
			switch a {
			case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384":
			default:
				e.Add(fmt.Sprintf("%s.algorithms[%d]", base, j), ErrInvalidValue,
					"%q: want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 (never none or HMAC)", a)
			}
		}
	}
	if IsGUID(c.Vault.TenantID) {
		if _, err := id.Challenge.Authority(c.Vault.TenantID); err != nil {
			e.Add("identity.challenge.authorization", ErrInvalidValue, "%v", err)
		}
	}
	if u, err := url.Parse(id.Challenge.Resource); err != nil || u.Scheme != "https" || u.Host == "" {
		e.Add("identity.challenge.resource", ErrInvalidValue, "%q: the resource is an https URL such as https://vault.azure.net", id.Challenge.Resource)
	}
	if id.ClockSkew < 0 || id.ClockSkew.D() > time.Hour {
		e.Add("identity.clockSkew", ErrInvalidValue, "%s: want 0 to 1h", id.ClockSkew.D())
	}
	if id.TokenCache.MaxEntries < -1 {
		e.Add("identity.tokenCache.maxEntries", ErrInvalidValue, "%d: want -1 (off) or more", id.TokenCache.MaxEntries)
	}
	if id.Refresh.MinInterval.D() < time.Second {
		e.Add("identity.refresh.minInterval", ErrInvalidValue, "%s: at least 1s, so a stream of unknown kids cannot hammer the issuer", id.Refresh.MinInterval.D())
	}
}

func (c *Config) validateTrustedServices(e *errs) {
	for i, s := range c.TrustedServices.Services {
		base := fmt.Sprintf("trustedServices.services[%d]", i)
		if s.Name == "" {
			e.Add(base+".name", ErrRequired, "")
		}
		if len(s.Principals) == 0 {
			e.Add(base+".principals", ErrRequired, "bind at least one certificate principal")
		}
		for j, a := range s.ApplicationIDs {
			if a == "" {
				e.Add(fmt.Sprintf("%s.applicationIds[%d]", base, j), ErrRequired, "")
			}
		}
	}
}

func (c *Config) validateServer(e *errs) {
	s := &c.Server
	t := s.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		e.Add("server.tls", ErrConflict, "certFile and keyFile go together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		e.Add("server.tls.clientCAFile", ErrConflict, "mTLS needs certFile and keyFile too")
	}
	if s.MaxRecvMsgBytes < 4096 {
		e.Add("server.maxRecvMsgBytes", ErrInvalidValue, "%d: at least 4096", s.MaxRecvMsgBytes)
	}
}

// ChallengeHeader is the WWW-Authenticate value of this vault's 401s.
func (c *Config) ChallengeHeader() string { return c.Identity.Challenge.Header(c.Vault.TenantID) }

// AuthzVault is the vault's identity in the decision model.
func (c *Config) AuthzVault() authz.Vault {
	return authz.Vault{
		Name:       c.Vault.Name,
		TenantID:   c.Vault.TenantID,
		Location:   c.Vault.Location,
		ResourceID: c.Vault.ResourceID,
		RBAC:       c.Properties.EnableRbacAuthorization,
		Challenge:  c.ChallengeHeader(),
	}
}
