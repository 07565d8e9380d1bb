package envoy

import (
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Once SetServing reports readiness, both health names follow it alone: a
// new pipeline does not turn a not-ready replica SERVING.
func TestSetServingOwnsHealth(t *testing.T) {
	s := NewServer(nil, nil)
	hc := healthpb.NewHealthClient(serve(t, s, ServerOptions{}))
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatus()
	}
	s.SetPipeline(stubPipeline())
	s.SetServing(false)
	s.SetPipeline(stubPipeline())
	for _, name := range []string{"", HealthService} {
		if st := status(name); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q = %v after SetServing(false) and a new pipeline", name, st)
		}
	}
	s.SetServing(true)
	for _, name := range []string{"", HealthService} {
		if st := status(name); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v after SetServing(true)", name, st)
		}
	}
	s.Shutdown()
	s.SetServing(true)
	if st := status(HealthService); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health = %v after Shutdown", st)
	}
}
