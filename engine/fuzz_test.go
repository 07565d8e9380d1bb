package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
)

// echoRule denies with a message that quotes a client header, so the
// fuzzer's bytes reach the refusal's body through an operator rule too.
const echoRule = `package vaultwall.operator

deny contains sprintf("refused request %s", [input.request.headers["x-ms-client-request-id"]]) if {
	startswith(input.request.headers["x-ms-client-request-id"], "deny")
}
`

// FuzzCheck drives the real pipeline (shipped policy, an operator rule
// that echoes a header, a real issuer) with any CheckRequest gRPC could
// deliver — string fields UTF-8, as grpc-go enforces before Check runs;
// encode_raw_headers' raw_value bytes anything — and asserts the answer is
// never an RPC error: it marshals, and is an allow (OK status, OkResponse)
// or a refusal (non-OK status, DeniedResponse with a 4xx/5xx), every echoed
// value sanitised. An allow needs the one valid token, or is the anonymous
// GET /healthstatus. Without the valid token a refusal is the 401 with the
// challenge, whatever else is wrong with the request: Key Vault answers 401
// before anything about the request's shape.
func FuzzCheck(f *testing.F) {
	is := authztest.NewIssuer(f)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	f.Cleanup(func() { keys.Close() })
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "echo.rego"), []byte(echoRule), 0o644); err != nil {
		f.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "vault.yaml"), []byte(liveConfig(is, dir)))
	if err != nil {
		f.Fatal(err)
	}
	rt, err := (&Builder{Keys: keys}).Build(f.Context(), cfg)
	if err != nil {
		f.Fatal(cfg.Annotate(err))
	}
	f.Cleanup(rt.Close)
	if err := rt.Authenticator.WaitReady(f.Context()); err != nil {
		f.Fatal(err)
	}
	srv := envoy.NewServer(nil, nil)
	srv.SetPipeline(rt.Pipeline)
	valid := is.Mint(is.Claims())

	f.Add("GET", "/secrets/db?api-version=7.5", true, "x-ms-client-request-id", []byte("\xff\xfe\r\n"), "", "203.0.113.9", uint8(1))
	f.Add("GET", "/secrets/db?api-version=7.5", true, "x-ms-client-request-id", []byte("deny\xc3"), "", "203.0.113.9", uint8(1))
	f.Add("GET", "/secrets/db", false, "x-ms-client-request-id", []byte("id"), "é\u2028", "192.0.2.1", uint8(0))
	f.Add("POST", "/keys/k//wrapkey", true, "x-http-method", []byte("DEL\xffETE"), "spiffe://x", "203.0.113.9", uint8(2))
	f.Add("GET", "/healthstatus", true, "user-agent", []byte{0, 1, 2, 0x7f, 0x80}, "", "", uint8(3))
	// Malformed and without a token: the 401, not the 400.
	f.Add("POST", "/secrets/db?api-version=7.5", false, "x-http-method", []byte("PUT"), "", "203.0.113.9", uint8(0))
	f.Add("GET", "/admin/users?api-version=7.5", false, "user-agent", []byte("curl"), "", "203.0.113.9", uint8(0))
	f.Add("GET", "/secrets/db?api-version=7_5", true, "x-http-method", []byte("DELETE"), "", "203.0.113.9", uint8(2))
	f.Fuzz(func(t *testing.T, method, path string, raw bool, name string, value []byte, principal, peer string, tok uint8) {
		authorization := ""
		switch tok % 4 {
		case 1:
			authorization = "Bearer " + valid
		case 2:
			authorization = "Bearer " + valid + string(value)
		case 3:
			authorization = string(value)
		}
		// HTTP strips a field value's surrounding whitespace (RFC 9110 OWS), and
		// so does the token stage: "Bearer <valid> " is the valid token; so is
		// one followed by a line break (the JWS parser ignores it, and Envoy
		// never forwards one).
		validToken := strings.TrimSpace(authorization) == "Bearer "+valid
		http := &authv3.AttributeContext_HttpRequest{Method: method, Path: path}
		if raw {
			http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":path", RawValue: []byte(path)}, {Key: ":method", RawValue: []byte(method)},
				{Key: "authorization", RawValue: []byte(authorization)},
				{Key: name, RawValue: value},
			}}
		} else {
			http.Headers = map[string]string{":path": path, ":method": method, "authorization": authorization, strings.ToLower(name): string(value)}
		}
		cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:  &authv3.AttributeContext_Peer{Address: envoyAddr(peer), Principal: principal},
			Request: &authv3.AttributeContext_Request{Http: http},
		}}
		if _, err := proto.Marshal(cr); err != nil {
			t.Skip("grpc-go refuses this request before Check runs:", err)
		}
		resp, err := srv.Check(t.Context(), cr)
		if err != nil {
			t.Fatalf("Check returned an error: %v", err)
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("the answer does not marshal, Envoy would get an RPC error: %v", err)
		}
		var headers []*corev3.HeaderValueOption
		switch st := resp.GetStatus().GetCode(); {
		case st == int32(code.Code_OK) && resp.GetOkResponse() != nil && resp.GetDeniedResponse() == nil:
			ok := resp.GetOkResponse()
			headers = append(append(headers, ok.GetHeaders()...), ok.GetResponseHeadersToAdd()...)
			cleanPath, _, _ := strings.Cut(path, "?")
			got := cr.GetAttributes().GetRequest().GetHttp()
			if !validToken && !(method == "GET" && cleanPath == "/healthstatus") {
				t.Fatalf("allowed without the valid token: %v", got)
			}
		case st != int32(code.Code_OK) && resp.GetDeniedResponse() != nil && resp.GetOkResponse() == nil:
			den := resp.GetDeniedResponse()
			if c := den.GetStatus().GetCode(); c < 400 || c > 599 {
				t.Fatalf("refusal with HTTP status %d", c)
			}
			if !validToken && !strings.EqualFold(name, "authorization") {
				challenged := false
				for _, h := range den.GetHeaders() {
					challenged = challenged || h.GetHeader().GetKey() == "www-authenticate"
				}
				if c := den.GetStatus().GetCode(); c != 401 || !challenged {
					t.Fatalf("without the valid token: HTTP %d (challenge %v), want the 401 first: %s", c, challenged, den.GetBody())
				}
			}
			if authz.SanitizeMessage(den.GetBody(), 2*authz.MaxEchoMessage) != den.GetBody() {
				t.Fatalf("refusal body not clean: %q", den.GetBody())
			}
			headers = den.GetHeaders()
		default:
			t.Fatalf("neither an allow nor a refusal: %v", resp)
		}
		for _, h := range headers {
			if v := h.GetHeader().GetValue(); authz.Sanitize(v, authz.MaxEchoValue) != v {
				t.Fatalf("header %s echoed unclean: %q", h.GetHeader().GetKey(), v)
			}
		}
		for k, v := range resp.GetDynamicMetadata().GetFields() {
			if s := v.GetStringValue(); authz.Sanitize(s, authz.MaxEchoValue) != s {
				t.Fatalf("metadata %s unclean: %q", k, s)
			}
		}
	})
}
