package envoy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
)

// stubStages decide by the path, so one pipeline covers every outcome.
type stubStages struct{}

func (stubStages) Classify(r *authz.Request) (authz.Operation, *authz.Denial) {
	if r.Path == "/bad" {
		return authz.Operation{}, &authz.Denial{Status: 400, Code: "BadParameter", Message: "bad path"}
	}
	return authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet"}, nil
}

func (stubStages) Authenticate(_ context.Context, r *authz.Request, _ *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	switch r.Header("authorization") {
	case "":
		return nil, &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}, nil
	case "Bearer panic":
		panic("token parser bug")
	}
	return &authz.Caller{ObjectID: "oid-1", TenantID: "tid-1", ApplicationID: "app-1"}, nil, nil
}

func (stubStages) Connect(r *authz.Request) authz.Connection {
	return authz.Connection{ClientAddr: r.Peer.Addr()}
}

func (stubStages) Evaluate(d *authz.Decision) authz.NetworkVerdict {
	v := d.Network
	v.Allowed = d.Network.ClientAddr == netip.MustParseAddr("127.0.0.1")
	if !v.Allowed {
		v.Code = "ForbiddenByFirewall"
	}
	return v
}

func (stubStages) Authorize(context.Context, *authz.Decision) (authz.AuthzVerdict, error) {
	return authz.AuthzVerdict{Allowed: true, Rule: "accessPolicies[0]"}, nil
}

func stubPipeline() *authz.Pipeline {
	s := stubStages{}
	return &authz.Pipeline{
		Vault:      authz.Vault{Name: "contoso", Location: "westeurope", Challenge: `Bearer authorization="https://login.example/t", resource="https://vault.azure.net"`},
		Classifier: s, Authenticator: s, Firewall: s, Policy: s,
	}
}

func checkRequest(peer, path, authorization string, extra map[string]string) *authv3.CheckRequest {
	h := map[string]string{":path": path, ":method": "GET"}
	if authorization != "" {
		h["authorization"] = authorization
	}
	for k, v := range extra {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:  &authv3.AttributeContext_Peer{Address: sockAddr(peer, 4000)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Headers: h}},
	}}
}

