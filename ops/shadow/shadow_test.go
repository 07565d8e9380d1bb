package shadow_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// candidateConfig moves the firewall's IP rule from 203.0.113.0/24 to
// 192.0.2.0/24.
func candidateConfig(r *opstest.Rig) string {
	return strings.Replace(r.Render(opstest.Config, ""), "203.0.113.0/24", "192.0.2.0/24", 1)
}

const denyLists = `package vaultwall.operator

deny contains "listing secrets is switched off" if input.operation.permission == "list"
`

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "shadow candidate decides differently" {
			out = append(out, m)
		}
	}
	return out
}

type collector struct {
	mu    sync.Mutex
	diffs []shadow.Difference
	seen  chan struct{}
}

func newCollector() *collector { return &collector{seen: make(chan struct{}, 1000)} }

func (c *collector) add(d shadow.Difference) {
	c.mu.Lock()
	c.diffs = append(c.diffs, d)
	c.mu.Unlock()
	c.seen <- struct{}{}
}

func (c *collector) wait(t *testing.T, n int) []shadow.Difference {
	t.Helper()
	for range n {
		select {
		case <-c.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d differences reported", len(c.diffs), n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]shadow.Difference(nil), c.diffs...)
}

type fanout []authz.Observer

func (f fanout) Observe(d *authz.Decision, e time.Duration) {
	for _, o := range f {
		o.Observe(d, e)
	}
}

// The candidate's differences are logged and counted; the enforced answers
// are exactly what they are without shadow mode.
func TestDifferencesLoggedEnforcementUnchanged(t *testing.T) {
	r := opstest.New(t)
	enforcedPath := r.WriteConfig("vault.yaml", "")
	candPath := r.Write("candidate.yaml", candidateConfig(r))
	r.Write("next/ops.rego", denyLists)
	rt := r.Runtime(enforcedPath)

	var logs logBuffer
	col := newCollector()
	var stats shadow.Stats
	ev := shadow.New(t.Context(), config.Shadow{Config: candPath, PolicyDir: r.Dir + "/next", QueueSize: 64, Workers: 2},
		enforcedPath, r.Builder, shadow.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Stats: &stats, OnDifference: col.add})
	defer ev.Close()
	ev.SetEnforced(engine.SetOf(rt))
	if ev.Engine().Current() == nil {
		t.Fatalf("candidate not loaded: %+v", ev.Engine().Status())
	}

	plain := r.Server(rt, nil)
	shadowed := r.Server(rt, ev)
	tok := r.Token()
	reqs := []struct {
		peer, method, path string
		kind               shadow.Kind
		stage              authz.Stage
		code               string
	}{
		{"203.0.113.10", "GET", "/secrets/db?api-version=7.5", shadow.WouldDeny, authz.StageFirewall, "ForbiddenByFirewall"},
		{"192.0.2.1", "GET", "/secrets/db?api-version=7.5", shadow.WouldAllow, authz.StageFirewall, ""},
		{"10.1.2.9", "GET", "/secrets?api-version=7.5", shadow.WouldDeny, authz.StageAuthorize, "ForbiddenByPolicy"},
		{"10.1.2.9", "GET", "/secrets/db?api-version=7.5", shadow.Same, 0, ""},
		{"192.0.2.1", "PUT", "/secrets/db?api-version=7.5", shadow.Changed, authz.StageAuthorize, "AccessDenied"},
	}
	want := map[string]shadow.Kind{}
	for _, q := range reqs {
		cr := opstest.Check(tok, q.peer, q.method, q.path)
		a, err := plain.Check(t.Context(), cr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := shadowed.Check(t.Context(), cr)
		if err != nil {
			t.Fatal(err)
		}
		if a.GetStatus().GetCode() != b.GetStatus().GetCode() || a.GetDeniedResponse().GetBody() != b.GetDeniedResponse().GetBody() {
			t.Fatalf("%s %s from %s: enforcement changed under shadow mode: %v vs %v", q.method, q.path, q.peer, a, b)
		}
		if q.kind != shadow.Same {
			want[q.method+" "+q.path+" "+q.peer] = q.kind
		}
	}
	diffs := col.wait(t, len(want))
	for _, d := range diffs {
		key := d.Enforced.Request.Method + " " + d.Enforced.Request.Path + " " + d.Enforced.Request.Peer.Addr().String()
		k, ok := want[key]
		if !ok || k != d.Kind {
			t.Errorf("%s: difference %v, want %v", key, d.Kind, k)
		}
		if d.Candidate.Caller != d.Enforced.Caller {
			t.Errorf("%s: the candidate verified the token again although the identity section is the same", key)
		}
	}
	ev.Close()
	if got := stats.Evaluated.Load(); got != uint64(len(reqs)) {
		t.Errorf("evaluated = %d, want %d", got, len(reqs))
	}
	for _, q := range reqs {
		if q.kind == shadow.Same {
			continue
		}
		if stats.Differences(q.kind, q.stage) == 0 {
			t.Errorf("no %v difference counted at %v", q.kind, q.stage)
		}
	}
	recs := logs.records(t)
	if len(recs) != len(want) {
		t.Fatalf("%d difference log records, want %d", len(recs), len(want))
	}
	for _, rec := range recs {
		if rec["kind"] == "would_deny" && rec["candidate"] == "403 ForbiddenByFirewall" {
			if rec["enforced"] != "allow" || rec["stage"] != "firewall" || rec["client"] != "203.0.113.10" ||
				!strings.Contains(rec["caller"].(string), "oid=11111111-1111-1111-1111-111111111111") {
				t.Errorf("would_deny record = %v", rec)
			}
		}
	}
	if strings.Contains(logs.b.String(), tok[len(tok)-20:]) {
		t.Fatal("a token reached the shadow log")
	}
}

// A candidate with another identity section verifies the token itself: a
// changed audience is a would-deny at authentication.
func TestCandidateWithOtherIdentityVerifiesTokens(t *testing.T) {
	r := opstest.New(t)
	enforcedPath := r.WriteConfig("vault.yaml", "")
	cand := strings.Replace(r.Render(opstest.Config, ""), "discovery: true}", "discovery: true, audiences: [\"https://vault.example.test\"]}", 1)
	candPath := r.Write("candidate.yaml", cand)
	rt := r.Runtime(enforcedPath)
	col := newCollector()
	ev := shadow.New(t.Context(), config.Shadow{Config: candPath, QueueSize: 8, Workers: 1}, enforcedPath, r.Builder,
		shadow.Options{OnDifference: col.add})
	defer ev.Close()
	ev.SetEnforced(engine.SetOf(rt))
	srv := r.Server(rt, ev)
	resp, err := srv.Check(t.Context(), opstest.Check(r.Token(), "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
	if err != nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("enforced: %v %v", resp, err)
	}
	d := col.wait(t, 1)[0]
	if d.Kind != shadow.WouldDeny || d.Stage != authz.StageAuthenticate || !strings.Contains(d.Candidate.Denial.Message, "AKV10022") {
		t.Fatalf("difference = %v at %v: %+v", d.Kind, d.Stage, d.Candidate.Denial)
	}
}

// A changed candidate file is picked up like the main configuration.
func TestCandidateReloads(t *testing.T) {
	r := opstest.New(t)
	enforcedPath := r.WriteConfig("vault.yaml", "")
	candPath := r.WriteConfig("candidate.yaml", "")
	rt := r.Runtime(enforcedPath)
	col := newCollector()
	ev := shadow.New(t.Context(), config.Shadow{Config: candPath, QueueSize: 8, Workers: 1}, enforcedPath, r.Builder,
		shadow.Options{OnDifference: col.add, Poll: 50 * time.Millisecond})
	defer ev.Close()
	ev.SetEnforced(engine.SetOf(rt))
	tok := r.Token()
	cr := opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5")
	if nd := ev.Evaluate(t.Context(), r.Server(rt, nil).Decide(t.Context(), cr)); nd == nil || !nd.Allowed {
		t.Fatalf("identical candidate: %+v", nd)
	}
	r.Write("candidate.yaml", candidateConfig(r))
	deadline := time.Now().Add(10 * time.Second)
	for ev.Engine().Status().Generation < 2 {
		if time.Now().After(deadline) {
			t.Fatal("candidate change not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nd := ev.Evaluate(t.Context(), r.Server(rt, nil).Decide(t.Context(), cr))
	if nd == nil || nd.Allowed || nd.Denial.Inner != "ForbiddenByFirewall" {
		t.Fatalf("reloaded candidate: %+v", nd)
	}
	if d := col.wait(t, 1)[0]; d.Kind != shadow.WouldDeny || d.Generation != 2 {
		t.Fatalf("difference %v from generation %d", d.Kind, d.Generation)
	}
}

// Observe never blocks: with the only worker held inside an evaluation and
// a queue of one, a burst fills the queue with one decision and drops and
// counts every other — asserted by counting events, not by timing, so it
// holds under -race on a busy machine. (The generous timeout only turns a
// regression, an Observe that waits for the worker, into a failure rather
// than a hung test.)
func TestBoundedQueue(t *testing.T) {
	r := opstest.New(t)
	enforcedPath := r.WriteConfig("vault.yaml", "")
	rt := r.Runtime(enforcedPath)
	r.Write("next/ops.rego", denyLists)
	var stats shadow.Stats
	held, release := make(chan struct{}, 1), make(chan struct{})
	ev := shadow.New(t.Context(), config.Shadow{PolicyDir: r.Dir + "/next", QueueSize: 1, Workers: 1}, enforcedPath, r.Builder,
		shadow.Options{Stats: &stats, OnDifference: func(shadow.Difference) {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}})
	ev.SetEnforced(engine.SetOf(rt))
	d := r.Server(rt, nil).Decide(t.Context(), opstest.Check(r.Token(), "203.0.113.10", "GET", "/secrets?api-version=7.5"))
	ev.Observe(d, 0)
	select {
	case <-held: // the worker is inside its first evaluation, and stays there
	case <-time.After(30 * time.Second):
		t.Fatal("the worker never evaluated the first decision")
	}
	const n = 5000
	burst := make(chan struct{})
	go func() {
		for range n {
			ev.Observe(d, 0)
		}
		close(burst)
	}()
	select {
	case <-burst:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("Observe blocked while the worker was busy")
	}
	if drop := stats.Dropped.Load(); drop != n-1 {
		t.Errorf("dropped %d of a burst of %d behind a busy worker and a queue of one, want %d", drop, n, n-1)
	}
	close(release)
	ev.Close()
	ev.Observe(d, 0) // after Close: counted, never a panic
	eval, drop, skip := stats.Evaluated.Load(), stats.Dropped.Load(), stats.Skipped.Load()
	if eval+drop+skip != n+2 || eval < 1 || eval > 2 || skip != 0 {
		t.Fatalf("evaluated %d + dropped %d + skipped %d, want %d: 1 or 2 evaluated, the rest dropped", eval, drop, skip, n+2)
	}
	if stats.Differences(shadow.WouldDeny, authz.StageAuthorize) != eval {
		t.Fatalf("%d would-deny differences for %d evaluations", stats.Differences(shadow.WouldDeny, authz.StageAuthorize), eval)
	}
}

func TestSampleRate(t *testing.T) {
	r := opstest.New(t)
	enforcedPath := r.WriteConfig("vault.yaml", "")
	rt := r.Runtime(enforcedPath)
	d := r.Server(rt, nil).Decide(t.Context(), opstest.Check("", "203.0.113.10", "GET", "/secrets?api-version=7.5"))
	for _, rate := range []float64{0, 0.25} {
		var stats shadow.Stats
		ev := shadow.New(t.Context(), config.Shadow{PolicyDir: r.Dir, SampleRate: &rate, QueueSize: 100000, Workers: 1},
			enforcedPath, r.Builder, shadow.Options{Stats: &stats})
		ev.SetEnforced(engine.SetOf(rt))
		for range 4000 {
			ev.Observe(d, 0)
		}
		ev.Close()
		got := stats.Evaluated.Load() + stats.Dropped.Load()
		if rate == 0 && got != 0 || rate > 0 && (got < 800 || got > 1200) {
			t.Errorf("rate %v: %d of 4000 sampled", rate, got)
		}
	}
}

func TestCompare(t *testing.T) {
	allow := shadow.Outcome{Allowed: true, Status: 200, Stage: authz.StageAuthorize}
	fw := shadow.Outcome{Status: 403, Code: "ForbiddenByFirewall", Stage: authz.StageFirewall}
	ap := shadow.Outcome{Status: 403, Code: "AccessDenied", Stage: authz.StageAuthorize}
	cases := []struct {
		a, b  shadow.Outcome
		want  shadow.Kind
		stage authz.Stage
	}{
		{allow, allow, shadow.Same, 0},
		{fw, fw, shadow.Same, 0},
		{allow, fw, shadow.WouldDeny, authz.StageFirewall},
		{fw, allow, shadow.WouldAllow, authz.StageFirewall},
		{fw, ap, shadow.Changed, authz.StageAuthorize},
	}
	for _, c := range cases {
		k := shadow.Compare(c.a, c.b)
		if k != c.want || (k != shadow.Same && shadow.DiffStage(k, c.a, c.b) != c.stage) {
			t.Errorf("%v → %v: %v at %v", c.a, c.b, k, shadow.DiffStage(k, c.a, c.b))
		}
	}
}

// Redecide with a recorded outcome never verifies a token and never allows
// what the recorded 401 refused.
func TestRecordedAuthentication(t *testing.T) {
	r := opstest.New(t)
	rt := r.Runtime(r.WriteConfig("vault.yaml", ""))
	srv := r.Server(rt, nil)
	d := srv.Decide(t.Context(), opstest.Check("", "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
	nd := shadow.Redecide(t.Context(), rt.Pipeline, d.Request, d.Time, shadow.RecordedFrom(d))
	if nd.Allowed || nd.Denial.Status != 401 || nd.Denial.Message != d.Denial.Message {
		t.Fatalf("recorded 401 replayed as %+v", nd.Denial)
	}
	// A classify refusal records nothing; a request reaching authentication
	// with nothing recorded fails closed.
	nd = shadow.Redecide(t.Context(), rt.Pipeline, d.Request, d.Time, shadow.Recorded{})
	if nd.Allowed || nd.Denial.Status != 500 {
		t.Fatalf("no recorded outcome: %+v", nd)
	}
}
