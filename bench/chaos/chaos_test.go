package chaos_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
)

var (
	full      = flag.Bool("chaos.full", false, "the full run of `make chaos`: longer faults, a 10-minute soak, more unique tokens")
	hold      = flag.Duration("chaos.hold", 0, "how long each fault lasts (default 1s, 8s with -chaos.full)")
	settle    = flag.Duration("chaos.settle", 0, "how long the load goes on after a fault ends (default 2s, 8s with -chaos.full)")
	rate      = flag.Int("chaos.rate", 0, "requests per second during the fault matrix (default 120, 600 with -chaos.full)")
	soak      = flag.Duration("chaos.soak", 0, "soak duration at 70% of the measured capacity (default 3s, 10m with -chaos.full)")
	report    = flag.String("chaos.report", "", "also write the tables to this file")
	flood     = flag.Int("chaos.flood", 0, "unique tokens of the token flood (default 300, 5000 with -chaos.full)")
	maxGrowth = flag.Float64("chaos.maxgrowth", 5, "with -chaos.full: the most growth (%) of RSS, goroutines or fds after warm-up")
)

func orDefault[T comparable](v, smoke, long T) T {
	var zero T
	if v != zero {
		return v
	}
	if *full {
		return long
	}
	return smoke
}

const appOID = "6b0c3a2e-1f4d-4e5a-9b7c-2d8e9f0a1b2c"

// The operator rule that makes the operator-deny class: objects named
// forbidden-* are closed to everyone.
const operatorRule = `package vaultwall.operator

deny contains {"rule": "chaos-forbidden", "message": "Objects named forbidden-* are closed."} if {
	startswith(input.operation.object, "forbidden-")
}
`

// rig is the system under test and the load on it.
type rig struct {
	t         *testing.T
	dir       string
	cfgPath   string
	cfgBytes  []byte
	policyDir string
	issuer    *authztest.Issuer
	srv       *server
	conn      *grpc.ClientConn
	load      *loader
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, dir: t.TempDir(), issuer: authztest.NewIssuer(t)}
	r.policyDir = filepath.Join(r.dir, "policy")
	if err := os.MkdirAll(r.policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, filepath.Join(r.policyDir, "forbidden.rego"), []byte(operatorRule))

	iss := r.issuer.Config()
	cfg := &config.Config{
		Vault: config.Vault{Name: "contoso-vault", TenantID: authztest.DefaultTenantID, Location: "westeurope",
			SubscriptionID: "11111111-2222-3333-4444-555555555555", ResourceGroup: "vault-rg"},
		Properties: config.Properties{
			PublicNetworkAccess: "Enabled",
			NetworkAcls:         &config.NetworkAcls{DefaultAction: "Deny", Bypass: "AzureServices", IPRules: []config.IPRule{{Value: "203.0.113.0/24"}}},
			AccessPolicies: []authz.AccessPolicy{{TenantID: authztest.DefaultTenantID, ObjectID: appOID,
				Permissions: authz.Permissions{Secrets: []string{"get", "list"}}}},
		},
		Identity: config.Identity{
			Issuers: []config.Issuer{iss},
			// Refresh often, so that every issuer fault meets a refresh.
			Refresh: config.Refresh{Interval: config.Duration(time.Second), MinInterval: config.Duration(time.Second), Timeout: config.Duration(500 * time.Millisecond)},
		},
		Policy: config.Policy{Dir: r.policyDir, Timeout: config.Duration(5 * time.Second)},
		Server: config.Server{GRPCAddr: freePort(t), HTTPAddr: freePort(t), ShutdownGrace: config.Duration(5 * time.Second)},
		Log:    config.Log{Level: "info", Format: "json"},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.cfgPath, r.cfgBytes = filepath.Join(r.dir, "vault.yaml"), data
	writeAtomic(t, r.cfgPath, data)
	r.srv = newServer(t, r.cfgPath, cfg.Server.GRPCAddr, cfg.Server.HTTPAddr)

	// Reconnect fast after a restart, so recovery measures vaultwall and not
	// the client's backoff.
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	r.conn, err = grpc.NewClient(cfg.Server.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.conn.Close() })
	r.load = &loader{client: authv3.NewAuthorizationClient(r.conn)}
	r.load.tokens.Store(r.mintTokens(8, false))
	return r
}

