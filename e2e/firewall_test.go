package e2e_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestFirewall is Key Vault's firewall on a public vault behind an L4 load
// balancer (envoy/envoy.yaml: PROXY protocol v2 carries each client's
// address): defaultAction Deny, an IPv4 range and host, IPv6 rules, a
// virtual-network rule, bypass AzureServices for Backup and App Service,
// and vaultwall's own endpoints, which no firewall rule touches. One
// vaultwall process serves every scenario.
func TestFirewall(t *testing.T) {
	t.Parallel()
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	s := newSystem(t, "contoso", front.EnvoyL4, func(c *config.Config) {
		// The audit log is how the untrusted-CA scenario sees what reached
		// vaultwall, on either front.
		c.Audit = config.Audit{Enabled: true, Sink: "file", Path: auditLog}
	})
	s.vault.SetSecret("db-password", "s3cr3t")
	s.vault.SeedCertificate(t, "web-tls", "www.contoso.example")
	get := "/secrets/db-password" + api

	t.Run("public internet blocked, a listed IPv4 range and a single host pass", func(t *testing.T) {
		t.Parallel()
		for _, ip := range []string{"203.0.113.10", "203.0.113.254", "198.51.100.7"} {
			s.do(t, req{path: get, from: addr(ip), as: &app}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: ip, networkInfo: networkInfo(ip)})
		}
		// HTTP/1.1 clients are the same clients.
		s.do(t, req{path: get, from: addr("203.0.113.12"), as: &app, http1: true}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.12"})
		s.do(t, req{path: get, from: addr("8.8.4.4"), as: &app, http1: true}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.4.4", app))
		// A user signed in through the Azure CLI, allowed through a group.
		s.do(t, req{path: get, from: addr("203.0.113.11"), as: &alice}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: alice, clientIP: "203.0.113.11"})
		for _, ip := range []string{"8.8.8.8", "198.51.100.8", "203.0.114.1", "127.0.0.1"} {
			s.do(t, req{path: get, from: addr(ip), as: &app}).
				wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage(ip, app))
		}
		// The network verdict comes before the permission check: a caller
		// without any access policy learns about the firewall first.
		s.do(t, req{path: get, from: addr("8.8.8.8"), as: &nobody}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", nobody))
		// Inside the rules, the access policy decides.
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &nobody}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(nobody, "secrets", "get"))
		s.do(t, req{method: "PUT", path: "/secrets/new" + api, body: `{"value":"x"}`, from: addr("203.0.113.10"), as: &readOnly}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(readOnly, "secrets", "set"))
		// A verb tunnelled through POST is judged as the verb it stands for.
		s.do(t, req{method: "POST", path: get, from: addr("203.0.113.10"), as: &app, header: http.Header{"X-Http-Method": {"DELETE"}}}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(app, "secrets", "delete"))
	})

	t.Run("authentication comes first, and every 401 carries the challenge", func(t *testing.T) {
		t.Parallel()
		// Key Vault's order is 401, then network, then permission: a
		// token-less request from a refused address is a 401, not a 403,
		// whatever the verb, body or not (the SDKs' first request).
		for _, r := range []req{
			{path: get, from: addr("8.8.8.8")},
			{path: get, from: addr("203.0.113.10")},
			{method: "PUT", path: "/secrets/x" + api, from: addr("8.8.8.8")},
			{method: "POST", path: "/keys/kek/wrapkey" + api, from: addr("203.0.113.10")},
			// With a body, as an SDK's first write is sent: still the 401,
			// and the body never reaches the vault.
			{method: "PUT", path: "/secrets/x" + api, from: addr("8.8.8.8"), body: `{"value":"s3cr3t"}`},
			{method: "PUT", path: "/secrets/x" + api, from: addr("203.0.113.10"), body: `{"value":"s3cr3t"}`},
			{method: "POST", path: "/keys/kek/wrapkey" + api, from: addr("203.0.113.10"), body: `{"alg":"RSA-OAEP","value":"AAAA"}`},
			{method: "PATCH", path: "/secrets/x/0123456789abcdef0123456789abcdef" + api, from: addr("203.0.113.10"), http1: true,
				body: `{"attributes":{"enabled":false}}`},
			{method: "PUT", path: "/secrets/x" + api, from: addr("203.0.113.10"), body: `{"value":"` + strings.Repeat("x", 64<<10) + `"}`},
		} {
			s.do(t, r).wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
		}
		expired := s.claims(app, tenant)
		expired["exp"] = time.Now().Add(-time.Hour).Unix()
		otherAudience := s.claims(app, tenant)
		otherAudience["aud"] = "https://management.azure.com/"
		for name, tok := range map[string]string{
			"expired":        s.issuer.Mint(expired),
			"other audience": s.issuer.Mint(otherAudience),
			"other tenant":   s.issuer.Mint(s.claims(app, "00000000-0000-0000-0000-0000000000ff")),
			"tampered":       authztest.Tamper(s.token(t, app)),
			"not a JWT":      "opaque-token",
		} {
			r := s.do(t, req{path: get, from: addr("203.0.113.10"), token: tok})
			if r.status != 401 || r.header.Get("Www-Authenticate") != challenge || r.header.Get("X-Ms-Error-Code") != "Unauthorized" || r.upstream != nil {
				t.Errorf("%s token: %d, WWW-Authenticate %q, x-ms-error-code %q, reached the vault %v; want 401 with the challenge",
					name, r.status, r.header.Get("Www-Authenticate"), r.header.Get("X-Ms-Error-Code"), r.upstream != nil)
			}
		}
		s.do(t, req{path: get, from: addr("203.0.113.10"), token: s.issuer.Mint(otherAudience)}).
			wantChallenge(t, "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/.")
	})

	t.Run("an application in a locked-down virtual network passes", func(t *testing.T) {
		t.Parallel()
		s.do(t, req{path: get, from: addr("10.1.2.25"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "10.1.2.25",
				networkInfo: "conn_type=Subnet;subnet=" + subnetBackend + ";addr=10.1.2.25;act_addr_fam=InterNetwork;"})
		// Another subnet of the same network, which no rule names: Key
		// Vault's service-endpoint wording.
		s.do(t, req{path: get, from: addr("10.1.3.5"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("10.1.3.5 from unknown subnet", app))
		s.do(t, req{path: get, from: addr("10.9.9.9"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("10.9.9.9", app))
	})

	t.Run("IPv6 rules", func(t *testing.T) {
		t.Parallel()
		for _, ip := range []string{"2001:db8:1::10", "2001:db8:1:ffff::1", "2001:db8:ffff::7"} {
			s.do(t, req{path: get, from: addr(ip), as: &app}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: ip, networkInfo: networkInfo(ip)})
		}
		s.do(t, req{path: get, from: addr("fd00:1:2::25"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "fd00:1:2::25",
				networkInfo: "conn_type=Subnet;subnet=" + subnetBackend + ";addr=fd00:1:2::25;act_addr_fam=InterNetworkV6;"})
		for _, ip := range []string{"2001:db8:ffff::8", "2001:db8:2::1", "::1"} {
			s.do(t, req{path: get, from: addr(ip), as: &app}).
				wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage(ip, app))
		}
		// An IPv4 client reported in IPv6 form (a dual-stack listener): the
		// IPv4 rules apply to it, the IPv6 ones never do.
		s.do(t, req{path: get, from: addr("::ffff:203.0.113.10"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
		s.do(t, req{path: get, from: addr("::ffff:8.8.8.8"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))
	})

	t.Run("X-Forwarded-For spoofing changes nothing", func(t *testing.T) {
		t.Parallel()
		spoof := http.Header{
			"X-Forwarded-For":          {"203.0.113.10"},
			"X-Envoy-External-Address": {"203.0.113.10"},
			"X-Real-Ip":                {"203.0.113.10"},
			"Forwarded":                {"for=203.0.113.10"},
			"True-Client-Ip":           {"203.0.113.10"},
		}
		s.do(t, req{path: get, from: addr("8.8.8.8"), as: &app, header: spoof}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))
		s.do(t, req{path: get, from: addr("2001:db8:9::1"), as: &app, header: http.Header{"X-Forwarded-For": {"2001:db8:1::10, 203.0.113.10"}}}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("2001:db8:9::1", app))
		// An allowed client claiming to be elsewhere is still itself.
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &app, header: http.Header{"X-Forwarded-For": {"8.8.8.8"}}}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
		// An admitted client sending every spoofing header, each naming an
		// address the rules refuse, is still itself: admitted, and the vault
		// sees its real address.
		for _, claim := range []string{"8.8.8.8", "10.1.3.5", "2001:db8:9::1"} {
			spoofOut := http.Header{
				"X-Forwarded-For":          {claim},
				"X-Envoy-External-Address": {claim},
				"X-Real-Ip":                {claim},
				"Forwarded":                {"for=\"" + claim + "\""},
				"True-Client-Ip":           {claim},
			}
			s.do(t, req{path: get, from: addr("203.0.113.10"), as: &app, header: spoofOut}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10", networkInfo: networkInfo("203.0.113.10")})
			s.do(t, req{path: get, from: addr("2001:db8:1::10"), as: &app, header: spoofOut}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "2001:db8:1::10", networkInfo: networkInfo("2001:db8:1::10")})
		}
		// Garbage in the header is not even read.
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &app, header: http.Header{"X-Forwarded-For": {"not an address, also not"}}}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
	})

	t.Run("trusted services with bypass AzureServices", func(t *testing.T) {
		t.Parallel()
		outside := addr("192.0.2.44") // no rule admits it
		backupCert, appServiceCert := s.services["Backup"], s.services["AppService"]

		// Valid certificate (mTLS to the front, SAN = the bound SPIFFE id),
		// token and access policy: through the firewall from outside.
		s.do(t, req{path: get, from: outside, cert: backupCert, as: &backup}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: backup, clientIP: "192.0.2.44", trusted: "Backup"})
		s.do(t, req{path: "/secrets" + api, from: outside, cert: backupCert, as: &backup}).
			wantAllowed(t, 200, upstream{op: "SecretList", caller: backup, clientIP: "192.0.2.44", trusted: "Backup"})
		// No token: the 401 challenge, certificate or not.
		s.do(t, req{path: get, from: outside, cert: backupCert}).
			wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
		// In its scenario (keys: get) but without the permission: the
		// access policy refuses.
		s.do(t, req{path: "/keys/kek" + api, from: outside, cert: backupCert, as: &backup}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(backup, "keys", "get"))
		// Outside its scenario (secrets set) it is an ordinary caller.
		s.do(t, req{method: "PUT", path: "/secrets/x" + api, body: `{"value":"x"}`, from: outside, cert: backupCert, as: &backup}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", backup))
		// A certificate from the trusted CA that no binding names, or that
		// names a look-alike of a bound id, is no trusted service.
		for _, id := range []string{"spiffe://trusted.example/azure-backup/", "spiffe://trusted.example/Azure-Backup", "spiffe://trusted.example/other"} {
			cert := s.serviceCA.Issue(authztest.CertOptions{URIs: []string{id}}).TLS()
			s.do(t, req{path: get, from: outside, cert: &cert, as: &backup}).
				wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", backup))
		}
		// The same identity without its certificate is not a trusted service.
		s.do(t, req{path: get, from: outside, as: &backup}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", backup))
		// Another identity's token with Backup's certificate is not Backup
		// either, as far as permissions go: the firewall lets it pass (the
		// certificate is Backup's), the policy then decides on the token.
		s.do(t, req{path: get, from: outside, cert: backupCert, as: &nobody}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(nobody, "secrets", "get"))

		// App Service: its certificate scenario passes — the certificate,
		// and its private key, which Key Vault serves as the secret of the
		// same name...
		s.do(t, req{path: "/certificates/web-tls" + api, from: outside, cert: appServiceCert, as: &appService}).
			wantAllowed(t, 200, upstream{op: "CertificateGet", caller: appService, clientIP: "192.0.2.44", trusted: "AppService"})
		s.do(t, req{path: "/secrets/web-tls" + api, from: outside, cert: appServiceCert, as: &appService}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: appService, clientIP: "192.0.2.44", trusted: "AppService"})
		// ...while reading secrets beyond it is refused, though its access
		// policy grants secrets list.
		s.do(t, req{path: "/secrets" + api, from: outside, cert: appServiceCert, as: &appService}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", appService))
		s.do(t, req{path: "/secrets/db-password/versions" + api, from: outside, cert: appServiceCert, as: &appService}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.44", appService))
	})

	t.Run("a client certificate from an untrusted CA cannot connect", func(t *testing.T) {
		t.Parallel()
		rogue := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "rogue CA"})
		for _, id := range []string{spiffeBackup, "spiffe://rogue.example/anything"} {
			cert := rogue.Issue(authztest.CertOptions{URIs: []string{id}}).TLS()
			// TLS 1.2: the handshake fails with the front's alert.
			if err := s.handshake(t, addr("203.0.113.10"), &cert, tls.VersionTLS12); err == nil || !strings.Contains(err.Error(), "tls: ") {
				t.Errorf("certificate %s from another CA, TLS 1.2: %v; want the TLS handshake refused", id, err)
			}
			// TLS 1.3: the connection dies right after the handshake
			// (alert, reset or broken pipe), before any answer.
			if err := s.handshake(t, addr("203.0.113.10"), &cert, 0); err == nil {
				t.Errorf("certificate %s from another CA, TLS 1.3: answered; want the connection refused", id)
			}
			r := s.do(t, req{path: get, from: addr("203.0.113.10"), cert: &cert, as: &backup})
			if r.err == nil || r.upstream != nil {
				t.Errorf("certificate %s from another CA: status %d, reached the vault %v; want no connection", id, r.status, r.upstream != nil)
			}
		}
		// The same handshake with the trusted CA's certificate, or none, works.
		for _, c := range []*tls.Certificate{s.services["Backup"], nil} {
			for _, v := range []uint16{tls.VersionTLS12, 0} {
				if err := s.handshake(t, addr("203.0.113.10"), c, v); err != nil {
					t.Errorf("handshake (max version %#x) with a trusted certificate or none: %v", v, err)
				}
			}
		}
		// The same client without the certificate is an ordinary caller.
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})

		// Nothing reaches vaultwall: requests with the rogue certificates
		// (marked by their path) leave no audit record, while a marked
		// request made after them, without a certificate, does. The audit
		// log is written in decision order, so once the later record is
		// there, an earlier one would be too.
		probe := "/secrets/untrusted-ca-probe" + api
		for _, id := range []string{spiffeBackup, "spiffe://rogue.example/anything"} {
			cert := rogue.Issue(authztest.CertOptions{URIs: []string{id}}).TLS()
			if r := s.do(t, req{path: probe, from: addr("203.0.113.10"), cert: &cert, as: &backup}); r.err == nil {
				t.Errorf("certificate %s from another CA: status %d; want no connection", id, r.status)
			}
		}
		control := "/secrets/untrusted-ca-control" + api
		s.do(t, req{path: control, from: addr("8.8.8.8")}).wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
		records := waitAudit(t, auditLog, "untrusted-ca-control")
		if strings.Contains(records, "untrusted-ca-probe") {
			t.Errorf("a request with an untrusted client certificate reached vaultwall:\n%s", records)
		}
	})

	t.Run("control plane: vaultwall's endpoints answer from an address the firewall denies", func(t *testing.T) {
		t.Parallel()
		// The tests reach vaultwall from 127.0.0.1, which no rule admits:
		// on the data plane that address is refused...
		s.do(t, req{path: get, from: addr("127.0.0.1"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("127.0.0.1", app))
		// ...and Key Vault's own unauthenticated health endpoint passes
		// through the front without a token, as in Key Vault.
		r := s.do(t, req{path: "/healthstatus", from: addr("8.8.8.8")})
		if r.err != nil || r.status != 200 || r.upstream == nil {
			t.Fatalf("GET /healthstatus: %d, %v, reached the vault: %v", r.status, r.err, r.upstream != nil)
		}
		// No caller, so no caller headers: the forged ones are gone too.
		for name, vs := range r.upstream.Header {
			name = strings.ToLower(name)
			switch {
			case name == authz.HeaderOperation && vs[0] == "HealthStatus",
				name == authz.HeaderClientIP && vs[0] == "8.8.8.8",
				name == authz.HeaderDecisionID && vs[0] != "forged":
			case strings.HasPrefix(name, authz.HeaderPrefix):
				t.Errorf("GET /healthstatus reached the vault with %s %q", name, vs)
			}
		}

		// vaultwall's control plane: the firewall applies only to the data
		// plane Checks, so these answer whatever the rules say.
		for _, c := range controlPlaneHTTP {
			resp, err := http.Get("http://" + s.vw.http + c.path)
			if err != nil {
				t.Errorf("GET %s: %v", c.path, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), c.contains) {
				t.Errorf("GET %s from 127.0.0.1: %d %.200s; want 200 containing %q", c.path, resp.StatusCode, b, c.contains)
			}
			if c.path == "/readyz" {
				var ready struct{ Ready bool }
				if json.Unmarshal(b, &ready) != nil || !ready.Ready {
					t.Errorf("/readyz: %s", b)
				}
			}
		}
		cc, err := grpc.NewClient(s.vw.grpc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			ServerName: vaultwallName, RootCAs: s.authzCA.Pool(), Certificates: []tls.Certificate{s.authzCert},
		})))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
			h, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("grpc.health.v1 Check(%q) from 127.0.0.1: %v, %v; want SERVING", svc, h.GetStatus(), err)
			}
		}
		// The management API, on its own listener with its own
		// authorization, is TestControlPlane.
	})
}

// controlPlaneHTTP are vaultwall's own HTTP endpoints. The firewall never
// applies to them.
var controlPlaneHTTP = []struct{ path, contains string }{
	{"/healthz", `"status": "ok"`},
	{"/readyz", `"ready": true`},
	{"/metrics", "go_goroutines"},
}

// waitAudit waits until the audit log holds a record containing marker and
// returns the whole log.
func waitAudit(t *testing.T, path, marker string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), marker) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record with %q in %s after 30 s:\n%s", marker, path, lastLines(b, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
