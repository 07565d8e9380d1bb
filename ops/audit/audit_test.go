package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/opstest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json")

// decide runs one CheckRequest through the real pipeline and returns the
// decision the observer saw.
func decide(t *testing.T, r *opstest.Rig, path string, cr *authv3.CheckRequest) *authz.Decision {
	t.Helper()
	obs := &opstest.Observer{}
	srv := r.Server(r.Runtime(path), obs)
	if _, err := srv.Check(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	return obs.Last()
}

// The record of an allow, a firewall deny, a 401 and a policy deny, field
// by field, against golden files (go test ./audit -update rewrites them).
func TestRecordGolden(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	tok := r.Token()
	cases := []struct {
		name string
		cr   *authv3.CheckRequest
	}{
		{"allow", opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db/0123456789abcdef0123456789abcdef?api-version=7.5")},
		{"allow-subnet", opstest.Check(tok, "10.1.2.7", "GET", "/secrets?api-version=7.5")},
		{"firewall-deny", opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5")},
		{"unauthorized", opstest.Check("", "203.0.113.10", "GET", "/secrets/db?api-version=7.5")},
		{"policy-deny", opstest.Check(tok, "203.0.113.10", "PUT", "/secrets/db?api-version=7.5")},
		{"bad-request", opstest.Check(tok, "203.0.113.10", "GET", "/nosuch?api-version=7.5")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, r, path, tc.cr)
			rec := audit.FromDecision(d, 1234*time.Microsecond)
			got, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = bytes.ReplaceAll(got, []byte(d.ID), []byte("DECISION-ID"))
			got = bytes.ReplaceAll(got, []byte(r.Issuer.Issuer()), []byte("{{.Issuer}}"))
			got = append(got, '\n')
			file := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("record differs from %s:\n%s", file, got)
			}
		})
	}
}