// mintTokens signs n valid tokens for the app with the issuer's current key,
// and their forged twins.
func (r *rig) mintTokens(n int, unique bool) *tokens {
	tk := &tokens{unique: unique}
	for i := range n {
		c := r.issuer.Claims()
		c["oid"], c["sub"], c["jti"] = appOID, appOID, fmt.Sprintf("chaos-%d-%d", time.Now().UnixNano(), i)
		tok := r.issuer.Mint(c)
		tk.valid = append(tk.valid, tok)
		tk.forged = append(tk.forged, authztest.Tamper(tok))
	}
	return tk
}

func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fault is one row of the matrix: inject it, hold it, restore, settle.
type fault struct {
	name    string
	inject  func(r *rig) // the fault begins
	restore func(r *rig) // the fault ends
	// fromInject measures recovery from the injection: the fault is a
	// change (a key rotation) that the system must absorb while it lasts.
	fromInject bool
	// expectErrors: RPC errors are what this fault causes (the process is
	// down); elsewhere any RPC error is a finding.
	expectErrors bool
	// side runs beside the load while the fault holds and returns notes.
	side func(r *rig, ctx context.Context) []string
}

// row is one line of the table.
type row struct {
	name                       string
	requests, skipped          int
	wrongAllows, wrongRefusals int
	errors                     int
	recovered                  time.Duration
	recoveredOK                bool
	notes                      []string
	examples                   []string
}

