package engine

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/audit"
)

// TestTrustedServiceRefusalSaysWhy: Backup's certificate without the
// clientAuth extended key usage is refused at the firewall, and
// `check --explain` and the audit record say why.
func TestTrustedServiceRefusalSaysWhy(t *testing.T) {
	is := authztest.NewIssuer(t)
	ca := authztest.NewTestCA(t)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, bypass: AzureServices, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies:
    - {tenantId: %s, objectId: %s, permissions: {secrets: [get]}}
identity:
  issuers: [{issuer: %q, discovery: true}]
trustedServices:
  caFile: %q
  services: [{name: Backup, principals: ["spiffe://trusted.example/azure-backup"]}]
`, is.Tenant(), is.Tenant(), authztest.DefaultObjectID, is.Issuer(), ca.WriteBundle())
	cfg, err := config.Parse(filepath.Join(dir, "vault.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := (&Builder{Keys: keys}).Build(t.Context(), cfg)
	if err != nil {
		t.Fatal(cfg.Annotate(err))
	}
	t.Cleanup(rt.Close)
	if err := rt.Authenticator.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := envoy.NewServer(nil, nil)
	srv.SetPipeline(rt.Pipeline)

	cert := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}, Server: true})
	cr := secretCheck(is.Mint(is.Claims()), "192.0.2.44", "/secrets/db")
	cr.Attributes.Source.Principal = "spiffe://trusted.example/azure-backup"
	cr.Attributes.Source.Certificate = cert.EnvoyCertificate()
	d := srv.Decide(t.Context(), cr)
	if d.Allowed || d.Denial == nil || d.Denial.Inner != "ForbiddenByFirewall" {
		t.Fatalf("decision %+v, want ForbiddenByFirewall", d.Denial)
	}
	const why = "lacks the clientAuth extended key usage"
	fw := d.Explain()[2]
	if !strings.Contains(fw.Detail, "not a trusted service: the certificate names trusted service Backup, but its client certificate "+why) {
		t.Errorf("explain firewall step %q does not say why Backup was not recognised", fw.Detail)
	}
	if got := audit.FromDecision(d, 0).Vaultwall.TrustedProblem; !strings.Contains(got, why) {
		t.Errorf("audit trustedServiceProblem = %q, want the reason", got)
	}
}
