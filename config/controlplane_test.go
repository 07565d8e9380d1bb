package config_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

const cpBase = `
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001}
identity:
  issuers: [{issuer: "https://sts.example.test/t/", jwksUri: "https://sts.example.test/keys"}]
`

func TestControlPlaneConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		section string
		want    error  // nil: valid
		field   string // the field the error names
	}{
		{"off by default", ``, nil, ""},
		{"file store defaults", `controlPlane: {enabled: true, audiences: [api://admin]}`, nil, ""},
		{"etcd", `controlPlane: {enabled: true, audiences: [api://admin], store: {type: etcd, endpoints: ["http://127.0.0.1:2379"]}}`, nil, ""},
		{"nobody could call", `controlPlane: {enabled: true}`, config.ErrRequired, "controlPlane"},
		{"a data-plane audience", `controlPlane: {enabled: true, audiences: ["https://vault.azure.net"]}`, config.ErrConflict, "controlPlane.audiences[0]"},
		{"admin principals without a client CA", `controlPlane: {enabled: true, adminPrincipals: ["spiffe://x/y"]}`, config.ErrConflict, "controlPlane.adminPrincipals"},
		{"etcd without endpoints", `controlPlane: {enabled: true, audiences: [a], store: {type: etcd}}`, config.ErrRequired, "controlPlane.store.endpoints"},
		{"unknown store", `controlPlane: {enabled: true, audiences: [a], store: {type: consul}}`, config.ErrInvalidValue, "controlPlane.store.type"},
		{"bad listen address", `controlPlane: {enabled: true, audiences: [a], listenAddr: "9292"}`, config.ErrInvalidValue, "controlPlane.listenAddr"},
		{"unknown key", `controlPlane: {enabled: true, audiences: [a], listen: ":1"}`, config.ErrUnknownField, "controlPlane.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vault.yaml")
			cfg, err := config.Parse(path, []byte(cpBase+tc.section))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				cp := cfg.ControlPlane
				if cp.Enabled && (cp.ListenAddr != config.DefaultControlPlaneAddr || cp.Store.KeyPrefix != "/vaultwall/contoso-vault/") {
					t.Errorf("defaults: %+v", cp)
				}
				if cp.Enabled && cp.Store.Type == config.StoreFile && cp.Store.Path != filepath.Join(filepath.Dir(path), config.DefaultStateFile) {
					t.Errorf("state file %q is not beside the configuration", cp.Store.Path)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.field+": ") {
				t.Fatalf("err = %v, want %v on %s", err, tc.want, tc.field)
			}
		})
	}
}

// TestClientTLSEnabled: an etcd store connects over TLS when caFile or
// certFile is set, and in plain text when neither is (a store without a tls
// block must not be dialled with TLS).
func TestClientTLSEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  config.ClientTLS
		want bool
	}{
		{"nothing set", config.ClientTLS{}, false},
		{"key file alone", config.ClientTLS{KeyFile: "c.key"}, false},
		{"caFile", config.ClientTLS{CAFile: "ca.pem"}, true},
		{"certFile and keyFile", config.ClientTLS{CertFile: "c.pem", KeyFile: "c.key"}, true},
		{"all three", config.ClientTLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "c.key"}, true},
	} {
		if got := tc.tls.Enabled(); got != tc.want {
			t.Errorf("%s: Enabled() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRoleDefinitionID: a custom role definition needs an id — and one that
// has it is valid.
func TestRoleDefinitionID(t *testing.T) {
	const rd = `
properties:
  enableRbacAuthorization: true
  roleDefinitions: [{%s roleName: Custom Secret Reader, dataActions: ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]}]
`
	path := filepath.Join(t.TempDir(), "vault.yaml")
	if _, err := config.Parse(path, []byte(cpBase+fmt.Sprintf(rd, "id: custom-secret-reader,"))); err != nil {
		t.Errorf("a role definition with an id: %v", err)
	}
	_, err := config.Parse(path, []byte(cpBase+fmt.Sprintf(rd, "")))
	if !errors.Is(err, config.ErrRequired) || !strings.Contains(err.Error(), "properties.roleDefinitions[0].id: ") {
		t.Errorf("a role definition without an id: %v, want %v on properties.roleDefinitions[0].id", err, config.ErrRequired)
	}
}
