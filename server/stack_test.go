package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/server"
	"github.com/vaultwall/vaultwall/server/servertest"
)

// process is one running vaultwall: server.Serve.
type process struct {
	t      *testing.T
	client authv3.AuthorizationClient
	http   string
	stdout *authztest.Buffer
	stop   func() // stops Serve, requiring a graceful stop
}

func start(t *testing.T, r *opstest.Rig, cfgPath string) *process {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, stdout: &authztest.Buffer{}}
	var a server.Addrs
	a, p.stop = servertest.Start(t, server.Options{ConfigPath: cfgPath, Config: cfg, Store: r.StoreOptions(), Stdout: p.stdout,
		Poll: 100 * time.Millisecond, Now: func() time.Time { return opstest.Now }, Version: "test"})
	cc, err := grpc.NewClient(a.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	p.client = authv3.NewAuthorizationClient(cc)
	p.http = "http://" + a.HTTP
	return p
}

func (p *process) check(cr *authv3.CheckRequest) *authv3.CheckResponse {
	p.t.Helper()
	resp, err := p.client.Check(p.t.Context(), cr)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp
}

func (p *process) get(path string) (int, []byte) {
	p.t.Helper()
	resp, err := http.Get(p.http + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// scrape reads /metrics over HTTP and parses the text format.
func (p *process) scrape() map[string]*dto.MetricFamily {
	p.t.Helper()
	code, body := p.get("/metrics")
	if code != 200 {
		p.t.Fatalf("/metrics = %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		p.t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

// value is the value of the series of name whose labels include want;
// -1 when absent.
func value(mf map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := mf[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Metrics scraped over real HTTP from a running Serve: decisions by stage
// and code, latency, gRPC, JWKS, token cache, configuration generation and
// reload failures, audit records.
func TestMetricsOverHTTP(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "policy: {dir: policy, timeout: 5s}\naudit: {enabled: true}\n")
	r.Write("policy/ops.rego", "package vaultwall.operator\n")
	p := start(t, r, path)
	tok := r.Token()
	if resp := p.check(opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5")); resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("allow: %v", resp)
	}
	p.check(opstest.Check(tok, "203.0.113.10", "GET", "/secrets/other?api-version=7.5"))
	p.check(opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5"))
	p.check(opstest.Check("", "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
	p.check(opstest.Check(tok, "203.0.113.10", "DELETE", "/secrets/db?api-version=7.5"))

	eventually(t, "audit records written", func() bool {
		return value(p.scrape(), "vaultwall_audit_records_total", map[string]string{"result": "written"}) == 5
	})
	mf := p.scrape()
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"vaultwall_decisions_total", map[string]string{"stage": "authorize", "code": "OK"}, 2},
		{"vaultwall_decisions_total", map[string]string{"stage": "firewall", "code": "ForbiddenByFirewall"}, 1},
		{"vaultwall_decisions_total", map[string]string{"stage": "authenticate", "code": "Unauthorized"}, 1},
		{"vaultwall_decisions_total", map[string]string{"stage": "authorize", "code": "AccessDenied"}, 1},
		{"vaultwall_decisions_total", map[string]string{"stage": "classify", "code": "BadParameter"}, 0},
		{"vaultwall_check_duration_seconds", map[string]string{"result": "allowed"}, 2},
		{"vaultwall_check_duration_seconds", map[string]string{"result": "denied"}, 3},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "Check", "grpc_code": "OK"}, 5},
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "Check"}, 5},
		{"vaultwall_jwks_refresh_total", map[string]string{"issuer": r.Issuer.Issuer(), "trigger": "initial", "result": "success"}, 1},
		{"vaultwall_jwks_refresh_duration_seconds", map[string]string{"issuer": r.Issuer.Issuer()}, 1},
		{"vaultwall_jwks_keys_loaded", map[string]string{"issuer": r.Issuer.Issuer()}, 1},
		{"vaultwall_jwks_keys", map[string]string{"issuer": r.Issuer.Issuer()}, 1},
		{"vaultwall_token_cache_misses_total", nil, 1},
		{"vaultwall_token_cache_hits_total", nil, 3},
		{"vaultwall_config_generation", map[string]string{"config": "enforced"}, 1},
		{"vaultwall_config_loaded", map[string]string{"config": "enforced"}, 1},
		{"vaultwall_config_reload_failures_total", map[string]string{"config": "enforced"}, 0},
		{"vaultwall_policy_files", map[string]string{"config": "enforced"}, 1},
		{"vaultwall_audit_records_total", map[string]string{"result": "dropped"}, 0},
		{"vaultwall_audit_queue_length", nil, 0},
	}
	for _, w := range want {
		if got := value(mf, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	if value(mf, "vaultwall_jwks_key_age_seconds", map[string]string{"issuer": r.Issuer.Issuer()}) < 0 {
		t.Error("no key age")
	}
	if value(mf, "go_goroutines", nil) <= 0 {
		t.Error("no Go runtime metrics")
	}
	// Labels only from closed sets: no path, address or token anywhere.
	_, body := p.get("/metrics")
	for _, leak := range []string{"secrets/db", "203.0.113.10", "192.0.2.1", tok[:20]} {
		if bytes.Contains(body, []byte(leak)) {
			t.Errorf("/metrics holds request data %q", leak)
		}
	}

	// A broken policy: the reload is refused and counted; /readyz stays
	// ready (the running policy serves) and shows the error.
	r.Write("policy/ops.rego", "package vaultwall.operator\n\nthis is not rego {\n")
	eventually(t, "reload failure counted", func() bool {
		return value(p.scrape(), "vaultwall_config_reload_failures_total", map[string]string{"config": "enforced"}) == 1
	})
	mf = p.scrape()
	if value(mf, "vaultwall_config_last_reload_failed", map[string]string{"config": "enforced"}) != 1 ||
		value(mf, "vaultwall_config_generation", map[string]string{"config": "enforced"}) != 1 {
		t.Error("failed reload not reported, or generation moved")
	}
	code, body := p.get("/readyz")
	var rz struct {
		Ready  bool
		Config engine.Status
		Probes []engine.Probe
	}
	if err := json.Unmarshal(body, &rz); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !rz.Ready || !strings.Contains(rz.Config.LastError, "policy/ops.rego:4: syntax error") || rz.Config.Failures != 1 {
		t.Errorf("/readyz after a refused policy = %d %s", code, body)
	}
	names := map[string]bool{}
	for _, pr := range rz.Probes {
		names[pr.Name] = pr.Ready
	}
	if !names["policy"] || !names["issuer "+r.Issuer.Issuer()] || !names["audit"] {
		t.Errorf("probes = %s", body)
	}
	// Fixed: generation 2.
	r.Write("policy/ops.rego", "package vaultwall.operator\n\ndeny contains \"no\" if false\n")
	eventually(t, "fixed policy loaded", func() bool {
		return value(p.scrape(), "vaultwall_config_generation", map[string]string{"config": "enforced"}) == 2
	})
	if value(p.scrape(), "vaultwall_config_last_reload_failed", map[string]string{"config": "enforced"}) != 0 {
		t.Error("the last reload still shows as failed")
	}
}

// /readyz is 503 until every issuer has a key set, with the reason, and
// /healthz is always live.
func TestReadiness(t *testing.T) {
	r := opstest.New(t)
	r.Issuer.SetFailure(authztest.Fail500)
	path := r.Write("vault.yaml", strings.Replace(r.Render(opstest.Config, ""), "identity:\n", "identity:\n  refresh: {minInterval: 1s, timeout: 1s}\n", 1))
	p := start(t, r, path)

	code, body := p.get("/healthz")
	var hz map[string]any
	if err := json.Unmarshal(body, &hz); err != nil || code != 200 || hz["status"] != "ok" {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	// The first fetch runs in the background: its failure (the issuer's
	// 500) shows once it has come back, and /readyz is 503 throughout.
	eventually(t, "the issuer's failure shown", func() bool {
		code, body = p.get("/readyz")
		if code != 503 {
			t.Fatalf("/readyz with the issuer down = %d %s", code, body)
		}
		return bytes.Contains(body, []byte("500"))
	})
	if !bytes.Contains(body, []byte(`"ready": false`)) || !bytes.Contains(body, []byte(`"keysLoaded": false`)) {
		t.Fatalf("/readyz with the issuer down = %d %s", code, body)
	}
	r.Issuer.SetFailure(authztest.Up)
	eventually(t, "ready once the keys load", func() bool {
		code, _ := p.get("/readyz")
		return code == 200
	})
}

// The audit section follows reloads: a new path gets the next records.
func TestAuditFollowsReload(t *testing.T) {
	r := opstest.New(t)
	first := filepath.Join(r.Dir, "a", "audit.json")
	second := filepath.Join(r.Dir, "b", "audit.json")
	path := r.WriteConfig("vault.yaml", "audit: {enabled: true, sink: file, path: a/audit.json}\n")
	p := start(t, r, path)
	tok := r.Token()
	p.check(opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
	r.WriteConfig("vault.yaml", "audit: {enabled: true, sink: file, path: b/audit.json}\n")
	eventually(t, "second audit file created", func() bool { _, err := os.Stat(second); return err == nil })
	p.check(opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5"))
	p.stop()
	count := func(f string) (n int, ips []string) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		_ = audit.Read(fh, func(_ int, rec *audit.Record, err error) error {
			n++
			ips = append(ips, rec.CallerIPAddress)
			return err
		})
		return n, ips
	}
	if n, ips := count(first); n != 1 || ips[0] != "203.0.113.10" {
		t.Errorf("first file: %d %v", n, ips)
	}
	if n, ips := count(second); n != 1 || ips[0] != "192.0.2.1" {
		t.Errorf("second file: %d %v", n, ips)
	}
}

// Shadow mode from the configuration: differences are counted in
// /metrics, the enforced answers do not change.
func TestShadowFromConfig(t *testing.T) {
	r := opstest.New(t)
	r.Write("next/ops.rego", "package vaultwall.operator\n\ndeny contains \"reads are off\" if input.operation.permission == \"get\"\n")
	path := r.WriteConfig("vault.yaml", "shadow: {policyDir: next}\n")
	p := start(t, r, path)
	tok := r.Token()
	for range 3 {
		if resp := p.check(opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5")); resp.GetStatus().GetCode() != int32(code.Code_OK) {
			t.Fatalf("enforcement changed by shadow mode: %v", resp)
		}
	}
	eventually(t, "would_deny counted", func() bool {
		return value(p.scrape(), "vaultwall_shadow_differences_total", map[string]string{"kind": "would_deny", "stage": "authorize"}) == 3
	})
	mf := p.scrape()
	if value(mf, "vaultwall_shadow_evaluations_total", nil) != 3 || value(mf, "vaultwall_config_generation", map[string]string{"config": "shadow"}) != 1 {
		t.Errorf("shadow metrics: evaluations %v, generation %v", value(mf, "vaultwall_shadow_evaluations_total", nil),
			value(mf, "vaultwall_config_generation", map[string]string{"config": "shadow"}))
	}
	_, body := p.get("/readyz")
	if !bytes.Contains(body, []byte(`"name": "shadow"`)) {
		t.Errorf("/readyz lacks the shadow probe: %s", body)
	}
	// Shadow mode switched off by a reload.
	r.WriteConfig("vault.yaml", "")
	eventually(t, "shadow stopped", func() bool {
		_, body := p.get("/readyz")
		return !bytes.Contains(body, []byte(`"name": "shadow"`))
	})
}

// Tracing is off by default at no cost: no tracer, no hook in the pipeline.
func TestTracingOffByDefault(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	cfg, _ := config.Load(path)
	st, err := server.NewStack(t.Context(), path, cfg, server.Options{Store: r.StoreOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(t.Context())
	if st.Tracer() != nil || st.Builder().Tracer != nil {
		t.Fatal("a tracer without tracing.endpoint")
	}
	rt, err := st.Builder().Build(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rt.Pipeline.Tracer != nil {
		t.Fatal("the pipeline has a tracer")
	}

	cfg.Tracing = config.Tracing{Endpoint: "127.0.0.1:1", Protocol: "grpc", Insecure: true}
	on, err := server.NewStack(t.Context(), path, cfg, server.Options{Store: r.StoreOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close(context.Background())
	if on.Tracer() == nil || on.Builder().Tracer == nil {
		t.Fatal("tracing.endpoint set, no tracer")
	}
}
