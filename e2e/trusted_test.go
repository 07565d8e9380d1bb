package e2e_test

import (
	"testing"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestTrustedServicesBypassNone is TestFirewall's vault with "Allow trusted
// Microsoft services" off (bypass: None): the same trusted service, with
// its certificate, token and access policy, is refused from outside the
// rules, and passes from inside them like anyone.
func TestTrustedServicesBypassNone(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "contoso-nobypass", front.EnvoyL4, func(c *config.Config) {
		c.Properties.NetworkAcls.Bypass = "None"
	})
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	backupCert := s.services["Backup"]

	s.do(t, req{path: get, from: addr("192.0.2.44"), cert: backupCert, as: &backup}).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", backup))
	s.do(t, req{path: "/certificates/web-tls" + api, from: addr("192.0.2.44"), cert: s.services["AppService"], as: &appService}).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", appService))
	// From an allowed address the service is an ordinary caller: admitted by
	// the IP rule, not as a trusted service.
	s.do(t, req{path: get, from: addr("203.0.113.20"), cert: backupCert, as: &backup}).
		wantAllowed(t, 200, upstream{op: "SecretGet", caller: backup, clientIP: "203.0.113.20"})
	// App Service likewise: inside the rules it reads its certificate as an
	// ordinary caller (no x-vaultwall-trusted-service), and what its access
	// policy does not grant is refused by the policy, not the firewall.
	s.vault.SeedCertificate(t, "web-tls", "www.contoso.example")
	s.do(t, req{path: "/certificates/web-tls" + api, from: addr("203.0.113.20"), cert: s.services["AppService"], as: &appService}).
		wantAllowed(t, 200, upstream{op: "CertificateGet", caller: appService, clientIP: "203.0.113.20"})
	s.do(t, req{path: "/keys/kek" + api, from: addr("203.0.113.20"), cert: s.services["AppService"], as: &appService}).
		wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(appService, "keys", "get"))
}
