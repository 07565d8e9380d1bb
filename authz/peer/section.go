package peer

import (
	"fmt"

	"github.com/vaultwall/vaultwall/authz/section"
)

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

// Validate checks the trustedServices section's shape; New checks the rest
// (catalog names, principal patterns, scopes, the CA bundle).
func (t *TrustedServices) Validate(e *section.Errors) {
	for i, s := range t.Services {
		base := fmt.Sprintf("trustedServices.services[%d]", i)
		if s.Name == "" {
			e.Add(base+".name", section.ErrRequired, "")
		}
		if len(s.Principals) == 0 {
			e.Add(base+".principals", section.ErrRequired, "bind at least one certificate principal")
		}
		for j, a := range s.ApplicationIDs {
			if a == "" {
				e.Add(fmt.Sprintf("%s.applicationIds[%d]", base, j), section.ErrRequired, "")
			}
		}
	}
}
