package authz

// Plane separates Key Vault's data plane (the vault's REST API, filtered by
// the firewall) from the control plane (vaultwall's management API, which
// the firewall never filters).
type Plane uint8

const (
	PlaneData Plane = iota
	PlaneControl
)

func (p Plane) String() string {
	if p == PlaneControl {
		return "control"
	}
	return "data"
}

// Operation is a request classified against Key Vault's REST table.
type Operation struct {
	Plane Plane
	// Resource is the access-policy permission family: "secrets", "keys",
	// "certificates" or "storage". Empty for operations that need no
	// permission (GET /healthstatus).
	Resource string
	// Permission is the access-policy permission in the spec's casing, e.g.
	// "get", "wrapKey", "managecontacts".
	Permission string
	// DataAction is the Azure RBAC data action, e.g.
	// "Microsoft.KeyVault/vaults/secrets/getSecret/action".
	DataAction string
	// Name is the AuditEvent operationName, e.g. "SecretGet".
	Name string
	// Object is the object's name (secret, key, certificate, issuer, storage
	// account) in lower case, or "" for collection operations: Key Vault's
	// names are case-insensitive, so /secrets/PROD-ROOT is the secret
	// prod-root, and every rule compares this canonical form. ObjectRaw is
	// the name as the client spelt it. Version is the object version, ""
	// when none or empty.
	Object    string
	ObjectRaw string
	Version   string
	// Scope is the RBAC resource suffix below the vault for object-scoped
	// role assignments ("/secrets/<name>", lower case like Object), "" for
	// vault-level operations.
	Scope string
	// Method is the effective HTTP method (after X-HTTP-METHOD).
	Method string
	// APIVersion is the api-version query parameter as sent.
	APIVersion string
	// Anonymous is true for operations Key Vault serves without a token
	// (GET /healthstatus): no authentication, no firewall, no policy.
	Anonymous bool
}
