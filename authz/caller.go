package authz

import (
	"strconv"
	"strings"
	"time"
)

// Caller is the identity a verified bearer token proves, mapped from Entra
// claims the way Key Vault reads them (keyvault-spec §4).
type Caller struct {
	Issuer        string
	TenantID      string // tid
	ObjectID      string // oid
	ApplicationID string // appid (v1) or azp (v2)
	// AppIDACR is appidacr/azpacr: "0" public client, "1" secret, "2" certificate.
	AppIDACR string
	// IdentityType is idtyp ("app" | "user"), or "" when the token omits it.
	IdentityType string
	Groups       []string
	// GroupsOverage is true when the token signals more groups than it
	// carries (_claim_names.groups): group entries cannot be matched.
	GroupsOverage bool
	Roles         []string
	Scopes        []string // scp, split on spaces
	MIResourceID  string   // xms_mirid
	AzResourceID  string   // xms_az_rid
	Subject       string   // sub
	// Claims are the verified claims, for policy and audit. Never the token.
	Claims map[string]any
	// Expires is the token's exp.
	Expires time.Time

	desc string
}

// IsUser reports whether the token is a user's (delegated) token: idtyp=user,
// or scp present without idtyp.
func (c *Caller) IsUser() bool {
	if c.IdentityType != "" {
		return c.IdentityType == "user"
	}
	return len(c.Scopes) > 0
}

// String is the caller as Key Vault's error messages print it:
// appid=…;oid=…[;numgroups=n];iss=…[;xms_mirid=…;xms_az_rid=…].
func (c *Caller) String() string {
	if c == nil {
		return ""
	}
	if c.desc != "" {
		return c.desc
	}
	return c.describe()
}

// Seal precomputes the description; call once after filling the fields,
// before the Caller is shared (verified-token caches hand out one *Caller to
// many requests).
func (c *Caller) Seal() { c.desc = c.describe() }

func (c *Caller) describe() string {
	var b strings.Builder
	b.WriteString("appid=")
	b.WriteString(c.ApplicationID)
	b.WriteString(";oid=")
	b.WriteString(c.ObjectID)
	if c.IsUser() {
		b.WriteString(";numgroups=")
		b.WriteString(strconv.Itoa(len(c.Groups)))
	}
	b.WriteString(";iss=")
	b.WriteString(c.Issuer)
	if c.MIResourceID != "" {
		b.WriteString(";xms_mirid=")
		b.WriteString(c.MIResourceID)
	}
	if c.AzResourceID != "" {
		b.WriteString(";xms_az_rid=")
		b.WriteString(c.AzResourceID)
	}
	return b.String()
}