func TestReliability(t *testing.T) {
	holdFor, settleFor := orDefault(*hold, time.Second, 8*time.Second), orDefault(*settle, 2*time.Second, 8*time.Second)
	rps, soakFor, floodN := orDefault(*rate, 120, 600), orDefault(*soak, 3*time.Second, 10*time.Minute), orDefault(*flood, 300, 5000)
	r := newRig(t)

	var sigAt time.Time
	faults := []fault{
		{name: "issuer answers 500", inject: func(r *rig) { r.issuer.SetFailure(authztest.Fail500) }, restore: func(r *rig) { r.issuer.SetFailure(authztest.Up) }},
		{name: "issuer closes connections", inject: func(r *rig) { r.issuer.SetFailure(authztest.FailClose) }, restore: func(r *rig) { r.issuer.SetFailure(authztest.Up) }},
		{name: "issuer hangs past the refresh timeout", inject: func(r *rig) { r.issuer.SetFailure(authztest.FailHang) }, restore: func(r *rig) { r.issuer.SetFailure(authztest.Up) }},
		{name: "issuer serves garbage", inject: func(r *rig) { r.issuer.SetFailure(authztest.FailGarbage) }, restore: func(r *rig) { r.issuer.SetFailure(authztest.Up) }},
		func() fault {
			var old string
			return fault{name: "signing key rotated (new kid)", fromInject: true,
				inject: func(r *rig) {
					old = r.issuer.Key().KID
					r.issuer.Rotate("RS256")
					r.load.tokens.Store(r.mintTokens(8, false))
				},
				restore: func(r *rig) { r.issuer.RemoveKey(old) }}
		}(),
		{name: "config replaced by an invalid file, restored",
			inject:  func(r *rig) { writeAtomic(r.t, r.cfgPath, []byte("vault: {name: [this is not a vault\n")) },
			restore: func(r *rig) { writeAtomic(r.t, r.cfgPath, r.cfgBytes) }},
		{name: "policy directory broken, restored",
			inject: func(r *rig) {
				writeAtomic(r.t, filepath.Join(r.policyDir, "broken.rego"), []byte("package vaultwall.operator\n\ndeny contains x if {\n"))
			},
			restore: func(r *rig) {
				if err := os.Remove(filepath.Join(r.policyDir, "broken.rego")); err != nil {
					r.t.Fatal(err)
				}
			}},
		{name: "SIGTERM under load, restart", expectErrors: true,
			inject:  func(r *rig) { sigAt = time.Now(); r.srv.stop(syscall.SIGTERM) },
			restore: func(r *rig) { r.srv.start() }},
		{name: "SIGKILL, restart", expectErrors: true,
			inject:  func(r *rig) { r.srv.stop(syscall.SIGKILL) },
			restore: func(r *rig) { r.srv.start() }},
		{name: "oversized, malformed and raw-byte messages", inject: func(*rig) {}, restore: func(*rig) {}, side: hostile},
		func() fault {
			var before *tokens
			return fault{name: fmt.Sprintf("flood of %d unique tokens", floodN),
				inject: func(r *rig) {
					before = r.load.tokens.Load()
					r.load.tokens.Store(r.mintTokens(floodN, true))
				},
				restore: func(r *rig) { r.load.tokens.Store(before) }}
		}(),
	}

	ctx, cancel := context.WithCancel(t.Context())
	loadDone := make(chan struct{})
	go func() { r.load.run(ctx, rps); close(loadDone) }()
	defer func() { cancel(); <-loadDone }()

	// A clean baseline first: any wrong answer here is a bug, not a fault.
	time.Sleep(settleFor)
	base, skipped := r.load.take()
	rows := []row{summarize("baseline (no fault)", base, skipped, time.Time{}, false)}

	for _, f := range faults {
		time.Sleep(200 * time.Millisecond)
		r.load.take() // only this fault's requests count
		f.inject(r)
		injectedAt := time.Now()
		var notes []string
		if f.side != nil {
			sctx, scancel := context.WithTimeout(ctx, holdFor)
			notes = f.side(r, sctx)
			scancel()
		}
		time.Sleep(time.Until(injectedAt.Add(holdFor)))
		f.restore(r)
		restoredAt := time.Now()
		if f.fromInject {
			restoredAt = injectedAt
		}
		time.Sleep(settleFor)
		results, skipped := r.load.take()
		rw := summarize(f.name, results, skipped, restoredAt, f.expectErrors)
		rw.notes = append(rw.notes, notes...)
		if f.name == "SIGTERM under load, restart" {
			lost := 0
			for _, res := range results {
				// Sent well before the signal: the server had it in flight.
				if res.outcome == rpcError && res.sent.Before(sigAt.Add(-100*time.Millisecond)) {
					lost++
				}
			}
			rw.notes = append(rw.notes, fmt.Sprintf("in-flight checks lost: %d", lost))
			if lost > 0 {
				t.Errorf("%s: %d checks in flight before SIGTERM got no answer", f.name, lost)
			}
		}
		rows = append(rows, rw)
	}
	cancel()
	<-loadDone
	rows = append(rows, etcdRow(t, r, holdFor, settleFor, rps))

	for _, rw := range rows {
		if rw.wrongAllows > 0 {
			t.Errorf("%s: %d wrong allows, e.g. %s", rw.name, rw.wrongAllows, strings.Join(rw.examples, "; "))
		}
		if !rw.recoveredOK {
			t.Errorf("%s: still answering wrongly at the end of the run, e.g. %s", rw.name, strings.Join(rw.examples, "; "))
		}
	}
	if base := rows[0]; base.wrongRefusals+base.errors > 0 {
		t.Errorf("baseline: %d wrong refusals and %d errors without any fault, e.g. %s", base.wrongRefusals, base.errors, strings.Join(base.examples, "; "))
	}

	soakRows := runSoak(t, r, soakFor)
	printTables(t, rows, soakRows, holdFor, settleFor, rps, soakFor)
}

// summarize turns a phase's results into its row. Recovery is the time from
// restoredAt to the last answer that was not right (0 when none came after).
func summarize(name string, results []result, skipped int, restoredAt time.Time, expectErrors bool) row {
	rw := row{name: name, requests: len(results), skipped: skipped, recoveredOK: true}
	var lastWrong time.Time
	for _, res := range results {
		switch res.outcome {
		case correct:
			continue
		case wrongAllow:
			rw.wrongAllows++
		case wrongRefuse:
			rw.wrongRefusals++
		case rpcError:
			rw.errors++
		}
		if len(rw.examples) < 3 {
			rw.examples = append(rw.examples, fmt.Sprintf("%s → %s", res.class, res.got))
		}
		if res.done.After(lastWrong) {
			lastWrong = res.done
		}
	}
	if !restoredAt.IsZero() && lastWrong.After(restoredAt) {
		rw.recovered = lastWrong.Sub(restoredAt)
	}
	// Right answers must fill the end of the phase: the last quarter of the
	// results holds no wrong one.
	if n := len(results); n > 0 && !lastWrong.IsZero() && !lastWrong.Before(results[n-n/4-1].sent) {
		rw.recoveredOK = false
	}
	if rw.errors > 0 && !expectErrors {
		rw.notes = append(rw.notes, "unexpected RPC errors")
	}
	if rw.wrongRefusals > 0 {
		rw.notes = append(rw.notes, "e.g. "+rw.examples[0])
	}
	return rw
}

