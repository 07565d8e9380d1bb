package authz

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonErrorBody is ErrorBody the way encoding/json writes it: the
// reference the hand-written encoder must match byte for byte.
func jsonErrorBody(den *Denial) string {
	type inner struct {
		Code string `json:"code"`
	}
	type errBody struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *inner `json:"innererror,omitempty"`
	}
	e := errBody{Code: den.Code, Message: den.Message}
	if den.Inner != "" {
		e.InnerError = &inner{Code: den.Inner}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error errBody `json:"error"`
	}{e})
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestErrorBody(t *testing.T) {
	for _, den := range []*Denial{
		{Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token."},
		{Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: "Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.9\r\nCaller: appid=…;oid=…\r\nVault: v;location=westeurope"},
		{Code: "Forbidden", Inner: "ForbiddenByPolicy", Message: `a "quoted" \ back\slash <b>&amp;</b> tab	bell` + "\x07\x00\x1f\x7f\b\f" + "\u2028\u2029 é 😀 \xff\xfe \xe2\x82"},
		{},
	} {
		if got, want := errorBody(den), jsonErrorBody(den); got != want {
			t.Errorf("errorBody:\n got %s\nwant %s", got, want)
		}
	}
}

// FuzzErrorBody asserts that the error envelope is exactly what
// encoding/json makes of the sanitised denial, and valid JSON whose
// strings are clean: UTF-8, no control character but CR and LF in the
// message, bounded.
func FuzzErrorBody(f *testing.F) {
	f.Add("Forbidden", "line\r\nnext \"q\" \\ \u2028", "ForbiddenByFirewall")
	f.Add("", "\xff\x00\x1f", "")
	f.Add("é", "😀\xe2\x82", "<>&")
	f.Fuzz(func(t *testing.T, code, msg, inner string) {
		den := &Denial{Code: code, Message: msg, Inner: inner}
		if got, want := errorBody(den), jsonErrorBody(den); got != want {
			t.Fatalf("errorBody:\n got %q\nwant %q", got, want)
		}
		got := ErrorBody(den)
		clean := &Denial{Code: Sanitize(code, MaxEchoValue), Message: SanitizeMessage(msg, MaxEchoMessage), Inner: Sanitize(inner, MaxEchoValue)}
		if want := jsonErrorBody(clean); got != want {
			t.Fatalf("ErrorBody:\n got %q\nwant %q", got, want)
		}
		var v struct {
			Error struct {
				Code, Message string
				InnerError    struct{ Code string }
			}
		}
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Fatalf("not JSON: %v: %q", err, got)
		}
		if SanitizeMessage(v.Error.Message, MaxEchoMessage) != v.Error.Message || Sanitize(v.Error.Code, MaxEchoValue) != v.Error.Code ||
			Sanitize(v.Error.InnerError.Code, MaxEchoValue) != v.Error.InnerError.Code {
			t.Fatalf("the body carries an unclean string: %q", got)
		}
	})
}

// An RBAC allow tells the client which assignment granted it, as Key Vault
// does (x-ms-keyvault-rbac-assignment-id), sanitised; an access-policy
// allow and a refusal do not.
func TestRBACAssignmentIDHeader(t *testing.T) {
	header := func(r Response) (string, bool) {
		for _, h := range r.Headers {
			if h.Name == HeaderRBACAssignmentID {
				return h.Value, true
			}
		}
		return "", false
	}
	rbac := &Decision{ID: "d", Allowed: true, Vault: &Vault{RBAC: true}, Authz: AuthzVerdict{Allowed: true, Model: ModelRBAC, AssignmentID: "ra-one-secret"}}
	if v, ok := header(rbac.Response()); !ok || v != "ra-one-secret" {
		t.Errorf("RBAC allow: %s = %q, %v; want ra-one-secret", HeaderRBACAssignmentID, v, ok)
	}
	rbac.Authz.AssignmentID = "ra\r\n\xff"
	if v, _ := header(rbac.Response()); v != "ra\uFFFD\uFFFD\uFFFD" {
		t.Errorf("assignment id echoed as %q, want it sanitised", v)
	}
	ap := &Decision{ID: "d", Allowed: true, Vault: &Vault{}, Authz: AuthzVerdict{Allowed: true, Model: ModelAccessPolicy, Rule: "accessPolicies[0]"}}
	if _, ok := header(ap.Response()); ok {
		t.Error("an access-policy allow names an RBAC assignment")
	}
	denied := &Decision{ID: "d", Vault: &Vault{RBAC: true}, Denial: &Denial{Status: 403, Code: "Forbidden", Inner: CodeForbiddenByRbac}}
	if _, ok := header(denied.Response()); ok {
		t.Error("a refusal names an RBAC assignment")
	}
}

// TestFirewallDenialByCode: each network refusal code gets Key Vault's own
// inner code and message.
func TestFirewallDenialByCode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      string
		plUnknown bool
		inner     string
		prefix    string
	}{
		{"public access disabled", "ForbiddenByConnection", false, "ForbiddenByConnection", "Public network access is disabled and request is not from a trusted service nor via an approved private link."},
		{"unapproved private endpoint", "ForbiddenByConnection", true, "ForbiddenByConnection", "The request came through a private endpoint connection that is not approved"},
		{"address not in the rules", "ForbiddenByFirewall", false, "ForbiddenByFirewall", "Client address is not authorized and caller is not a trusted service."},
	} {
		d := &Decision{Vault: &Vault{Name: "contoso-vault"}}
		d.Network.Code, d.Network.PrivateLinkUnknown = tc.code, tc.plUnknown
		den := firewallDenial(d)
		if den.Status != 403 || den.Code != "Forbidden" || den.Inner != tc.inner || !strings.HasPrefix(den.Message, tc.prefix) {
			t.Errorf("%s: %+v, want 403 Forbidden/%s %q…", tc.name, den, tc.inner, tc.prefix)
		}
	}
}
