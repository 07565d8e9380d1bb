package controlplane

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

// panickyStages classify every request as SecretGet and panic when asked
// to authenticate it.
type panickyStages struct{}

func (panickyStages) Classify(*authz.Request) (authz.Operation, *authz.Denial) {
	return authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet"}, nil
}

func (panickyStages) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	panic("token parser bug")
}

const explainedCheck = `{"attributes":{"source":{"address":{"socketAddress":{"address":"203.0.113.7","portValue":1}}},
 "request":{"http":{"method":"GET","path":"/secrets/db?api-version=7.5",
 "headers":{":path":"/secrets/db?api-version=7.5",":method":"GET","authorization":"Bearer x"}}}}}`

// TestExplainPanicFailsClosedAsCheck: Explain decides through Check's
// guard (envoy.Decide), so whatever panics while deciding, Explain reports
// the fail-closed refusal Check answers — never a panic, which in a gRPC
// server ends the process. A stage's panic was already the pipeline's 500;
// a panic outside the pipeline's own guard (its clock) and a runtime
// without a pipeline used to panic in Explain.
func TestExplainPanicFailsClosedAsCheck(t *testing.T) {
	stages := panickyStages{}
	for _, tt := range []struct {
		name     string
		pipeline *authz.Pipeline
		status   int32
		stage    string
	}{
		{"a stage panics", &authz.Pipeline{Classifier: stages, Authenticator: stages}, 500, "authenticate"},
		{"the pipeline's clock panics", &authz.Pipeline{Classifier: stages, Authenticator: stages,
			Now: func() time.Time { panic("clock bug") }}, 503, "none"},
		{"no pipeline", nil, 503, "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := testServer(t)
			s.Swap(&engine.Runtime{Pipeline: tt.pipeline})
			got := explain(t, s)

			cr := &authv3.CheckRequest{}
			if err := protojson.Unmarshal([]byte(explainedCheck), cr); err != nil {
				t.Fatal(err)
			}
			srv := envoy.NewServer(nil, nil)
			if tt.pipeline != nil {
				srv.SetPipeline(tt.pipeline)
			}
			resp, err := srv.Check(t.Context(), cr)
			if err != nil {
				t.Fatal(err)
			}
			md := resp.GetDynamicMetadata().GetFields()
			checked := &v1.ExplainResponse{
				Allowed: md[envoy.MDAllowed].GetBoolValue(), DecidedBy: md[envoy.MDStage].GetStringValue(),
				HttpStatus: int32(resp.GetDeniedResponse().GetStatus().GetCode()), ErrorCode: md[envoy.MDCode].GetStringValue(),
			}

			if got.GetAllowed() || got.GetHttpStatus() != tt.status || got.GetErrorCode() != "AuthorizationUnavailable" || got.GetDecidedBy() != tt.stage {
				t.Errorf("Explain = allowed %v, %d %s by %q; want the fail-closed %d AuthorizationUnavailable by %q",
					got.GetAllowed(), got.GetHttpStatus(), got.GetErrorCode(), got.GetDecidedBy(), tt.status, tt.stage)
			}
			if got.GetAllowed() != checked.GetAllowed() || got.GetHttpStatus() != checked.GetHttpStatus() ||
				got.GetErrorCode() != checked.GetErrorCode() || got.GetDecidedBy() != checked.GetDecidedBy() {
				t.Errorf("Explain = allowed %v, %d %s by %q; Check answered allowed %v, %d %s by %q",
					got.GetAllowed(), got.GetHttpStatus(), got.GetErrorCode(), got.GetDecidedBy(),
					checked.GetAllowed(), checked.GetHttpStatus(), checked.GetErrorCode(), checked.GetDecidedBy())
			}
		})
	}
}

// explain asks s to explain explainedCheck as an admin, failing the test
// (rather than ending it) when Explain panics.
func explain(t *testing.T, s *Server) *v1.ExplainResponse {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Explain panicked (in a gRPC server, the process would end): %v", r)
		}
	}()
	got, err := call(admin(t), s, "Explain",
		&v1.ExplainRequest{CheckRequest: &v1.ExplainRequest_CheckRequestJson{CheckRequestJson: explainedCheck}}, s.Explain)
	if err != nil {
		t.Fatalf("Explain: %v, want a refusal explained", err)
	}
	return got
}
