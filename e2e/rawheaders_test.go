package e2e_test

import (
	"net/http"
	"testing"

	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestEncodeRawHeaders runs vaultwall behind envoy.yaml with the ext_authz
// filter's encode_raw_headers turned on — the one change — so that the
// request headers reach vaultwall as http.header_map (one entry per field,
// raw bytes, unmerged) instead of the http.headers map that the shipped
// files and Istio send. vaultwall decides the same either way: the
// firewall, the challenge, the access policy, X-HTTP-METHOD, identity
// headers upstream with every forged one removed, repeated fields, and
// header values that are not UTF-8.
func TestEncodeRawHeaders(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "rawheaders", front.Variant(t, front.EnvoyL4, front.WithEncodeRawHeaders...), nil)
	if !s.opts.EncodeRawHeaders {
		t.Fatal("the variant does not turn encode_raw_headers on")
	}
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	inside, outside := addr("203.0.113.10"), addr("8.8.8.8")
	allowed := upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10", networkInfo: networkInfo("203.0.113.10")}

	for _, http1 := range []bool{false, true} {
		s.do(t, req{path: get, from: inside, as: &app, http1: http1}).wantAllowed(t, 200, allowed)
		s.do(t, req{path: get, from: outside, as: &app, http1: http1}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))
		s.do(t, req{path: get, from: inside, http1: http1}).
			wantChallenge(t, "AKV10000: Request is missing a Bearer or PoP token.")
	}
	s.do(t, req{path: get, from: inside, as: &nobody}).
		wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(nobody, "secrets", "get"))
	s.do(t, req{method: "POST", path: get, from: inside, as: &app, header: http.Header{"X-Http-Method": {"DELETE"}}}).
		wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(app, "secrets", "delete"))

	// Repeated fields arrive as separate header_map entries (or one, joined
	// by Envoy's codec): a repeated forged identity header is removed all
	// the same, over HTTP/1.1 where each value is its own header line.
	s.do(t, req{path: get, from: inside, as: &app, http1: true, header: http.Header{
		"X-Vaultwall-Caller-Oid": {"forged-1", "forged-2"},
		"Accept":                 {"application/json", "text/plain"},
	}}).wantAllowed(t, 200, allowed)

	// A value that is not UTF-8 arrives as raw bytes (the headers map would
	// carry "caf! !"): vaultwall still decides, allow and refusal alike.
	odd := http.Header{"X-Ms-Note": {"caf\xe9 \xff"}}
	s.do(t, req{path: get, from: inside, as: &app, header: odd}).wantAllowed(t, 200, allowed)
	s.do(t, req{path: get, from: outside, as: &app, header: odd}).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))
	// A client request id that is not UTF-8 reaches vaultwall raw, and
	// Key Vault echoes it on refusals. vaultwall sanitises every echoed
	// value, so the answer is Key Vault's 403 — not the front's
	// status_on_error, which an unencodable echo (protobuf strings are
	// UTF-8) used to cause — and the request never reaches the vault.
	r := s.do(t, req{path: get, from: outside, as: &app, clientRequestID: "id-\xe9\xff"})
	switch {
	case r.err != nil:
		t.Fatalf("%s: %v", r.desc, r.err)
	case r.upstream != nil:
		t.Errorf("%s: refused, yet the vault saw it", r.desc)
	case r.status != http.StatusForbidden:
		t.Errorf("%s: status %d, want Key Vault's 403 with the echo sanitised", r.desc, r.status)
	case r.header.Get("X-Ms-Error-Code") != "ForbiddenByFirewall":
		t.Errorf("%s: x-ms-error-code %q, want ForbiddenByFirewall", r.desc, r.header.Get("X-Ms-Error-Code"))
	}

	// A token with bytes that are not UTF-8 is no token vaultwall accepts.
	r = s.do(t, req{path: get, from: inside, token: "caf\xe9"})
	if r.status != 401 || r.header.Get("Www-Authenticate") != challenge || r.upstream != nil {
		t.Errorf("%s: status %d, WWW-Authenticate %q, reached the vault %v; want the 401 challenge", r.desc, r.status, r.header.Get("Www-Authenticate"), r.upstream != nil)
	}
}
