package envoy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/vaultwall/vaultwall/authz"
)

// HealthService is the name Envoy's grpc_health_check asks about.
const HealthService = "envoy.service.auth.v3.Authorization"

// Server answers Envoy's Check calls with the vaults in force: each request
// is decided by the pipeline of the vault its host names. A new
// configuration is swapped in atomically; in-flight checks finish on the
// pipeline they started with.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	vaults   atomic.Pointer[authz.Vaults]
	health   *health.Server
	gated    atomic.Bool // SetServing owns health
	observer authz.Observer
	log      *slog.Logger
}

// NewServer returns a server that refuses every check until a pipeline is
// set; its health service reports NOT_SERVING until then. obs, when not
// nil, sees every decision Check makes; Check waits for it.
func NewServer(log *slog.Logger, obs authz.Observer) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{health: health.NewServer(), observer: obs, log: log}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(HealthService, healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// SetVaults makes v the vaults for new checks and, unless SetServing has
// taken over health, reports SERVING.
func (s *Server) SetVaults(v *authz.Vaults) {
	s.vaults.Store(v)
	if !s.gated.Load() {
		s.setHealth(healthpb.HealthCheckResponse_SERVING)
	}
}

// SetPipeline serves p alone, for every host (authz.SingleVault).
func (s *Server) SetPipeline(p *authz.Pipeline) { s.SetVaults(authz.SingleVault(p)) }

// SetServing reports SERVING or NOT_SERVING under both health names, and
// from then on health is the caller's alone (the engine reports readiness:
// a pipeline and every readiness probe passing, as /readyz does).
func (s *Server) SetServing(serving bool) {
	s.gated.Store(true)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.setHealth(st)
}

func (s *Server) setHealth(st healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(HealthService, st)
}

// Vaults returns the vaults in force, nil before the first.
func (s *Server) Vaults() *authz.Vaults { return s.vaults.Load() }

// Shutdown reports NOT_SERVING so Envoy's health checks drain this replica.
func (s *Server) Shutdown() { s.health.Shutdown() }

// Register adds the ext_authz and health services to g.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// Check decides one request. It never returns an error: every failure is a
// refusal carried in an OK RPC, so Envoy's failure_mode_allow can never turn
// it into an allow.
func (s *Server) Check(ctx context.Context, cr *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	c := &checkBlock{}
	d := decideInto(ctx, s.vaults.Load(), cr, c)
	if d.Err != nil {
		// The client learns only that no decision was reached, and its id;
		// the cause is logged here, under that id.
		s.log.ErrorContext(ctx, "decision failed closed", MDDecisionID, d.ID, MDStage, d.Stage.String(), "error", d.Err)
	}
	resp := s.respond(d, &c.ok)
	if s.observer != nil {
		s.observe(ctx, d, time.Since(start))
	}
	return resp, nil
}

// respond builds the CheckResponse; a panic while doing so (grpc-go does
// not recover handlers, so it would end the process) becomes a refusal.
// An allowed response is built in ok, allocated with the check.
func (s *Server) respond(d *authz.Decision, ok *allowedBlock) (resp *authv3.CheckResponse) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("building the response panicked; refusing", MDDecisionID, d.ID, "panic", fmt.Sprint(r))
			resp = ResponseFrom(unavailable(fmt.Errorf("panic building the response: %v", r), d.Request).Response())
		}
	}()
	return responseInto(d.Response(), ok)
}

// observe hands the decision to the observer (audit, metrics, shadow); a
// bug there is logged, never allowed to take the check or the process down.
func (s *Server) observe(ctx context.Context, d *authz.Decision, elapsed time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "decision observer panicked", MDDecisionID, d.ID, "panic", fmt.Sprint(r))
		}
	}()
	s.observer.Observe(d, elapsed)
}

// Decide runs a CheckRequest through the vaults in force as Check does,
// without answering it (`vaultwall check`).
func (s *Server) Decide(ctx context.Context, cr *authv3.CheckRequest) *authz.Decision {
	return Decide(ctx, s.vaults.Load(), cr)
}

// Decide runs a CheckRequest through v under the guard Check runs it
// under, and is how anything else that decides a CheckRequest (the control
// plane's Explain, check) gets the very decision Check would make: it never
// panics and never returns nil. A CheckRequest whose translation panics,
// or no vaults (v nil), is a 503 refusal; a host no vault answers to is
// the 400 of authz.RefuseHost; a stage that panics or fails is the
// pipeline's 500 refusal; either way the decision's Err holds the cause.
func Decide(ctx context.Context, v *authz.Vaults, cr *authv3.CheckRequest) *authz.Decision {
	return decideInto(ctx, v, cr, &checkBlock{})
}

// checkBlock is what one Check allocates, in one block: the request, the
// decision and, when it allows, the CheckResponse. A refusal's response is
// allocated apart (see responseInto). The block lives as long as the
// longest-lived of its parts (an observer may keep the decision).
type checkBlock struct {
	req authz.Request
	d   authz.Decision
	ok  allowedBlock
}

// decideInto is Decide into a block the caller allocated.
func decideInto(ctx context.Context, v *authz.Vaults, cr *authv3.CheckRequest, c *checkBlock) (d *authz.Decision) {
	defer func() {
		if r := recover(); r != nil {
			// Translating the CheckRequest, or the pipeline before its
			// own guard (its clock), panicked.
			d = unavailable(fmt.Errorf("panic outside the pipeline's guard: %v\n%s", r, debug.Stack()), nil)
		}
	}()
	requestInto(cr, &c.req)
	if v == nil {
		return unavailable(errors.New("no configuration is loaded yet"), &c.req)
	}
	v.DecideInto(ctx, &c.d, &c.req)
	return &c.d
}

// unavailable is the refusal for checks that never reached a pipeline.
func unavailable(err error, req *authz.Request) *authz.Decision {
	id := authz.NewID()
	return &authz.Decision{
		ID: id, Time: time.Now(), Request: req, Err: err, Vault: &authz.Vault{},
		Denial: &authz.Denial{Status: 503, Code: "ServiceUnavailable", Inner: "AuthorizationUnavailable",
			Message: "vaultwall is not ready to decide, so the request is refused. Decision id: " + id},
	}
}

// ServerOptions configure the ext_authz listener.
type ServerOptions struct {
	// TLS, when set, secures the listener (and with ClientCAs, mTLS from
	// Envoy): config.ServerTLS.Load.
	TLS *tls.Config
	// Reflection registers gRPC server reflection.
	Reflection bool
	// MaxRecvMsgBytes bounds one CheckRequest.
	MaxRecvMsgBytes int
}

// GRPCServerOptions are the listener's options: message-size limit,
// keepalive policy that tolerates Envoy's HTTP/2 pings, and TLS or mTLS.
func GRPCServerOptions(o ServerOptions, extra ...grpc.ServerOption) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(o.MaxRecvMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	return append(opts, extra...)
}

// NewGRPCServer builds the gRPC server for s, with reflection when asked.
func NewGRPCServer(s *Server, o ServerOptions, extra ...grpc.ServerOption) *grpc.Server {
	g := grpc.NewServer(GRPCServerOptions(o, extra...)...)
	s.Register(g)
	if o.Reflection {
		reflection.Register(g)
	}
	return g
}