// serve starts the real gRPC server on a loopback socket.
func serve(t *testing.T, s *Server, o ServerOptions, dial ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if o.MaxRecvMsgBytes == 0 {
		o.MaxRecvMsgBytes = 1 << 20
	}
	g := NewGRPCServer(s, o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(lis.Addr().String(), dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestCheckOverGRPC(t *testing.T) {
	s := NewServer(nil, nil)
	cc := serve(t, s, ServerOptions{})
	client := authv3.NewAuthorizationClient(cc)
	hc := healthpb.NewHealthClient(cc)

	// Before any configuration: NOT_SERVING, and every check refused.
	if st := healthStatus(t, hc); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health before config = %v", st)
	}
	resp := check(t, client, checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil))
	if resp.GetStatus().GetCode() == int32(code.Code_OK) || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Fatalf("check before config = %v", resp)
	}

	s.SetPipeline(stubPipeline())
	if st := healthStatus(t, hc); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after config = %v", st)
	}

	t.Run("allow", func(t *testing.T) {
		resp := check(t, client, checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", map[string]string{
			"x-vaultwall-caller-oid": "forged", "x-vaultwall-trusted-service": "Backup"}))
		if resp.GetStatus().GetCode() != int32(code.Code_OK) {
			t.Fatalf("status = %v", resp.GetStatus())
		}
		ok := resp.GetOkResponse()
		set := map[string]string{}
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
				t.Errorf("header %s: append_action %v, append %v; want OVERWRITE_IF_EXISTS_OR_ADD only", h.GetHeader().GetKey(), h.GetAppendAction(), h.GetAppend())
			}
			set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if set[authz.HeaderCallerObjectID] != "oid-1" || set[authz.HeaderDecisionID] == "" {
			t.Errorf("upstream headers = %v", set)
		}
		if got := ok.GetHeadersToRemove(); len(got) != 1 || got[0] != "x-vaultwall-trusted-service" {
			t.Errorf("headers_to_remove = %v", got)
		}
		md := resp.GetDynamicMetadata().GetFields()
		if md[MDDecisionID].GetStringValue() != set[authz.HeaderDecisionID] || !md[MDAllowed].GetBoolValue() || md[MDPolicyRule].GetStringValue() != "accessPolicies[0]" {
			t.Errorf("dynamic metadata = %v", md)
		}
	})
	t.Run("401 carries the challenge", func(t *testing.T) {
		resp := check(t, client, checkRequest("127.0.0.1", "/secrets/a", "", nil))
		den := resp.GetDeniedResponse()
		if resp.GetStatus().GetCode() != int32(code.Code_UNAUTHENTICATED) || den.GetStatus().GetCode() != 401 {
			t.Fatalf("resp = %v", resp)
		}
		if got := deniedHeader(den, "www-authenticate"); !strings.HasPrefix(got, `Bearer authorization="https://login.example/t"`) {
			t.Errorf("www-authenticate = %q", got)
		}
		if !strings.Contains(den.GetBody(), "AKV10000") {
			t.Errorf("body = %s", den.GetBody())
		}
	})
	t.Run("firewall deny is an OK RPC with status", func(t *testing.T) {
		resp := check(t, client, checkRequest("192.0.2.1", "/secrets/a", "Bearer ok", nil))
		den := resp.GetDeniedResponse()
		if resp.GetStatus().GetCode() != int32(code.Code_PERMISSION_DENIED) || den.GetStatus().GetCode() != 403 {
			t.Fatalf("resp = %v", resp)
		}
		if deniedHeader(den, "x-ms-error-code") != "ForbiddenByFirewall" || deniedHeader(den, "content-type") != "application/json; charset=utf-8" {
			t.Errorf("headers = %v", den.GetHeaders())
		}
	})
	t.Run("panic in a stage is a deny, not an RPC error", func(t *testing.T) {
		resp := check(t, client, checkRequest("127.0.0.1", "/secrets/a", "Bearer panic", nil))
		if resp.GetStatus().GetCode() == int32(code.Code_OK) || resp.GetDeniedResponse().GetStatus().GetCode() != 500 {
			t.Fatalf("resp = %v", resp)
		}
	})
	t.Run("malformed request is refused", func(t *testing.T) {
		for _, cr := range []*authv3.CheckRequest{{}, checkRequest("not-an-ip", "/secrets/a", "Bearer ok", nil), checkRequest("127.0.0.1", "/bad", "Bearer ok", nil)} {
			resp := check(t, client, cr)
			if resp.GetStatus().GetCode() == int32(code.Code_OK) {
				t.Errorf("allowed %v", cr)
			}
		}
	})
	t.Run("oversized request", func(t *testing.T) {
		big := checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", map[string]string{"x-big": strings.Repeat("a", 2<<20)})
		_, err := client.Check(t.Context(), big)
		if err == nil {
			t.Fatal("a 2 MiB CheckRequest was accepted past maxRecvMsgBytes")
		}
	})
}

func TestMutualTLSListener(t *testing.T) {
	dir := t.TempDir()
	ca := authztest.NewTestCA(t)
	serverCert := ca.Issue(authztest.CertOptions{DNSNames: []string{"localhost"}, Server: true})
	clientCert := ca.Issue(authztest.CertOptions{Subject: pkix.Name{CommonName: "envoy"}})
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tc, err := config.ServerTLS{
		CertFile:     write("server.pem", serverCert.PEM()),
		KeyFile:      write("server.key", serverCert.KeyPEM()),
		ClientCAFile: write("ca.pem", ca.PEM()),
	}.Load("server.tls", tls.RequireAndVerifyClientCert)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerOptions{TLS: tc}

	s := NewServer(nil, nil)
	s.SetPipeline(stubPipeline())
	withCert := serve(t, s, cfg, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{clientCert.TLS()}})))
	resp := check(t, authv3.NewAuthorizationClient(withCert), checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil))
	if resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("mTLS client refused: %v", resp)
	}

	withoutCert := serve(t, s, cfg, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := authv3.NewAuthorizationClient(withoutCert).Check(ctx, checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil)); err == nil {
		t.Fatal("a client without a certificate reached Check on an mTLS listener")
	}
}

func check(t *testing.T, c authv3.AuthorizationClient, cr *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := c.Check(t.Context(), cr)
	if err != nil {
		t.Fatalf("Check returned an RPC error (Envoy would apply failure_mode_allow): %v", err)
	}
	return resp
}

func healthStatus(t *testing.T, hc healthpb.HealthClient) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: HealthService})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetStatus()
}

