package shadow

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/vaultwall/vaultwall/authz"
)

// ErrNotRecorded is the authenticate stage's error when a request is
// decided again without a recorded authentication outcome (the original
// decision ended before authentication). The decision is then a
// fail-closed refusal that callers should treat as "could not replay".
var ErrNotRecorded = errors.New("no authentication outcome was recorded for this request")

// Recorded is an authenticate stage that answers with an outcome recorded
// earlier: a caller, a denial (401) or an error.
type Recorded struct {
	Caller *authz.Caller
	Denial *authz.Denial
	Err    error
}

var _ authz.Authenticator = Recorded{}

func (r Recorded) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	switch {
	case r.Caller != nil:
		return r.Caller, nil, nil
	case r.Denial != nil:
		return nil, r.Denial, nil
	case r.Err != nil:
		return nil, nil, r.Err
	}
	return nil, nil, ErrNotRecorded
}

// RecordedFrom is the authentication outcome of a decision.
func RecordedFrom(d *authz.Decision) Recorded {
	switch {
	case d.Caller != nil:
		return Recorded{Caller: d.Caller}
	case d.Stage == authz.StageAuthenticate && !d.Allowed && d.Err != nil:
		return Recorded{Err: d.Err}
	case d.Stage == authz.StageAuthenticate && !d.Allowed:
		return Recorded{Denial: d.Denial}
	}
	return Recorded{}
}

// Redecide decides req again with p at time at, untraced. A non-nil authn
// replaces p's authenticate stage. p is not changed.
func Redecide(ctx context.Context, p *authz.Pipeline, req *authz.Request, at time.Time, authn authz.Authenticator) *authz.Decision {
	q := *p
	q.Tracer = nil
	q.Now = func() time.Time { return at }
	if authn != nil {
		q.Authenticator = authn
	}
	return q.Decide(ctx, req)
}

// Outcome is what a decision answered, as far as comparing goes.
type Outcome struct {
	Allowed bool
	Stage   authz.Stage
	Status  int    // 200 when allowed
	Code    string // x-ms-error-code; "" when allowed
}

// OutcomeOf is the outcome of d.
func OutcomeOf(d *authz.Decision) Outcome {
	o := Outcome{Allowed: d.Allowed, Stage: d.Stage, Status: 200}
	if !d.Allowed {
		o.Status = 500
		if d.Denial != nil {
			o.Status, o.Code = d.Denial.Status, d.Denial.ErrorCode()
		}
	}
	return o
}

// String is "allow" or "<status> <code>".
func (o Outcome) String() string {
	if o.Allowed {
		return "allow"
	}
	return strconv.Itoa(o.Status) + " " + o.Code
}

// Kind classifies the difference between two outcomes.
type Kind uint8

const (
	Same       Kind = iota
	WouldDeny       // allowed before, refused now
	WouldAllow      // refused before, allowed now
	Changed         // refused both times, with another status or code
)

var kindNames = [...]string{"same", "would_deny", "would_allow", "changed"}

// Kinds are the kinds of difference (Same excluded), for metrics.
var Kinds = []Kind{WouldDeny, WouldAllow, Changed}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Compare classifies the change from before to after.
func Compare(before, after Outcome) Kind {
	switch {
	case before.Allowed && after.Allowed:
		return Same
	case before.Allowed:
		return WouldDeny
	case after.Allowed:
		return WouldAllow
	case before.Status != after.Status || before.Code != after.Code:
		return Changed
	}
	return Same
}

// DiffStage is the stage a difference is attributed to: the stage that
// refuses (the candidate's for would_deny and changed, the enforced one's
// for would_allow).
func DiffStage(k Kind, before, after Outcome) authz.Stage {
	if k == WouldAllow {
		return before.Stage
	}
	return after.Stage
}