// The fields that matter, asserted directly so a golden update cannot hide
// a regression in them.
func TestRecordFields(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	tok := r.Token()
	allow := audit.FromDecision(decide(t, r, path, opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5")), 2*time.Millisecond)
	fw := audit.FromDecision(decide(t, r, path, opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5")), 0)
	unauth := audit.FromDecision(decide(t, r, path, opstest.Check("", "203.0.113.10", "GET", "/secrets/db?api-version=7.5")), 0)
	pol := audit.FromDecision(decide(t, r, path, opstest.Check(tok, "203.0.113.10", "DELETE", "/secrets/db?api-version=7.5")), 0)

	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	resID := "/SUBSCRIPTIONS/11111111-0000-0000-0000-000000000000/RESOURCEGROUPS/KV-RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/CONTOSO-VAULT"
	for _, rec := range []*audit.Record{allow, fw, unauth, pol} {
		check("resourceId", rec.ResourceID, resID)
		check("category", rec.Category, "AuditEvent")
		check("resultType", rec.ResultType, "Success")
		check("operationVersion", rec.OperationVersion, "7.5")
		check("correlationId", rec.CorrelationID, "6f1c3e52-0d8b-4e7e-9f0a-3c2d1b0a9e8f")
		check("clientInfo", rec.Properties.ClientInfo, "azsdk-go-azsecrets/v1.5.1 (go1.26; linux)")
		check("requestUri", rec.Properties.RequestURI, "https://contoso-vault.vault.azure.net"+rec.Vaultwall.Request.Path)
	}
	check("allow.operationName", allow.OperationName, "SecretGet")
	check("allow.resultSignature", allow.ResultSignature, "OK")
	check("allow.httpStatusCode", allow.Properties.HTTPStatusCode, 200)
	check("allow.durationMs", allow.DurationMs, "2")
	check("allow.callerIpAddress", allow.CallerIPAddress, "203.0.113.10")
	check("allow.id", allow.Properties.ID, "https://contoso-vault.vault.azure.net/secrets/db")
	check("allow.isAccessPolicyMatch", *allow.Properties.IsAccessPolicyMatch, true)
	check("allow.isRbacAuthorized", allow.Properties.IsRbacAuthorized, (*bool)(nil))
	check("allow.addrAuthType", allow.Properties.AddrAuthType, "PublicIP")
	check("allow.isAddressAuthorized", *allow.Properties.IsAddressAuthorized, true)
	check("allow.trustedService", allow.Properties.TrustedService, (*string)(nil))
	check("allow.claims.oid", allow.Identity.Claim["oid"], "11111111-1111-1111-1111-111111111111")
	check("allow.claims.appid", allow.Identity.Claim["appid"], "22222222-2222-2222-2222-222222222222")
	check("allow.stage", allow.Vaultwall.Stage, "authorize")
	check("allow.networkRule", allow.Vaultwall.NetworkRule, "ipRules[0]=203.0.113.0/24")

	check("fw.resultSignature", fw.ResultSignature, "Forbidden")
	check("fw.httpStatusCode", fw.Properties.HTTPStatusCode, 403)
	check("fw.isAddressAuthorized", *fw.Properties.IsAddressAuthorized, false)
	check("fw.stage", fw.Vaultwall.Stage, "firewall")
	check("fw.denial", *fw.Vaultwall.Denial, audit.Denial{Status: 403, Code: "Forbidden", InnerCode: "ForbiddenByFirewall"})
	if !strings.HasPrefix(fw.ResultDescription, "Client address is not authorized and caller is not a trusted service.\r\nClient address: 192.0.2.1") {
		t.Errorf("fw.resultDescription = %q", fw.ResultDescription)
	}

	check("401.operationName", unauth.OperationName, "Authentication")
	check("401.operation", unauth.Vaultwall.Operation, "SecretGet")
	check("401.resultSignature", unauth.ResultSignature, "Unauthorized")
	check("401.resultDescription", unauth.ResultDescription, "AKV10000: Request is missing a Bearer or PoP token.")
	check("401.identity", unauth.Identity, (*audit.Identity)(nil))

	check("policy.operationName", pol.OperationName, "SecretDelete")
	check("policy.isAccessPolicyMatch", *pol.Properties.IsAccessPolicyMatch, false)
	check("policy.denial.innerCode", pol.Vaultwall.Denial.InnerCode, "AccessDenied")
	if !strings.Contains(pol.ResultDescription, "does not have secrets delete permission on key vault 'contoso-vault;location=westeurope'") {
		t.Errorf("policy.resultDescription = %q", pol.ResultDescription)
	}
}

func TestTimeHasSevenDigits(t *testing.T) {
	b, err := json.Marshal(audit.Time(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `"2026-01-02T02:04:05.1234567Z"` {
		t.Fatalf("time = %s", got)
	}
	var back audit.Time
	if err := json.Unmarshal(b, &back); err != nil || !time.Time(back).Equal(time.Date(2026, 1, 2, 2, 4, 5, 123456700, time.UTC)) {
		t.Fatalf("round trip = %v, %v", time.Time(back), err)
	}
}

func stdoutWriter(t *testing.T, out *authztest.Buffer, queue int) (*audit.Writer, *audit.Counters) {
	t.Helper()
	var c audit.Counters
	w, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkStdout, QueueSize: queue}, audit.Options{Counters: &c, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	return w, &c
}

// No record ever holds a token — valid, invalid, expired, for another
// audience — nor a cookie or another credential header.
func TestNoTokenInRecords(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	var out authztest.Buffer
	w, _ := stdoutWriter(t, &out, 64)
	srv := r.Server(r.Runtime(path), w)
	tokens := []string{
		r.Token(),
		r.TokenWith(func(c map[string]any) { c["aud"] = "https://management.azure.com/" }),
		r.TokenWith(func(c map[string]any) { c["exp"] = opstest.Now.Add(-time.Hour).Unix() }),
		r.TokenWith(func(c map[string]any) { c["tid"] = "00000000-0000-0000-0000-0000000000ff" }),
		r.Token()[:40] + "garbage",
	}
	for _, tok := range tokens {
		for _, peer := range []string{"203.0.113.10", "192.0.2.1"} {
			for _, m := range []string{"GET", "PUT"} {
				if _, err := srv.Check(t.Context(), opstest.Check(tok, peer, m, "/secrets/db?api-version=7.5")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	log := out.String()
	if n := strings.Count(log, "\n"); n != len(tokens)*4 {
		t.Fatalf("%d records, want %d", n, len(tokens)*4)
	}
	for _, tok := range tokens {
		parts := strings.Split(tok, ".")
		for _, p := range append(parts, tok) {
			if len(p) > 12 && strings.Contains(log, p) {
				t.Fatalf("a token (or its part %q) is in the audit log", p)
			}
		}
	}
	for _, secret := range []string{"do-not-record", "authorization", "Bearer ey", "cookie"} {
		if strings.Contains(log, secret) {
			t.Fatalf("%q is in the audit log", secret)
		}
	}
	if !strings.Contains(log, `"oid":"11111111-1111-1111-1111-111111111111"`) {
		t.Fatal("the verified claims are not recorded")
	}
}

// blockingWriter blocks every write until released.
type blockingWriter struct {
	release chan struct{}
	n       int
	mu      sync.Mutex
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	b.n += bytes.Count(p, []byte("\n"))
	b.mu.Unlock()
	return len(p), nil
}

// With the sink stuck and the queue full, Observe returns at once and
// counts the drop; every decision is either written or counted.
func TestFullQueueDropsAndNeverBlocks(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	var c audit.Counters
	w, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkStdout, QueueSize: 4}, audit.Options{Counters: &c, Stdout: sink})
	if err != nil {
		t.Fatal(err)
	}
	d := &authz.Decision{ID: "d", Time: opstest.Now, Vault: &authz.Vault{}, Allowed: true, Request: &authz.Request{Method: "GET", Path: "/secrets"}}
	const n = 10000
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		for range n {
			w.Observe(d, time.Microsecond)
		}
		done <- time.Since(start)
	}()
	select {
	case took := <-done:
		t.Logf("%d Observe calls against a stuck sink took %v", n, took)
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked on a stuck sink")
	}
	if got := c.Dropped.Load(); got < n-9 {
		t.Fatalf("dropped = %d, want at least %d (queue 4, a batch of 5 in hand)", got, n-9)
	}
	close(sink.release)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.Written.Load() + c.Dropped.Load(); got != n {
		t.Fatalf("written %d + dropped %d = %d, want %d", c.Written.Load(), c.Dropped.Load(), got, n)
	}
	if sink.n != int(c.Written.Load()) {
		t.Fatalf("sink got %d records, written = %d", sink.n, c.Written.Load())
	}
	// After Close, Observe still returns and counts.
	w.Observe(d, 0)
	if c.Dropped.Load()+c.Written.Load() != n+1 {
		t.Fatal("Observe after Close was not counted")
	}
}

// Close gives up at its deadline when the sink is stuck, and counts what
// it could not write.
func TestCloseHonoursDeadline(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	var c audit.Counters
	w, _ := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkStdout, QueueSize: 8}, audit.Options{Counters: &c, Stdout: sink})
	d := &authz.Decision{ID: "d", Time: opstest.Now, Vault: &authz.Vault{}, Allowed: true}
	for range 5 {
		w.Observe(d, 0)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Close(ctx) }()
	time.Sleep(100 * time.Millisecond)
	close(sink.release) // the record in hand completes; Close returns
	if err := <-errc; err == nil {
		t.Fatal("Close reported success past its deadline")
	}
	if c.Written.Load()+c.Dropped.Load() != 5 {
		t.Fatalf("written %d + dropped %d != 5", c.Written.Load(), c.Dropped.Load())
	}
}

// The file sink rotates by size and every line is a record.
func TestFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "logs", "audit.json")
	var c audit.Counters
	w, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkFile, Path: p, MaxSizeMB: 1, MaxBackups: 2, QueueSize: 100000},
		audit.Options{Counters: &c})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1500)
	d := &authz.Decision{ID: "d", Time: opstest.Now, Vault: &authz.Vault{}, Allowed: true,
		Request: &authz.Request{Method: "GET", Path: "/secrets/" + big}}
	for range 2000 { // ~3.5 MB
		w.Observe(d, 0)
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Written.Load() != 2000 {
		t.Fatalf("written = %d (dropped %d)", c.Written.Load(), c.Dropped.Load())
	}
	// lumberjack removes backups past maxBackups in its own goroutine,
	// after the rotation: give it a moment.
	var files []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(dir, "logs", "audit*.json"))
		if len(files) == 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(files) != 3 {
		t.Fatalf("files = %v, want the current one and 2 backups", files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = audit.Read(fh, func(_ int, rec *audit.Record, err error) error {
			n++
			return err
		})
		fh.Close()
		if err != nil || n == 0 {
			t.Fatalf("%s: %d records, %v", f, n, err)
		}
	}
}

func TestFileSinkBadPath(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkFile, Path: filepath.Join(f, "audit.json"), MaxSizeMB: 1, QueueSize: 1}, audit.Options{})
	if err == nil || !strings.Contains(err.Error(), "audit.path") {
		t.Fatalf("err = %v", err)
	}
}