func deniedHeader(d *authv3.DeniedHttpResponse, name string) string {
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestCheckLogsFailedDecisions: a decision that failed closed is logged at
// ERROR under the id the client was given, with the cause; a refusal is a
// decision, not an error, and logs nothing.
func TestCheckLogsFailedDecisions(t *testing.T) {
	var buf bytes.Buffer
	s := NewServer(slog.New(slog.NewJSONHandler(&buf, nil)), nil)

	// Before any configuration: could not decide.
	resp, _ := s.Check(t.Context(), checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil))
	s.SetPipeline(stubPipeline())
	resp2, _ := s.Check(t.Context(), checkRequest("127.0.0.1", "/secrets/a", "Bearer panic", nil))
	// Decisions, not errors: no log line.
	_, _ = s.Check(t.Context(), checkRequest("192.0.2.1", "/secrets/a", "Bearer ok", nil))
	_, _ = s.Check(t.Context(), checkRequest("127.0.0.1", "/secrets/a", "", nil))
	_, _ = s.Check(t.Context(), checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil))

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per failed decision:\n%s", len(lines), buf.String())
	}
	for i, want := range []struct {
		resp  *authv3.CheckResponse
		stage string
		cause string
	}{
		{resp, "none", "no configuration is loaded yet"},
		{resp2, "authenticate", "panic"},
	} {
		l := lines[i]
		id := want.resp.GetDynamicMetadata().GetFields()[MDDecisionID].GetStringValue()
		if l["level"] != "ERROR" || l[MDDecisionID] != id || id == "" || !strings.Contains(want.resp.GetDeniedResponse().GetBody(), id) {
			t.Errorf("line %d %v: want level ERROR and the decision id %q the client got", i, l, id)
		}
		if l[MDStage] != want.stage || !strings.Contains(fmt.Sprint(l["error"]), want.cause) {
			t.Errorf("line %d %v: want stage %s and a cause mentioning %q", i, l, want.stage, want.cause)
		}
	}
}

type panickyObserver struct{}

func (panickyObserver) Observe(*authz.Decision, time.Duration) { panic("audit bug") }

// A bug in the observer (audit, metrics, shadow) must not take the check or
// the process down, nor change the answer.
func TestObserverPanicDoesNotChangeTheAnswer(t *testing.T) {
	s := NewServer(nil, panickyObserver{})
	s.SetPipeline(stubPipeline())
	client := authv3.NewAuthorizationClient(serve(t, s, ServerOptions{}))
	if resp := check(t, client, checkRequest("127.0.0.1", "/secrets/a", "Bearer ok", nil)); resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Errorf("allowed request answered %v", resp.GetStatus())
	}
	if resp := check(t, client, checkRequest("192.0.2.1", "/secrets/a", "Bearer ok", nil)); resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("firewall-denied request answered %v", resp)
	}
}

// rawHeaderRequest is what Envoy sends with encode_raw_headers: every
// header in header_map, its value as raw bytes.
func rawHeaderRequest(peer, path, authorization string, raw map[string][]byte) *authv3.CheckRequest {
	hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte(path)}, {Key: ":method", RawValue: []byte("GET")},
	}}
	if authorization != "" {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "authorization", RawValue: []byte(authorization)})
	}
	for k, v := range raw {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: v})
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:  &authv3.AttributeContext_Peer{Address: sockAddr(peer, 4000)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, HeaderMap: hm}},
	}}
}

