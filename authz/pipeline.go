package authz

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

// Classifier maps a request to a Key Vault operation, or refuses it.
type Classifier interface {
	Classify(req *Request) (Operation, *Denial)
}

// Authenticator proves who is calling. It returns the caller, or a denial
// (a 401 with the challenge), or an error when it could not decide.
type Authenticator interface {
	Authenticate(ctx context.Context, req *Request, op *Operation) (*Caller, *Denial, error)
}

// TrustedServices recognises the platform services the vault trusts
// (bypass: AzureServices). It returns the catalog name of the service that
// presented the request, "" if none, and whether op lies in its scope.
type TrustedServices interface {
	Recognize(req *Request, caller *Caller, op *Operation) (name string, inScope bool)
}

// TrustedProblems is implemented by TrustedServices that can say why a
// client certificate naming a trusted service was not recognised as it (no
// clientAuth extended key usage, no chain to the CA), for explain, logs and
// audit. "" when there is nothing to say.
type TrustedProblems interface {
	Unrecognized(req *Request) string
}

// Firewall is the vault's network ACL. Connect places the request (client
// address, subnet, private endpoint) and runs before authentication, so
// every answer can carry it; Evaluate applies the rules in Key Vault's order.
type Firewall interface {
	Connect(req *Request) Connection
	Evaluate(d *Decision) NetworkVerdict
}

// Policy authorizes a data-plane operation for an authenticated caller that
// the firewall let through. An error means it could not decide.
type Policy interface {
	Authorize(ctx context.Context, d *Decision) (AuthzVerdict, error)
}

// Pipeline decides requests. Its fields are set once and never changed: a
// configuration change builds a new Pipeline.
type Pipeline struct {
	Vault         Vault
	Classifier    Classifier
	Authenticator Authenticator // nil: every request needing a token is refused
	Trusted       TrustedServices
	Firewall      Firewall
	Policy        Policy // nil: every data-plane request is refused after the firewall
	// Now is the decision clock; nil means time.Now.
	Now func() time.Time
	// Tracer, when set, is told when each stage starts and ends (spans).
	Tracer Tracer
}

// Tracer observes stages, e.g. as OpenTelemetry spans. Start returns the
// context the stage runs in and a function that ends the span.
type Tracer interface {
	StartStage(ctx context.Context, stage Stage) (context.Context, func(d *Decision))
}

// DecisionTracer is a Tracer that also sees the whole decision, e.g. to
// open a span for it that continues the trace its request carries.
// StartDecision runs before the first stage, with d holding the request,
// the id and the time; the stages run in the context it returns. The
// pipeline fills d as it goes: it is final once Decide or DecideInto has
// returned, and a DecisionTracer reads it only then.
type DecisionTracer interface {
	Tracer
	StartDecision(ctx context.Context, d *Decision) context.Context
}

// Observer sees every decision after it is made (audit log, metrics,
// shadow evaluation). It must not block: the adapter that made the
// decision waits for it.
type Observer interface {
	Observe(d *Decision, elapsed time.Duration)
}

// stage starts a traced stage; the returned func must be called when it ends.
func (p *Pipeline) stage(ctx context.Context, d *Decision, s Stage) (context.Context, func()) {
	d.Stage = s
	if p.Tracer == nil {
		return ctx, nop
	}
	ctx, end := p.Tracer.StartStage(ctx, s)
	return ctx, func() { end(d) }
}

func nop() {}

// Decide runs one request down the pipeline. It never returns nil and never
// panics: an error or a panic inside a stage becomes a fail-closed deny.
func (p *Pipeline) Decide(ctx context.Context, req *Request) *Decision {
	d := &Decision{}
	p.DecideInto(ctx, d, req)
	return d
}

