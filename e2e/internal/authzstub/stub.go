package authzstub

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
)

// Handler decides one check. Returning an error makes the RPC fail, which
// Envoy treats as "could not ask" (status_on_error / failure_mode_allow).
type Handler func(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error)

// Server is a running stub.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	addr    string
	handler Handler

	mu   sync.Mutex
	reqs []*authv3.CheckRequest
}

// Start serves h on a loopback port until the test ends.
func Start(tb testing.TB, h Handler) *Server {
	tb.Helper()
	return StartTLS(tb, h, nil)
}

// StartTLS is Start over TLS with cfg (plaintext when nil).
func StartTLS(tb testing.TB, h Handler, cfg *tls.Config) *Server {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("authzstub: listen: %v", err)
	}
	s := &Server{addr: lis.Addr().String(), handler: h}
	var opts []grpc.ServerOption
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	gs := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(gs, s)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	tb.Cleanup(func() { gs.Stop(); <-done })
	return s
}

// Addr is host:port of the gRPC listener.
func (s *Server) Addr() string { return s.addr }

// Requests are the CheckRequests received so far, oldest first.
func (s *Server) Requests() []*authv3.CheckRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*authv3.CheckRequest(nil), s.reqs...)
}

// Check implements envoy.service.auth.v3.Authorization.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, proto.Clone(req).(*authv3.CheckRequest))
	s.mu.Unlock()
	return s.handler(ctx, req)
}

// Allow answers OK with the given upstream header mutations.
func Allow(headers ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: headers}},
	}
}

// Deny answers with a non-zero status and a denied_response; httpStatus 0
// leaves the HTTP status unset (Envoy then answers 403).
func Deny(c code.Code, httpStatus int, body string, headers ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	d := &authv3.DeniedHttpResponse{Body: body, Headers: headers}
	if httpStatus > 0 {
		d.Status = &typev3.HttpStatus{Code: typev3.StatusCode(httpStatus)}
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(c)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

// Header builds a HeaderValueOption with an explicit append_action.
func Header(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: action,
	}
}

// Overwrite builds a header that replaces any existing value — what
// vaultwall always sends.
func Overwrite(key, value string) *corev3.HeaderValueOption {
	return Header(key, value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
}
