package token_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
)

// A caller rebuilt from the claims an audit record keeps (after a JSON round
// trip, as replay reads them) is the caller the live verification produced.
func TestCallerFromClaimsMatchesVerification(t *testing.T) {
	f := newFixture(t)
	cases := map[string]func(map[string]any){
		"v1 app": func(map[string]any) {},
		"v2 app": func(c map[string]any) {
			delete(c, "appid")
			c["azp"] = "22222222-0000-0000-0000-00000000000a"
			c["azpacr"] = "1"
			c["ver"] = "2.0"
		},
		"user": func(c map[string]any) {
			c["idtyp"] = "user"
			c["scp"] = "user_impersonation openid"
			c["groups"] = []string{"g1", "g2"}
			c["upn"] = "a@b.test"
		},
		"overage": func(c map[string]any) { c["_claim_names"] = map[string]any{"groups": "src1"} },
		"managed": func(c map[string]any) {
			c["xms_mirid"] = "/subscriptions/s/rg/x"
			c["xms_az_rid"] = "/rid"
			c["roles"] = []string{"r"}
		},
		"no idtyp": func(c map[string]any) { delete(c, "idtyp"); c["scp"] = "x" },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			claims := f.iss.Claims()
			change(claims)
			live := mustAllow(t, f.authn, bearer(f.iss.Mint(claims)))
			raw, err := json.Marshal(live.Claims)
			if err != nil {
				t.Fatal(err)
			}
			var recorded map[string]any
			if err := json.Unmarshal(raw, &recorded); err != nil {
				t.Fatal(err)
			}
			got := token.CallerFromClaims(recorded)
			if got.String() != live.String() {
				t.Errorf("String() = %q, want %q", got.String(), live.String())
			}
			strip := func(c *authz.Caller) authz.Caller {
				cp := *c
				cp.Claims = nil
				cp.Seal()
				return cp
			}
			if g, w := strip(got), strip(live); !reflect.DeepEqual(g, w) {
				t.Errorf("caller = %+v\nwant     %+v", g, w)
			}
		})
	}
}

func TestRecheckClaims(t *testing.T) {
	v := vault()
	id := token.Identity{Issuers: []token.Issuer{{Issuer: "https://sts.test/t/", Audiences: []string{"https://vault.azure.net"}}}}
	ok := func() map[string]any {
		return map[string]any{"iss": "https://sts.test/t/", "aud": []any{"https://vault.azure.net"}, "tid": v.TenantID}
	}
	cases := []struct {
		name   string
		change func(map[string]any)
		id     token.Identity
		want   string
	}{
		{"valid", func(map[string]any) {}, id, ""},
		{"string audience", func(c map[string]any) { c["aud"] = "https://vault.azure.net" }, id, ""},
		{"issuer removed", func(map[string]any) {}, token.Identity{}, "AKV10032: Invalid issuer. Expected one of (no issuer is configured)"},
		{"other issuer", func(c map[string]any) { c["iss"] = "https://evil.test/" }, id, "AKV10032"},
		{"audience", func(c map[string]any) { c["aud"] = []any{"https://management.azure.com/"} }, id, "AKV10022"},
		{"no audience", func(c map[string]any) { delete(c, "aud") }, id, "AKV10022"},
		{"tenant", func(c map[string]any) { c["tid"] = "00000000-0000-0000-0000-0000000000ff" }, id, "Expected tenant"},
		{"no tenant", func(c map[string]any) { delete(c, "tid") }, id, "Expected tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.change(c)
			d := token.RecheckClaims(tc.id, v, c)
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("refused: %+v", d)
			case tc.want != "" && d == nil:
				t.Fatal("accepted")
			case d != nil && (d.Status != 401 || !d.Challenge || !strings.Contains(d.Message, tc.want)):
				t.Fatalf("denial = %+v, want a 401 with the challenge saying %q", d, tc.want)
			}
		})
	}
}
