package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
)

// Defaults applied when a field is omitted.
const (
	DefaultGRPCAddr          = ":9191"
	DefaultHTTPAddr          = ":9090"
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
	c.Identity.SetDefaults()
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
		acl.SetDefaults()
	}
}

var (
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	objectRE    = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
)

func (c *Config) validate(e *errs) {
	if c.Vaults.Dir == "" { // else the main file of vaults.dir: no vault of its own
		c.validateVault(e)
		c.validateProperties(e)
		c.Network.Validate(e)
		c.Network.ApplyConnections(e, c.Properties.PrivateEndpointConnections, c.note)
	}
	c.Identity.Validate(e, c.Vault.TenantID)
	c.TrustedServices.Validate(e)
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
	seen := map[string]int{}
	for i, h := range v.Hostnames {
		n, ok := authz.NormalizeHost(h)
		switch {
		case !ok:
			e.Add(fmt.Sprintf("vault.hostnames[%d]", i), ErrInvalidValue, "%q is not a host name (letters, digits, '-', '_' and '.', an optional :port; or an [IPv6] literal)", h)
		case seen[n] > 0:
			e.Add(fmt.Sprintf("vault.hostnames[%d]", i), ErrDuplicate, "%q: hostnames[%d] names the same host", h, seen[n]-1)
		default:
			seen[n] = i + 1
		}
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
		var unresolved network.Note
		if c.Format() != FormatVaultwall {
			unresolved = c.note
		}
		acl.Validate(e, network.Limits{IPRules: c.Limits.MaxIPRules, VirtualNetworkRules: c.Limits.MaxVirtualNetworkRules},
			c.Network.Subnets, unresolved)
	}
	c.validateAccessPolicies(e)
	c.validateRBAC(e)
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
		for _, list := range []struct {
			field   string
			actions []string
		}{{"dataActions", rd.DataActions}, {"notDataActions", rd.NotDataActions}} {
			for j, a := range list.actions {
				if err := ValidateDataAction(a); err != nil {
					e.Add(fmt.Sprintf("%s.%s[%d]", base, list.field, j), ErrInvalidValue, "%v", err)
				}
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
		scope, err := VaultScope(c.Vault.ResourceID, ra.Scope)
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

// VaultScope turns a role-assignment scope into "" (the whole vault) or
// "/secrets|keys|certificates/<name>" (the family lower-cased, the name as
// written). It is the one rule for every plane that takes a scope: the
// configuration file and the control plane's writes and lists.
//
// A scope is relative ("/", "/keys/<name>"; empty means the vault) or an
// ARM id: the vault's own, as a whole path (…/vaults/<name>/keys/k, never
// …/vaults/<name>keys/k, another vault), or the vault's resource group or
// subscription, which apply to the whole vault as Azure's inheritance does
// (az role assignment list --include-inherited). Any other ARM id (another
// vault, resource group or subscription, a management group, whose
// descendants are not known here) is refused, as is a scope without its
// leading "/".
func VaultScope(vaultID, scope string) (string, error) {
	rest := scope
	if len(rest) >= len(vaultID) && strings.EqualFold(rest[:len(vaultID)], vaultID) && (len(rest) == len(vaultID) || rest[len(vaultID)] == '/') {
		rest = rest[len(vaultID):]
	} else if rest != "" && !strings.HasPrefix(rest, "/") {
		return "", fmt.Errorf("%q: a scope starts with \"/\" (/, /secrets/<name>, /keys/<name>, /certificates/<name>) or is an ARM id", scope)
	}
	if rest == "" || rest == "/" {
		return "", nil
	}
	if ancestorScope(rest, vaultID) {
		return "", nil
	}
	lower := strings.ToLower(rest)
	switch {
	case strings.HasPrefix(lower, "/providers/microsoft.management/managementgroups/"):
		return "", fmt.Errorf("%q: a management-group scope is not supported (whether the vault is below it is not known here): assign at the vault, its resource group or subscription", scope)
	case strings.HasPrefix(lower, "/subscriptions/"), strings.HasPrefix(lower, "/providers/"):
		return "", fmt.Errorf("%q is not in this vault (%s), its resource group or its subscription", scope, vaultID)
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(parts) == 2 && objectRE.MatchString(parts[1]) {
		switch strings.ToLower(parts[0]) {
		case "secrets", "keys", "certificates":
			return "/" + strings.ToLower(parts[0]) + "/" + parts[1], nil
		}
	}
	return "", fmt.Errorf("%q: want \"/\" (the vault) or /secrets/<name>, /keys/<name>, /certificates/<name>", scope)
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

// ValidateDataAction checks a role's data action (or not-data action):
// relative to Microsoft.KeyVault/vaults/ (or written in full, the prefix
// stripped once), of ASCII letters, digits, '/', '.', '_' and '-', with
// Azure's one wildcard, '*'. Any other glob metacharacter ('?', '[', ']',
// '{', '}', '\', …) is refused: Azure has no such pattern, and the policy's
// glob matcher would read it as one.
func ValidateDataAction(a string) error {
	rel := a
	if len(rel) >= len(authz.DataActionPrefix) && strings.EqualFold(rel[:len(authz.DataActionPrefix)], authz.DataActionPrefix) {
		rel = rel[len(authz.DataActionPrefix):]
	}
	if rel == "" || strings.ContainsAny(rel, " \t") || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") {
		return fmt.Errorf("%q is not a data action such as secrets/getSecret/action, keys/* or */read", a)
	}
	for _, c := range rel {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '/', c == '.', c == '_', c == '-', c == '*':
		default:
			return fmt.Errorf("%q: %q is not allowed: a data action holds ASCII letters, digits, '/', '.', '_' and '-', and '*' is its only wildcard", a, c)
		}
	}
	return nil
}

// note records what the operator should know about field without refusing
// the configuration.
func (c *Config) note(field, text string) {
	c.notes = append(c.notes, fieldNote{field, text})
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
