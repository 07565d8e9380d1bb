package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// Replayer decides recorded requests with a candidate configuration.
type Replayer struct {
	cfg  *config.Config
	rt   *engine.Runtime
	keys *token.KeyStore
	// set holds every vault of a candidate with vaults.dir (Open): each
	// record is replayed by the vault of its resourceId.
	set *engine.Set
}

// Open builds the candidate configuration file at path, every vault of it
// when it sets vaults.dir, with policyDir replacing each vault's
// policy.dir when set.
func Open(ctx context.Context, path, policyDir string) (*Replayer, error) {
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: &http.Client{Transport: offline{}}})
	b := &engine.Builder{Keys: keys, PolicyDir: policyDir}
	set, err := engine.CompileSet(ctx, path, b.Build, nil)
	if err != nil {
		keys.Close()
		return nil, err
	}
	r := &Replayer{keys: keys, set: set, cfg: set.Main}
	if !set.Multi {
		r.rt = set.Runtimes[0]
		r.cfg = r.rt.Config
	}
	return r, nil
}

// runtimeFor is the candidate's vault for a record: the one vault, or the
// vault whose resource id the record names.
func (r *Replayer) runtimeFor(rec *audit.Record) (*engine.Runtime, error) {
	if r.rt != nil {
		return r.rt, nil
	}
	for _, rt := range r.set.Runtimes {
		if strings.EqualFold(rt.Config.Vault.ResourceID, rec.ResourceID) {
			return rt, nil
		}
	}
	return nil, fmt.Errorf("%w: no vault of the candidate is %s", ErrNotReplayable, rec.ResourceID)
}

// New builds the candidate cfg, with policyDir replacing its policy.dir
// when set. Issuers' keys are never fetched: replay does not verify tokens.
func New(ctx context.Context, cfg *config.Config, policyDir string) (*Replayer, error) {
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: &http.Client{Transport: offline{}}})
	b := &engine.Builder{Keys: keys, PolicyDir: policyDir}
	rt, err := b.Build(ctx, cfg)
	if err != nil {
		keys.Close()
		return nil, cfg.Annotate(err)
	}
	rt.Config = cfg
	return &Replayer{cfg: cfg, rt: rt, keys: keys}, nil
}

// Close releases the candidate.
func (r *Replayer) Close() {
	if r.set != nil {
		r.set.Close()
	} else {
		r.rt.Close()
	}
	r.keys.Close()
}

type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("replay never fetches issuer keys")
}

// ErrNotReplayable marks a record that cannot be decided again.
var ErrNotReplayable = errors.New("not replayable")

// Result is one record decided again.
type Result struct {
	DecisionID string
	Time       time.Time
	Operation  string
	Caller     string // "appid=…;oid=…", "" without a verified token
	Client     string
	Before     shadow.Outcome
	After      shadow.Outcome
	Kind       shadow.Kind
	// Rule and Message explain the candidate's answer.
	Rule    string
	Message string
}

// Replay decides the record's request again.
func (r *Replayer) Replay(ctx context.Context, rec *audit.Record) (Result, error) {
	x := &rec.Vaultwall
	res := Result{DecisionID: x.DecisionID, Time: time.Time(rec.Time), Operation: x.Operation, Client: rec.CallerIPAddress}
	req, err := rec.Request()
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrNotReplayable, err)
	}
	res.Before = before(rec)
	rt, err := r.runtimeFor(rec)
	if err != nil {
		return res, err
	}
	authn := recorded(rt, rec)
	if c := authn.Caller; c != nil {
		res.Caller = "appid=" + c.ApplicationID + ";oid=" + c.ObjectID
	}
	nd := shadow.Redecide(ctx, rt.Pipeline, req, res.Time, authn)
	if errors.Is(nd.Err, shadow.ErrNotRecorded) {
		return res, fmt.Errorf("%w: the original decision ended before authentication, the candidate's does not", ErrNotReplayable)
	}
	res.After = shadow.OutcomeOf(nd)
	res.Kind = shadow.Compare(res.Before, res.After)
	if res.Operation == "" {
		res.Operation = nd.Operation.Name
	}
	switch nd.Stage {
	case authz.StageFirewall:
		res.Rule = nd.Network.Rule
	case authz.StageAuthorize:
		res.Rule = nd.Authz.Rule
	}
	if nd.Denial != nil && !nd.Allowed {
		res.Message = nd.Denial.Message
	}
	return res, nil
}

