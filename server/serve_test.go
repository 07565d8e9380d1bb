package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/server"
	"github.com/vaultwall/vaultwall/server/servertest"
)

// serveForTest runs Serve on the configuration at path until the test ends
// and returns its addresses and a client connection to the gRPC listener.
func serveForTest(t *testing.T, r *opstest.Rig, path string) (server.Addrs, *grpc.ClientConn) {
	t.Helper()
	a, _ := servertest.Start(t, server.Options{ConfigPath: path, Store: r.StoreOptions(), Stdout: io.Discard,
		Now: func() time.Time { return opstest.Now }, Poll: 100 * time.Millisecond})
	cc, err := grpc.NewClient(a.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return a, cc
}

func readyz(t *testing.T, a server.Addrs) (int, map[string]any) {
	t.Helper()
	r, err := http.Get("http://" + a.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	return r.StatusCode, body
}

// TestServe runs the whole process: gRPC Check and health, HTTP /readyz, a
// reload through the watcher, and a graceful stop.
func TestServe(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	a, cc := serveForTest(t, r, path)
	client := authv3.NewAuthorizationClient(cc)
	// SERVING once ready: the issuer's keys load in the background.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		h, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{Service: envoy.HealthService})
		if err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("health = %v, %v", h, err)
		}
	}
	tok := r.Token()
	resp, err := client.Check(t.Context(), opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"))
	if err != nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("allowed request: %v %v", resp, err)
	}
	resp, err = client.Check(t.Context(), opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5"))
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("firewall-denied request: %v %v", resp, err)
	}
	if code, body := readyz(t, a); code != 200 {
		t.Fatalf("readyz = %d %v", code, body)
	}

	// Add the client's address through the file: the watcher applies it.
	data := strings.Replace(r.Render(opstest.Config, ""), "203.0.113.0/24}]", "203.0.113.0/24}, {value: 192.0.2.1}]", 1)
	r.Write("vault.yaml", data)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = client.Check(t.Context(), opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5"))
		if err == nil && resp.GetStatus().GetCode() == int32(code.Code_OK) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new rule was not applied within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGRPCHealthAgreesWithReadyz: while an issuer's keys were never
// loaded, /readyz is 503 and gRPC health is NOT_SERVING under both names
// (issue 13 item 3: it said SERVING, so Envoy kept routing to a replica
// that answers every token with 500); once the keys load, both say ready.
func TestGRPCHealthAgreesWithReadyz(t *testing.T) {
	r := opstest.New(t)
	r.Issuer.SetFailure(authztest.Fail500)
	path := r.Write("vault.yaml", strings.Replace(r.Render(opstest.Config, ""), "identity:\n", "identity:\n  refresh: {minInterval: 1s}\n", 1))
	a, cc := serveForTest(t, r, path)
	hc := healthpb.NewHealthClient(cc)
	health := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health %q: %v", service, err)
		}
		return r.GetStatus()
	}
	services := []string{"", envoy.HealthService}

	if code, _ := readyz(t, a); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the issuer down since start", code)
	}
	for _, s := range services {
		if st := health(s); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("gRPC health %q = %v while /readyz is 503 (no issuer keys)", s, st)
		}
	}

	r.Issuer.SetFailure(authztest.Up)
	deadline := time.Now().Add(15 * time.Second)
	for code, _ := readyz(t, a); code != http.StatusOK; code, _ = readyz(t, a) {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 15s of the issuer coming up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Health follows at once (the wait for keys), at the latest within a
	// tick (a second).
	for _, s := range services {
		for st := health(s); st != healthpb.HealthCheckResponse_SERVING; st = health(s) {
			if time.Now().After(deadline.Add(time.Second)) {
				t.Fatalf("gRPC health %q = %v while /readyz is 200", s, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestReadyz: /healthz is always 200; /readyz is 503 until a configuration
// is loaded and while any probe fails.
func TestReadyz(t *testing.T) {
	r := opstest.New(t)
	e := engine.NewFleet(r.WriteConfig("vault.yaml", ""), r.Builder.Build, nil)
	keysReady := false
	h := server.Handler(e, nil, func(*engine.Runtime) []engine.Probe { return []engine.Probe{{Name: "issuer keys", Ready: keysReady}} })

	get := func(p string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz before load = %d", code)
	}
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Current().Close() })
	if code, body := get("/readyz"); code != 503 {
		t.Errorf("readyz with a failing probe = %d %v", code, body)
	}
	keysReady = true
	if code, body := get("/readyz"); code != 200 || body["ready"] != true {
		t.Errorf("readyz = %d %v", code, body)
	}
	if code, _ := get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a registry = %d, want 404", code)
	}
}