// TestRawClientRequestIDStaysARefusal: an x-ms-client-request-id that is
// not UTF-8 (encode_raw_headers delivers raw bytes) is echoed sanitised, so
// the 401 and the 403 still marshal and reach Envoy as refusals, never as
// an RPC error that failure_mode_allow would turn into an allow.
func TestRawClientRequestIDStaysARefusal(t *testing.T) {
	s := NewServer(nil, nil)
	s.SetPipeline(stubPipeline())
	client := authv3.NewAuthorizationClient(serve(t, s, ServerOptions{}))
	long := bytes.Repeat([]byte("a"), 3*authz.MaxEchoValue)
	for _, c := range []struct {
		name, peer, authorization string
		id                        []byte
		status                    int32
	}{
		{"401 with invalid UTF-8", "127.0.0.1", "", []byte("\xff\xfe-id\xc3"), 401},
		{"403 with invalid UTF-8", "192.0.2.1", "Bearer ok", []byte("id-\x80\x81"), 403},
		{"401 with control characters", "127.0.0.1", "", []byte("id\r\nx-injected: 1\x00"), 401},
		{"401 with an oversized id", "127.0.0.1", "", long, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			cr := rawHeaderRequest(c.peer, "/secrets/a", c.authorization, map[string][]byte{"x-ms-client-request-id": c.id})
			direct, _ := s.Check(t.Context(), cr)
			if _, err := proto.Marshal(direct); err != nil {
				t.Fatalf("the refusal does not marshal (Envoy would see an RPC error): %v", err)
			}
			resp := check(t, client, cr)
			den := resp.GetDeniedResponse()
			if resp.GetStatus().GetCode() == int32(code.Code_OK) || den.GetStatus().GetCode() != typev3.StatusCode(c.status) {
				t.Fatalf("resp = %v, want a %d refusal", resp, c.status)
			}
			got := deniedHeader(den, "x-ms-client-request-id")
			if got == "" || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\x00") || len(got) > authz.MaxEchoValue {
				t.Errorf("x-ms-client-request-id echoed as %.120q (%d bytes): want UTF-8, no control character, at most %d bytes", got, len(got), authz.MaxEchoValue)
			}
		})
	}
}

// rawCodec sends bytes as they are, so a test can put on the wire what a
// Go client would refuse to marshal (Envoy's C++ client does send it).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type countingObserver struct{ n atomic.Int64 }

func (o *countingObserver) Observe(*authz.Decision, time.Duration) { o.n.Add(1) }

// TestGRPCRejectsBeforeCheck pins down the two requests grpc-go itself
// answers with an RPC error before Check runs (so vaultwall cannot turn
// them into a refusal, and only failure_mode_allow: false keeps them out):
// a string field that is not UTF-8 — with Envoy's default, a header value
// in attributes.request.http.headers — is INTERNAL, and a message over
// server.maxRecvMsgBytes is RESOURCE_EXHAUSTED. The same header as raw
// bytes in header_map (encode_raw_headers) reaches Check and is refused.
func TestGRPCRejectsBeforeCheck(t *testing.T) {
	obs := &countingObserver{}
	s := NewServer(nil, obs)
	s.SetPipeline(stubPipeline())
	cc := serve(t, s, ServerOptions{MaxRecvMsgBytes: 64 << 10})
	const method = "/envoy.service.auth.v3.Authorization/Check"
	send := func(cr *authv3.CheckRequest, placeholder, wire string) error {
		b, err := proto.Marshal(cr)
		if err != nil {
			t.Fatal(err)
		}
		if len(placeholder) != len(wire) || bytes.Count(b, []byte(placeholder)) != 1 {
			t.Fatalf("placeholder %q must occur once and keep its length", placeholder)
		}
		b = bytes.Replace(b, []byte(placeholder), []byte(wire), 1)
		var out []byte
		return cc.Invoke(t.Context(), method, &b, &out, grpc.ForceCodec(rawCodec{}))
	}

	cr := checkRequest("127.0.0.1", "/secrets/a", "", map[string]string{"x-ms-client-request-id": "PLACEHOLDER"})
	err := send(cr, "PLACEHOLDER", "id-\xff\xfe-bytes")
	t.Logf("headers value not UTF-8: %v", err)
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("headers value not UTF-8: err = %v, want INTERNAL (grpc-go: invalid UTF-8)", err)
	}
	big := checkRequest("127.0.0.1", "/secrets/a", "", map[string]string{"x-big": strings.Repeat("a", 128<<10)})
	_, err = authv3.NewAuthorizationClient(cc).Check(t.Context(), big)
	t.Logf("oversized: %v", err)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized request: err = %v, want RESOURCE_EXHAUSTED", err)
	}
	if n := obs.n.Load(); n != 0 {
		t.Fatalf("Check ran %d times for requests grpc-go should have refused", n)
	}

	raw := rawHeaderRequest("127.0.0.1", "/secrets/a", "", map[string][]byte{"x-ms-client-request-id": []byte("PLACEHOLDER")})
	if err := send(raw, "PLACEHOLDER", "id-\xff\xfe-bytes"); err != nil {
		t.Errorf("raw header bytes: err = %v, want the 401 refusal", err)
	}
	if n := obs.n.Load(); n != 1 {
		t.Errorf("Check ran %d times for the raw-bytes request, want 1", n)
	}
}