// before is the recorded outcome.
func before(rec *audit.Record) shadow.Outcome {
	x := &rec.Vaultwall
	o := shadow.Outcome{Allowed: x.Allowed, Stage: parseStage(x.Stage), Status: rec.Properties.HTTPStatusCode}
	if !x.Allowed && x.Denial != nil {
		o.Status, o.Code = x.Denial.Status, x.Denial.InnerCode
		if o.Code == "" {
			o.Code = x.Denial.Code
		}
	}
	return o
}

// recorded is the authentication outcome to replay with on rt's vault.
func recorded(rt *engine.Runtime, rec *audit.Record) shadow.Recorded {
	x := &rec.Vaultwall
	if rec.Identity != nil && len(rec.Identity.Claim) > 0 {
		if den := token.RecheckClaims(rt.Config.Identity, rt.Pipeline.Vault, rec.Identity.Claim); den != nil {
			return shadow.Recorded{Denial: den}
		}
		return shadow.Recorded{Caller: token.CallerFromClaims(rec.Identity.Claim)}
	}
	if x.Allowed || parseStage(x.Stage) != authz.StageAuthenticate {
		return shadow.Recorded{}
	}
	if x.InternalError != "" {
		return shadow.Recorded{Err: errors.New(x.InternalError)}
	}
	den := &authz.Denial{Status: rec.Properties.HTTPStatusCode, Message: rec.ResultDescription}
	if x.Denial != nil {
		den.Status, den.Code, den.Inner = x.Denial.Status, x.Denial.Code, x.Denial.InnerCode
	}
	den.Challenge = den.Status == 401
	return shadow.Recorded{Denial: den}
}

func parseStage(s string) authz.Stage {
	for st := authz.StageNone; st <= authz.StageAuthorize; st++ {
		if st.String() == s {
			return st
		}
	}
	return authz.StageNone
}

// Report sums up a replay.
type Report struct {
	Total      int // records read
	Unchanged  int
	ByKind     map[shadow.Kind]int
	NotReplay  int // records that could not be decided again
	Malformed  int // lines that are not records
	Changes    []Result
	Problems   []string // the first problems, for the operator
	Transition map[string]int
}

const maxProblems = 20

func (rep *Report) problem(msg string) {
	if len(rep.Problems) < maxProblems {
		rep.Problems = append(rep.Problems, msg)
	}
}

// Changed is the number of records whose outcome changes.
func (rep *Report) Changed() int { return len(rep.Changes) }

// Run replays every record read from in (named name in messages) and adds
// them to rep.
func (r *Replayer) Run(ctx context.Context, name string, in io.Reader, rep *Report) error {
	if rep.ByKind == nil {
		rep.ByKind = map[shadow.Kind]int{}
		rep.Transition = map[string]int{}
	}
	return audit.Read(in, func(line int, rec *audit.Record, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			rep.Malformed++
			rep.problem(name + ": " + err.Error())
			return nil
		}
		rep.Total++
		res, err := r.Replay(ctx, rec)
		if err != nil {
			rep.NotReplay++
			rep.problem(fmt.Sprintf("%s:%d: decision %s: %v", name, line, rec.Vaultwall.DecisionID, err))
			return nil
		}
		if res.Kind == shadow.Same {
			rep.Unchanged++
			return nil
		}
		rep.ByKind[res.Kind]++
		rep.Transition[transition(res)]++
		rep.Changes = append(rep.Changes, res)
		return nil
	})
}

func transition(res Result) string {
	return describe(res.Before) + " → " + describe(res.After)
}

func describe(o shadow.Outcome) string {
	if o.Allowed {
		return "allow"
	}
	return o.String() + " (" + o.Stage.String() + ")"
}
