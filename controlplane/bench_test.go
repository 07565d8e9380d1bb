package controlplane

import (
	"fmt"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// BenchmarkMerge is the overlay's cost on each reload and each validated
// write: the file parsed alone, then the merged document, with 100 IP rules
// and 100 access policies in the state.
func BenchmarkMerge(b *testing.B) {
	file := []byte(`
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001}
properties:
  networkAcls: {defaultAction: Deny, ipRules: [{value: 203.0.113.0/24}]}
identity:
  issuers: [{issuer: "https://sts.example.test/t/", jwksUri: "https://sts.example.test/keys"}]
`)
	acls := &config.NetworkAcls{DefaultAction: "Deny", Bypass: "AzureServices"}
	var aps []authz.AccessPolicy
	for i := range 100 {
		acls.IPRules = append(acls.IPRules, config.IPRule{Value: fmt.Sprintf("198.51.100.%d", i)})
		aps = append(aps, authz.AccessPolicy{TenantID: "00000000-0000-0000-0000-000000000001",
			ObjectID: fmt.Sprintf("%08d-0000-0000-0000-000000000000", i), Permissions: authz.Permissions{Secrets: []string{"get"}}})
	}
	st := store.State{NetworkAcls: acls, AccessPolicies: &aps}
	for b.Loop() {
		if _, err := Merge("vault.yaml", file, st); err != nil {
			b.Fatal(err)
		}
	}
}