// A record read back rebuilds the request the decision was made on, minus
// the headers never recorded.
func TestRequestRoundTrip(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	cr := opstest.Check(r.Token(), "203.0.113.10", "POST", "/secrets/db?api-version=7.5", "x-http-method", "PATCH", "x-forwarded-for", "198.51.100.1")
	cr.Attributes.Source.Principal = "spiffe://trusted.example/azure-backup"
	cr.Attributes.Source.Certificate = "-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A"
	d := decide(t, r, path, cr)
	var out authztest.Buffer
	w, _ := stdoutWriter(t, &out, 8)
	w.Observe(d, 0)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got *authz.Request
	err := audit.Read(strings.NewReader(out.String()), func(_ int, rec *audit.Record, err error) error {
		if err != nil {
			return err
		}
		got, err = rec.Request()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := *d.Request
	want.Headers = map[string]string{}
	for _, h := range audit.RecordedHeaders {
		if v, ok := d.Request.Headers[h]; ok {
			want.Headers[h] = v
		}
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("request = %+v\nwant      %+v", *got, want)
	}
	if _, ok := got.Headers["authorization"]; ok {
		t.Fatal("authorization recorded")
	}
}

func TestReadReportsMalformedLines(t *testing.T) {
	in := "{\"time\":\"2026-11-27T10:00:00.0000000Z\",\"vaultwall\":{\"decisionId\":\"a\"}}\nnot json\n\n{\"vaultwall\":{\"decisionId\":\"b\"}}\n"
	var ids []string
	var errs []string
	err := audit.Read(strings.NewReader(in), func(line int, rec *audit.Record, err error) error {
		if err != nil {
			errs = append(errs, err.Error())
			return nil
		}
		ids = append(ids, rec.Vaultwall.DecisionID)
		return nil
	})
	if err != nil || !reflect.DeepEqual(ids, []string{"a", "b"}) || len(errs) != 1 || !strings.HasPrefix(errs[0], "line 2:") {
		t.Fatalf("ids=%v errs=%v err=%v", ids, errs, err)
	}
}

// A record names the object canonically (lower case, what every rule
// compared) in properties.id; requestUri keeps the client's spelling.
func TestRecordNamesTheObjectCanonically(t *testing.T) {
	req := &authz.Request{Method: "GET", Path: "/SECRETS/PROD-ROOT?api-version=7.5", Host: "v.vault.azure.net", Scheme: "https"}
	d := &authz.Decision{ID: "id", Time: time.Unix(1, 0), Vault: &authz.Vault{}, Request: req, Allowed: true,
		Operation: authz.Operation{Name: "SecretGet", Resource: "secrets", Permission: "get", Object: "prod-root", ObjectRaw: "PROD-ROOT", Scope: "/secrets/prod-root"}}
	r := audit.FromDecision(d, time.Millisecond)
	if r.Properties.ID != "https://v.vault.azure.net/secrets/prod-root" {
		t.Errorf("properties.id = %q, want the canonical object URI", r.Properties.ID)
	}
	if r.Properties.RequestURI != "https://v.vault.azure.net/SECRETS/PROD-ROOT?api-version=7.5" {
		t.Errorf("requestUri = %q, want the request as sent", r.Properties.RequestURI)
	}
}