// hostile sends, beside the load, what no well-behaved Envoy sends: a
// CheckRequest past maxRecvMsgBytes, bytes that are not a CheckRequest, and
// header values of raw bytes (invalid UTF-8, control characters) in
// header_map, as Envoy's encode_raw_headers delivers them. The first two are
// refused by grpc-go before vaultwall sees them; the last must be an
// ordinary refusal (here a 401: no token), never an RPC error.
func hostile(r *rig, ctx context.Context) []string {
	client := authv3.NewAuthorizationClient(r.conn)
	var oversized, malformed, rawRefused int
	var findings []string
	big := checkRequest(office, "GET", "/secrets/app-secret?api-version=7.5", "", nil)
	big.Attributes.Request.Http.Headers["x-padding"] = strings.Repeat("a", 2<<20)
	raw := []*corev3.HeaderValue{
		{Key: ":method", RawValue: []byte("GET")},
		{Key: ":path", RawValue: []byte("/secrets/app-secret?api-version=7.5")},
		{Key: ":authority", RawValue: []byte("contoso-vault.vault.azure.net")},
		{Key: "x-ms-client-request-id", RawValue: []byte("id-\xff\xfe\x00\x1b[31m\r\nx-injected: 1")},
		{Key: "user-agent", RawValue: []byte("\xc3\x28 agent \x7f")},
	}
	for ctx.Err() == nil {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := client.Check(c, big); status.Code(err) == codes.ResourceExhausted {
			oversized++
		} else {
			findings = append(findings, fmt.Sprintf("oversized: %v", err))
		}
		if err := sendRaw(c, r.conn, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}); status.Code(err) == codes.Internal {
			malformed++
		} else {
			findings = append(findings, fmt.Sprintf("malformed: %v", err))
		}
		resp, err := client.Check(c, checkRequest(office, "GET", "/secrets/app-secret?api-version=7.5", "", raw))
		switch v := verdictOf(resp); {
		case err != nil:
			findings = append(findings, fmt.Sprintf("raw-byte headers: RPC error %v", err))
		case v.allow:
			r.t.Errorf("raw-byte headers without a token were allowed")
		case v.status == 401:
			rawRefused++
		default:
			findings = append(findings, fmt.Sprintf("raw-byte headers: %s, want 401", v))
		}
		cancel()
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range findings[:min(len(findings), 3)] {
		r.t.Errorf("hostile messages: %s", f)
	}
	return []string{fmt.Sprintf("oversized → ResourceExhausted ×%d, malformed → Internal ×%d (grpc-go, before vaultwall); raw-byte headers → 401 ×%d", oversized, malformed, rawRefused)}
}

// soakRow is one resource's trend over the soak.
type soakRow struct {
	name        string
	first, last float64
	growthPct   float64
}

