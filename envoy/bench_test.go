package envoy

import (
	"net/netip"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz"
)

// BenchmarkRequestFrom is the translation of Envoy's CheckRequest into the
// plain request the pipeline decides on.
func BenchmarkRequestFrom(b *testing.B) {
	var cr authv3.CheckRequest
	if err := protojson.Unmarshal([]byte(envoyJSON), &cr); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := RequestFrom(&cr); !r.Peer.IsValid() {
			b.Fatal("no peer")
		}
	}
}

// benchDecisions are an allowed secret read, a 401 without a token and a
// firewall refusal, as the pipeline leaves them.
func benchDecisions() map[string]*authz.Decision {
	vault := &authz.Vault{Name: "contoso", TenantID: "00000000-0000-0000-0000-000000000001", Location: "westeurope",
		Challenge: `Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"`}
	caller := &authz.Caller{Issuer: "https://sts.windows.net/00000000-0000-0000-0000-000000000001/", TenantID: vault.TenantID,
		ObjectID: "5e000000-0000-4000-8000-000000000001", ApplicationID: "a9900000-0000-4000-8000-000000000003", IdentityType: "app"}
	caller.Seal()
	req := &authz.Request{ID: "8306787481883314548", Peer: netip.MustParseAddrPort("203.0.113.9:51234"), Method: "GET",
		Path: "/secrets/db/?api-version=7.5", Host: "contoso.vault.azure.net", Scheme: "https",
		Headers: map[string]string{":path": "/secrets/db/?api-version=7.5", "authorization": "Bearer x",
			"x-ms-client-request-id": "c0ffee00-0000-4000-8000-00000000000a", "user-agent": "azsdk-go-azsecrets/v1.5.1"}}
	op := authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet", Object: "db", Scope: "/secrets/db"}
	conn := authz.Connection{ClientAddr: netip.MustParseAddr("203.0.113.9")}
	allowed := &authz.Decision{ID: authz.NewID(), Time: time.Now(), Vault: vault, Request: req, Operation: op, Caller: caller,
		Network: authz.NetworkVerdict{Connection: conn, Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "ipRules[3]=203.0.113.0/24"},
		Authz:   authz.AuthzVerdict{Evaluated: true, Allowed: true, Model: authz.ModelAccessPolicy, Rule: "accessPolicies[0]"},
		Allowed: true, Stage: authz.StageAuthorize}
	unauthorized := &authz.Decision{ID: authz.NewID(), Time: time.Now(), Vault: vault, Request: req, Operation: op,
		Network: authz.NetworkVerdict{Connection: conn}, Stage: authz.StageAuthenticate,
		Denial: &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}}
	firewall := &authz.Decision{ID: authz.NewID(), Time: time.Now(), Vault: vault, Request: req, Operation: op, Caller: caller,
		Network: authz.NetworkVerdict{Connection: conn, Evaluated: true, AuthType: authz.AddrPublicIP, Code: "ForbiddenByFirewall"},
		Stage:   authz.StageFirewall,
		Denial: &authz.Denial{Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall",
			Message: "Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.9\r\nCaller: " + caller.String() + "\r\nVault: contoso;location=westeurope"}}
	return map[string]*authz.Decision{"allowed": allowed, "401": unauthorized, "firewall": firewall}
}

// BenchmarkResponseFrom is a decision turned into Envoy's CheckResponse:
// the Key Vault response (headers, body, metadata), then its protobuf.
func BenchmarkResponseFrom(b *testing.B) {
	for _, name := range []string{"allowed", "401", "firewall"} {
		d := benchDecisions()[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := ResponseFrom(d.Response()); r.GetStatus() == nil {
					b.Fatal("no status")
				}
			}
		})
	}
}
