package audit_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/ops/audit"
)

// Whatever a request carries, its record never holds a header outside
// RecordedHeaders (so never the authorization value), is one JSON line, and
// reads back to the request the decision saw.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("GET", "/secrets/db?api-version=7.5", "authorization", "Bearer eyJ.secret.sig", "x-forwarded-for", "1.2.3.4", "203.0.113.1:443", uint32(7))
	f.Add("POST", "/keys/k/wrapkey", "cookie", "a=b\nc", "x-http-method", "PATCH", "[::1]:1", uint32(0))
	f.Add("\x00", "/\"\\\u2028", ":path", "\xff", "X-Vault-Token", "hvs.x", "", uint32(1))
	f.Fuzz(func(t *testing.T, method, path, h1, v1, h2, v2, peer string, link uint32) {
		req := &authz.Request{Method: method, Path: path, Host: "v.vault.azure.net",
			Headers: map[string]string{h1: v1, h2: v2, "authorization": "Bearer SECRET-TOKEN-VALUE"}}
		if ap, err := netip.ParseAddrPort(peer); err == nil {
			req.Peer = ap
		}
		if link != 0 {
			req.PrivateLink = authz.PrivateLink{AzureLinkID: link, HasAzureLinkID: true}
		}
		d := &authz.Decision{ID: "id", Time: time.Unix(1, 0), Vault: &authz.Vault{}, Request: req,
			Denial: &authz.Denial{Status: 403, Code: "Forbidden", Message: v1}}
		b, err := json.Marshal(audit.FromDecision(d, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "SECRET-TOKEN-VALUE") {
			t.Fatal("the authorization header reached the record")
		}
		if strings.ContainsAny(string(b), "\n\r") {
			t.Fatal("a record spans lines")
		}
		var n int
		err = audit.Read(strings.NewReader(string(b)+"\n"), func(_ int, rec *audit.Record, err error) error {
			n++
			if err != nil {
				return err
			}
			back, err := rec.Request()
			if err != nil {
				return err
			}
			for name, v := range back.Headers {
				if !slices.Contains(audit.RecordedHeaders, name) {
					t.Fatalf("header %q recorded", name)
				}
				if req.Headers[name] != v && utf8Valid(req.Headers[name]) {
					t.Fatalf("header %q = %q, want %q", name, v, req.Headers[name])
				}
			}
			if back.Peer != req.Peer || back.PrivateLink != req.PrivateLink {
				t.Fatalf("peer/link %v %v, want %v %v", back.Peer, back.PrivateLink, req.Peer, req.PrivateLink)
			}
			if utf8Valid(method) && utf8Valid(path) && (back.Method != method || back.Path != path) {
				t.Fatalf("request line %q %q, want %q %q", back.Method, back.Path, method, path)
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Fatalf("read back %d records: %v", n, err)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// The values a record echoes from the client — correlationId
// (x-ms-client-request-id), clientInfo (user-agent) and resultDescription
// (a message that may quote the path or the caller) — are sanitised: UTF-8,
// no control character, bounded. The request block keeps the raw values
// for replay; JSON escapes them.
func TestRecordEchoesAreSanitised(t *testing.T) {
	req := &authz.Request{Method: "GET", Path: "/secrets/a", Headers: map[string]string{
		"x-ms-client-request-id": "id\xff\r\n" + strings.Repeat("a", 2*authz.MaxEchoValue),
		"user-agent":             "agent\x00\x1b[31m\xc3",
	}}
	d := &authz.Decision{ID: "id", Time: time.Unix(1, 0), Vault: &authz.Vault{}, Request: req,
		Denial: &authz.Denial{Status: 403, Code: "Forbidden", Message: "line\r\nnext\x07\xfe" + strings.Repeat("m", 2*authz.MaxEchoMessage)}}
	d.Authz = authz.AuthzVerdict{Rule: "data.vaultwall.operator.deny[\x1b[2J]", Reason: "denied for \xff\x00"}
	r := audit.FromDecision(d, time.Millisecond)
	for name, v := range map[string]string{"correlationId": r.CorrelationID, "clientInfo": r.Properties.ClientInfo,
		"policyRule": r.Vaultwall.PolicyRule, "policyReason": r.Vaultwall.PolicyReason} {
		if v == "" || !utf8Valid(v) || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) || len(v) > authz.MaxEchoValue {
			t.Errorf("%s = %.80q (%d bytes): want UTF-8, no control character, at most %d bytes", name, v, len(v), authz.MaxEchoValue)
		}
	}
	desc := r.ResultDescription
	if !strings.HasPrefix(desc, "line\r\nnext\uFFFD\uFFFD") || len(desc) > authz.MaxEchoMessage {
		t.Errorf("resultDescription = %.80q (%d bytes): want CR LF kept, the rest sanitised, at most %d bytes", desc, len(desc), authz.MaxEchoMessage)
	}
	if got := r.Vaultwall.Request.Headers["x-ms-client-request-id"]; got != req.Headers["x-ms-client-request-id"] {
		t.Errorf("the request block lost the raw value replay needs: %.40q", got)
	}
}