// runSoak measures capacity closed-loop, then holds 70% of it open-loop,
// sampling the process; growth is the fitted line's rise over the samples
// after the first fifth (warm-up), relative to its start.
func runSoak(t *testing.T, r *rig, d time.Duration) []soakRow {
	r.load.tokens.Store(r.mintTokens(64, false))
	cctx, ccancel := context.WithTimeout(t.Context(), max(d/20, time.Second))
	began := time.Now()
	r.load.closed(cctx, 8)
	ccancel()
	done, _ := r.load.take()
	capacity := float64(len(done)) / time.Since(began).Seconds()
	target := max(int(capacity*0.7), 10)
	t.Logf("soak: capacity %.0f checks/s (closed loop, 8 workers), soaking at %d/s for %v", capacity, target, d)

	ctx, cancel := context.WithCancel(t.Context())
	loadDone := make(chan struct{})
	go func() { r.load.run(ctx, target); close(loadDone) }()
	every := max(d/60, 500*time.Millisecond)
	var samples []sample
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(every) {
		s, err := r.srv.sample()
		if err != nil {
			t.Errorf("soak: sampling vaultwall: %v", err)
			break
		}
		samples = append(samples, s)
		// Keep memory bounded on long soaks: tally and drop the results.
		res, _ := r.load.take()
		for _, x := range res {
			if x.outcome == wrongAllow {
				t.Errorf("soak: wrong allow: %s → %s", x.class, x.got)
			}
		}
	}
	cancel()
	<-loadDone
	res, skipped := r.load.take()
	sum := summarize("soak", res, skipped, time.Time{}, false)
	if sum.wrongAllows > 0 || sum.wrongRefusals > 0 || sum.errors > 0 {
		t.Errorf("soak: %d wrong allows, %d wrong refusals, %d errors, e.g. %s", sum.wrongAllows, sum.wrongRefusals, sum.errors, strings.Join(sum.examples, "; "))
	}
	warm := samples[len(samples)/5:]
	rows := []soakRow{
		trend("RSS (MiB)", warm, func(s sample) float64 { return s.rssKiB / 1024 }),
		trend("goroutines", warm, func(s sample) float64 { return s.goroutines }),
		trend("open fds", warm, func(s sample) float64 { return s.fds }),
	}
	rows = append(rows, soakRow{name: fmt.Sprintf("capacity %.0f/s, soak at %d/s, %d samples", capacity, target, len(samples))})
	if *full {
		for _, sr := range rows[:3] {
			if sr.growthPct > *maxGrowth {
				t.Errorf("soak: %s grew %.1f%% after warm-up (at most %.0f%%)", sr.name, sr.growthPct, *maxGrowth)
			}
		}
	}
	return rows
}

func trend(name string, s []sample, f func(sample) float64) soakRow {
	if len(s) < 2 {
		return soakRow{name: name}
	}
	t0 := s[0].at
	var sx, sy, sxx, sxy float64
	for _, x := range s {
		dx, y := x.at.Sub(t0).Seconds(), f(x)
		sx, sy, sxx, sxy = sx+dx, sy+y, sxx+dx*dx, sxy+dx*y
	}
	n := float64(len(s))
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	icpt := (sy - slope*sx) / n
	span := s[len(s)-1].at.Sub(t0).Seconds()
	growth := 0.0
	if icpt > 0 {
		growth = slope * span / icpt * 100
	}
	if math.IsNaN(growth) {
		growth = 0
	}
	return soakRow{name: name, first: f(s[0]), last: f(s[len(s)-1]), growthPct: growth}
}

func printTables(t *testing.T, rows []row, soak []soakRow, holdFor, settleFor time.Duration, rps int, soakFor time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "vaultwall reliability: %d checks/s open loop, each fault held %v then %v of load (race detector: %v)\n\n", rps, holdFor, settleFor, raceEnabled)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\trequests\twrong allows\twrong refusals\terrors\trecovered in\tnotes")
	var total, allows int
	for _, rw := range rows {
		rec := "—"
		if rw.recovered > 0 {
			rec = rw.recovered.Round(time.Millisecond).String()
		}
		if !rw.recoveredOK {
			rec = "NOT RECOVERED"
		}
		notes := rw.notes
		if rw.skipped > 0 {
			notes = append(notes, fmt.Sprintf("%d ticks skipped (256 in flight)", rw.skipped))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", rw.name, rw.requests, rw.wrongAllows, rw.wrongRefusals, rw.errors, rec, strings.Join(notes, "; "))
		total += rw.requests
		allows += rw.wrongAllows
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t\t\t\t\n", total, allows)
	tw.Flush()
	fmt.Fprintf(&b, "\nsoak: %v\n\n", soakFor)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "resource\tafter warm-up\tend\tgrowth (fitted)")
	for _, s := range soak {
		if s.first == 0 && s.last == 0 {
			fmt.Fprintf(tw, "%s\t\t\t\n", s.name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%+.1f%%\n", s.name, s.first, s.last, s.growthPct)
	}
	tw.Flush()
	fmt.Print(b.String())
	if *report != "" {
		_ = os.MkdirAll(filepath.Dir(*report), 0o755)
		if err := os.WriteFile(*report, []byte(b.String()), 0o644); err != nil {
			t.Error(errors.Join(errors.New("writing the report"), err))
		}
	}
}
