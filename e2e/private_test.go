package e2e_test

import (
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestPrivateEndpoint is a vault with publicNetworkAccess Disabled behind an
// L4 load balancer that reports private-link connections in PROXY v2 TLVs
// (Azure Private Link's LINKID, AWS PrivateLink's VPC endpoint id): an
// approved private endpoint passes without any rule, every public address
// gets ForbiddenByConnection — even one an ipRule lists — and so does an
// endpoint that is not approved.
func TestPrivateEndpoint(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "contoso-private", front.EnvoyL4, func(c *config.Config) {
		c.Properties.PublicNetworkAccess = "Disabled"
		id := uint32(linkID)
		c.Network.PrivateEndpoints = []config.PrivateEndpoint{{ID: peAzure, LinkID: &id}, {ID: peAWS, VpceID: vpceID}}
	})
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	// A private-link source address is in the consumer's own network.
	consumer := addr("10.200.0.4")
	privateLink := func(pe string) string {
		return "conn_type=PrivateLink;private_endpoint=" + pe + ";addr=10.200.0.4;act_addr_fam=InterNetwork;"
	}

	for _, tc := range []struct {
		name string
		tlv  proxyproto.TLV
		pe   string
	}{
		{"Azure Private Link LINKID", front.AzureLinkID(linkID), peAzure},
		{"AWS PrivateLink VPC endpoint", front.AWSVPCE(vpceID), peAWS},
	} {
		t.Run(tc.name+" passes", func(t *testing.T) {
			s.do(t, req{path: get, from: consumer, tlvs: []proxyproto.TLV{tc.tlv}, as: &app}).
				wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "10.200.0.4", networkInfo: privateLink(tc.pe)})
			// Over the private endpoint the access policy still decides.
			s.do(t, req{path: get, from: consumer, tlvs: []proxyproto.TLV{tc.tlv}, as: &nobody}).
				wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(nobody, "secrets", "get"))
			// And authentication comes first.
			s.do(t, req{path: get, from: consumer, tlvs: []proxyproto.TLV{tc.tlv}}).
				wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
		})
	}

	t.Run("public addresses get ForbiddenByConnection", func(t *testing.T) {
		// 203.0.113.10 is in an ipRule: Disabled overrides the rules.
		for _, ip := range []string{"203.0.113.10", "8.8.8.8", "10.200.0.4", "2001:db8:1::10"} {
			s.do(t, req{path: get, from: addr(ip), as: &app}).
				wantRefused(t, 403, "Forbidden", "ForbiddenByConnection", s.connectionMessage(app))
		}
	})

	t.Run("an endpoint that is not approved gets ForbiddenByConnection", func(t *testing.T) {
		msg := "The request came through a private endpoint connection that is not approved for this vault.\r\nCaller: " +
			s.callerString(app) + "\r\nVault: " + s.vaultLabel()
		for _, tlv := range []proxyproto.TLV{front.AzureLinkID(linkID + 1), front.AWSVPCE("vpce-0000000000000000f")} {
			s.do(t, req{path: get, from: consumer, tlvs: []proxyproto.TLV{tlv}, as: &app}).
				wantRefused(t, 403, "Forbidden", "ForbiddenByConnection", msg)
		}
	})

	t.Run("a trusted service passes with public access disabled", func(t *testing.T) {
		s.do(t, req{path: get, from: addr("192.0.2.44"), cert: s.services["Backup"], as: &backup}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: backup, clientIP: "192.0.2.44", trusted: "Backup"})
		// Outside its scenario it is public traffic.
		s.do(t, req{path: "/secrets/db-password/versions" + api, from: addr("192.0.2.44"), cert: s.services["AppService"], as: &appService}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByConnection", s.connectionMessage(appService))
	})
}
