package engine

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/envoy"
)

// TestGRPCHealthAgreesWithReadyz: while an issuer's keys were never
// loaded, /readyz is 503 and gRPC health is NOT_SERVING under both names
// (issue 13 item 3: it said SERVING, so Envoy kept routing to a replica
// that answers every token with 500); once the keys load, both say ready.
func TestGRPCHealthAgreesWithReadyz(t *testing.T) {
	is := authztest.NewIssuer(t)
	is.SetFailure(authztest.Fail500)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vault.yaml")
	write(t, cfgPath, strings.Replace(liveConfig(is, dir), "identity:\n", "identity:\n  refresh: {minInterval: 1s}\n", 1))
	_ = os.MkdirAll(filepath.Join(dir, "policy"), 0o755)

	httpAddr, cc := serveForTest(t, ServeOptions{ConfigPath: cfgPath, Build: b.Build, Poll: time.Minute,
		Probes: []ProbeFunc{IssuerProbe, PolicyProbe}})
	hc := healthpb.NewHealthClient(cc)
	health := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health %q: %v", service, err)
		}
		return r.GetStatus()
	}
	readyz := func() int {
		t.Helper()
		r, err := http.Get("http://" + httpAddr.String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	services := []string{"", envoy.HealthService}

	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the issuer down since start", code)
	}
	for _, s := range services {
		if st := health(s); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("gRPC health %q = %v while /readyz is 503 (no issuer keys)", s, st)
		}
	}

	is.SetFailure(authztest.Up)
	deadline := time.Now().Add(15 * time.Second)
	for readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 15s of the issuer coming up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Health follows at once (the wait for keys), at the latest within a tick.
	for _, s := range services {
		for st := health(s); st != healthpb.HealthCheckResponse_SERVING; st = health(s) {
			if time.Now().After(deadline.Add(healthInterval)) {
				t.Fatalf("gRPC health %q = %v while /readyz is 200", s, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// serveForTest runs Serve with opts until the test ends — then cancels it
// and waits up to 15 s for it to stop — and returns its gRPC and HTTP
// addresses and a client connection to the gRPC one.
func serveForTest(t *testing.T, opts ServeOptions) (httpAddr net.Addr, cc *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	opts.Listening = func(g, h net.Addr) error { addrs <- [2]net.Addr{g, h}; return nil }
	go func() { done <- Serve(ctx, opts) }()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("not listening")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	cc, err := grpc.NewClient(a[0].String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return a[1], cc
}
