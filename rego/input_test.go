package rego_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/rego"
)

// readmeDecision is the decision whose input README.md shows.
func readmeDecision() *authz.Decision {
	v := &authz.Vault{Name: "contoso", TenantID: tenant, Location: "westeurope", ResourceID: vaultID}
	c := &authz.Caller{Issuer: "https://sts.windows.net/" + tenant + "/", TenantID: tenant, ObjectID: alice, ApplicationID: webApp,
		AppIDACR: "0", IdentityType: "user", Groups: []string{opsGroup}, Scopes: []string{"user_impersonation"}, Subject: "Jv3b8x2",
		Claims: map[string]any{"amr": []any{"pwd", "mfa"}, "appid": webApp, "idtyp": "user", "oid": alice, "scp": "user_impersonation",
			"tid": tenant, "upn": "alice@contoso.example", "ver": "1.0"}}
	return &authz.Decision{ID: "6f9619ff-8b86-d011-b42d-00cf4fc964ff", Time: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC), Vault: v, Caller: c,
		Operation: authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet",
			DataAction: "Microsoft.KeyVault/vaults/secrets/getSecret/action", Object: "db-password", ObjectRaw: "db-password", Version: "",
			Scope: "/secrets/db-password", Method: "GET", APIVersion: "7.5"},
		Request: &authz.Request{ID: "13482946214931221457", Peer: netip.MustParseAddrPort("10.1.2.7:50312"), Principal: "spiffe://cluster.local/ns/apps/sa/web",
			TLS: true, SNI: "contoso.vault.azure.net", Method: "GET", Path: "/secrets/db-password?api-version=7.5", Host: "contoso.vault.azure.net",
			Scheme: "https", Protocol: "HTTP/2", Headers: map[string]string{"authorization": "Bearer eyJ0eXAiOi…", "user-agent": "azsdk-go-azsecrets/v1.5.0",
				"x-ms-client-request-id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "cookie": "session=secret"}},
		Network: authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("10.1.2.7"),
			SubnetID: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/app/subnets/backend"},
			Evaluated: true, Allowed: true, AuthType: authz.AddrSubnet, Rule: "virtualNetworkRules[0]"},
	}
}

func inputJSON(t *testing.T, d *authz.Decision) string {
	t.Helper()
	v, err := rego.Input(d)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// README.md shows the input of readmeDecision exactly, so the documented
// document cannot drift from the one built.
func TestREADMEShowsTheInput(t *testing.T) {
	got := inputJSON(t, readmeDecision())
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```json\n"+got+"\n```") {
		t.Errorf("README.md does not show the input document; it is:\n%s", got)
	}
}

func TestInputHoldsNoCredential(t *testing.T) {
	got := inputJSON(t, readmeDecision())
	for _, secret := range []string{"authorization", "Bearer", "cookie", "session=secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("the input holds %q:\n%s", secret, got)
		}
	}
}

// The input is built with only the fields the loaded rules read. Whatever
// field a rule reads, that field is there: an operator rule comparing each
// field (and each way of reaching the whole input) with its value denies.
func TestInputHasEveryFieldARuleReads(t *testing.T) {
	cfg := load(t, `
properties:
  accessPolicies:
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: a11ce000-0000-4000-8000-000000000001, permissions: {secrets: [get]}}
`)
	d := readmeDecision()
	v := cfg.AuthzVault()
	d.Vault = &v
	full, err := rego.Input(d)
	if err != nil {
		t.Fatal(err)
	}
	var reads []string
	full.(ast.Object).Foreach(func(sk, sv *ast.Term) {
		sec := string(sk.Value.(ast.String))
		obj, ok := sv.Value.(ast.Object)
		if !ok {
			reads = append(reads, fmt.Sprintf("input.%s == %v", sec, sv))
			return
		}
		obj.Foreach(func(fk, fv *ast.Term) {
			reads = append(reads, fmt.Sprintf("input.%s.%s == %v", sec, string(fk.Value.(ast.String)), fv))
			if inner, ok := fv.Value.(ast.Object); ok {
				inner.Foreach(func(ik, iv *ast.Term) {
					reads = append(reads, fmt.Sprintf("input.%s.%s[%v] == %v", sec, string(fk.Value.(ast.String)), ik, iv))
				})
			}
		})
	})
	reads = append(reads,
		"count(input) == 7",
		`object.get(input, ["caller", "claims", "upn"], "") == "alice@contoso.example"`,
		`some k; input.caller[k] == "Jv3b8x2"`,
		`some s; input[s].subnet_id != ""`,
		`walk(input, [["request", "host"], "contoso.vault.azure.net"])`,
		`input.caller[{"data": "subject"}[input.operation.plane]] == "Jv3b8x2"`,
		`{"data": "subject"}[input.operation.plane] == "subject"`,
	)
	if len(reads) < 60 {
		t.Fatalf("only %d fields found", len(reads))
	}
	for _, r := range reads {
		t.Run(r, func(t *testing.T) {
			dir := policyDir(t, map[string]string{"read.rego": pkg + "deny contains \"read\" if {\n\t" + r + "\n}\n"})
			p := newPolicy(t, cfg, rego.WithDir(dir))
			got, err := p.Authorize(t.Context(), d)
			if err != nil || got.Allowed || got.Message != "read" {
				t.Fatalf("verdict %+v, err %v: the rule did not see the field", got, err)
			}
		})
	}
}