// DecideInto is Decide into a Decision the caller allocated, so that an
// adapter can allocate it together with the request and the response: one
// allocation per check instead of three. d is overwritten, and must not be
// in use elsewhere while it is. A fresh d holds its id's bytes; a reused
// one keeps the bytes of the id it held (a string some log or audit record
// may still hold) and gets an id of its own.
func (p *Pipeline) DecideInto(ctx context.Context, d *Decision, req *Request) {
	reused := d.ID != ""
	*d = Decision{Vault: &p.Vault, Request: req, idBuf: d.idBuf}
	if reused {
		d.ID = NewID()
	} else {
		d.ID = d.newID()
	}
	if p.Now != nil {
		d.Time = p.Now()
	} else {
		d.Time = time.Now()
	}
	defer func() {
		if r := recover(); r != nil {
			d.failClosed(d.Stage, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	if t, ok := p.Tracer.(DecisionTracer); ok {
		ctx = t.StartDecision(ctx, d)
	}
	p.decide(ctx, d)
}

func (p *Pipeline) decide(ctx context.Context, d *Decision) {
	req := d.Request

	_, end := p.stage(ctx, d, StageClassify)
	if p.Classifier == nil {
		end()
		d.failClosed(StageClassify, errNoStage("classify"))
		return
	}
	op, refusal := p.Classifier.Classify(req)
	end()
	d.Operation = op
	d.ClassifyDenial = refusal
	if refusal == nil {
		if p.Firewall != nil {
			d.Network.Connection = p.Firewall.Connect(req)
		}
		if op.Anonymous {
			d.Allowed = true
			return
		}
	}

	// Key Vault answers 401 before anything about the request's shape: a
	// classifier's refusal is held while the token is checked, and answered
	// only to a caller who presented a valid one (keyvault-spec §3, §8).
	sctx, end := p.stage(ctx, d, StageAuthenticate)
	if p.Authenticator == nil {
		end()
		d.failClosed(StageAuthenticate, errNoStage("authenticate"))
		return
	}
	caller, deny, err := p.Authenticator.Authenticate(sctx, req, &d.Operation)
	end()
	if err != nil {
		d.failClosed(StageAuthenticate, err)
		return
	}
	if deny != nil {
		d.deny(deny)
		return
	}
	if caller == nil {
		d.failClosed(StageAuthenticate, fmt.Errorf("authenticator returned neither a caller nor a denial"))
		return
	}
	d.Caller = caller
	if refusal != nil {
		d.Stage = StageClassify
		d.deny(refusal)
		return
	}

	if op.Plane == PlaneData {
		_, end := p.stage(ctx, d, StageFirewall)
		if p.Firewall == nil {
			end()
			d.failClosed(StageFirewall, errNoStage("firewall"))
			return
		}
		if p.Trusted != nil {
			d.Network.TrustedService, d.Network.TrustedInScope = p.Trusted.Recognize(req, caller, &d.Operation)
			if tp, ok := p.Trusted.(TrustedProblems); ok && d.Network.TrustedService == "" {
				d.Network.TrustedProblem = tp.Unrecognized(req)
			}
		}
		d.Network = p.Firewall.Evaluate(d)
		d.Network.Evaluated = true
		end()
		if !d.Network.Allowed {
			d.deny(firewallDenial(d))
			return
		}
	}

	sctx, end = p.stage(ctx, d, StageAuthorize)
	defer end()
	if p.Policy == nil {
		d.deny(&Denial{
			Status: 403, Code: "Forbidden", Inner: CodeForbiddenByPolicy,
			Message: "No authorization policy is configured for this vault, so no data-plane operation is permitted.\r\n" +
				"Caller: " + caller.String() + "\r\nVault: " + d.Vault.Label(),
		})
		return
	}
	v, err := p.Policy.Authorize(sctx, d)
	if err != nil {
		d.failClosed(StageAuthorize, err)
		return
	}
	v.Evaluated = true
	d.Authz = v
	if !v.Allowed {
		d.deny(authorizeDenial(d))
		return
	}
	d.Allowed = true
}

func (d *Decision) deny(den *Denial) {
	d.Allowed = false
	d.Denial = den
}

// failClosed turns an internal error into a refusal. The error stays in the
// decision for logs; the client learns only that no decision was reached.
func (d *Decision) failClosed(stage Stage, err error) {
	d.Allowed = false
	d.Stage = stage
	d.Err = err
	d.Denial = &Denial{
		Status: 500, Code: "InternalServerError", Inner: "AuthorizationUnavailable",
		Message: "vaultwall could not reach a decision in its " + stage.String() +
			" stage, so the request is refused. Decision id: " + d.ID,
	}
}

type errNoStage string

func (e errNoStage) Error() string { return "no " + string(e) + " stage is configured" }

// Process-unique decision ids: a random 64-bit prefix and a counter, shaped
// like the GUIDs Key Vault uses for x-ms-request-id. Cheap enough for the
// hot path and unique across replicas with overwhelming probability.
var (
	idPrefix  [8]byte
	idCounter atomic.Uint64
)

func init() {
	if _, err := rand.Read(idPrefix[:]); err != nil {
		panic(err)
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	idCounter.Store(binary.BigEndian.Uint64(seed[:]))
}

// NewID returns a new decision id.
func NewID() string {
	var s [36]byte
	formatID(&s)
	return string(s[:])
}

// newID formats a new decision id into the decision's own buffer and
// returns it as a string over that buffer, saving an allocation per
// check: the buffer is written once, here, before the decision is shared,
// and never again, so the string is as immutable as any other.
func (d *Decision) newID() string {
	formatID(&d.idBuf)
	return unsafe.String(&d.idBuf[0], len(d.idBuf))
}

func formatID(s *[36]byte) {
	var b [16]byte
	copy(b[:8], idPrefix[:])
	binary.BigEndian.PutUint64(b[8:], idCounter.Add(1))
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
}
