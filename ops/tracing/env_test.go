package tracing_test

import (
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/ops/tracing"
)

// TestResolvePrecedence: per setting, the configuration file wins over the
// standard OTEL_* variable, which wins over the default; OTEL_SDK_DISABLED
// and OTEL_TRACES_EXPORTER=none turn tracing off whatever the file says.
func TestResolvePrecedence(t *testing.T) {
	half := 0.5
	fileAll := config.Tracing{Endpoint: "file:4317", Protocol: "grpc", Insecure: true, SamplingRatio: &half,
		ServiceName: "from-file", Timeout: config.Duration(3 * time.Second)}
	envAll := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME":           "from-env",
		"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":     "0.25",
	}
	tests := []struct {
		name string
		cfg  config.Tracing
		env  map[string]string
		want tracing.Settings
	}{
		{"nothing: off, defaults", config.Tracing{}, nil,
			tracing.Settings{Protocol: "grpc", ServiceName: "vaultwall", Ratio: 0.1}},
		{"file only", fileAll, nil,
			tracing.Settings{Enabled: true, Protocol: "grpc", Endpoint: "file:4317", Insecure: true, Timeout: 3 * time.Second, ServiceName: "from-file", Ratio: 0.5}},
		{"env only: on, the exporter reads the endpoint", config.Tracing{}, envAll,
			tracing.Settings{Enabled: true, Protocol: "http", ServiceName: "from-env", Ratio: 0.25}},
		{"file wins over env", fileAll, envAll,
			tracing.Settings{Enabled: true, Protocol: "grpc", Endpoint: "file:4317", Insecure: true, Timeout: 3 * time.Second, ServiceName: "from-file", Ratio: 0.5}},
		{"traces-specific variables", config.Tracing{}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			tracing.Settings{Enabled: true, Protocol: "http", ServiceName: "vaultwall", Ratio: 0.1}},
		{"OTEL_SDK_DISABLED beats the file", fileAll, map[string]string{"OTEL_SDK_DISABLED": "true"},
			tracing.Settings{Protocol: "grpc", Endpoint: "file:4317", Insecure: true, Timeout: 3 * time.Second, ServiceName: "from-file", Ratio: 0.5}},
		{"OTEL_TRACES_EXPORTER=none", config.Tracing{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", "OTEL_TRACES_EXPORTER": "none"},
			tracing.Settings{Protocol: "grpc", ServiceName: "vaultwall", Ratio: 0.1}},
		{"a non-ratio sampler's argument is not a ratio", config.Tracing{}, map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0.7"},
			tracing.Settings{Protocol: "grpc", ServiceName: "vaultwall", Ratio: 0.1}},
		{"an out-of-range ratio is ignored", config.Tracing{}, map[string]string{"OTEL_TRACES_SAMPLER_ARG": "7"},
			tracing.Settings{Protocol: "grpc", ServiceName: "vaultwall", Ratio: 0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tracing.Resolve(tt.cfg, func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("Resolve =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

// TestNewHonoursOTELEnvironment: with no tracing section at all, a
// collector named by OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on, and
// OTEL_SDK_DISABLED turns it off again.
func TestNewHonoursOTELEnvironment(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tr, err := tracing.New(t.Context(), config.Tracing{}, "test")
	if err != nil || tr == nil {
		t.Fatalf("OTEL_EXPORTER_OTLP_ENDPOINT set, tracer = %v, %v", tr, err)
	}
	_ = tr.Shutdown(t.Context())
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if tr, err := tracing.New(t.Context(), config.Tracing{}, "test"); err != nil || tr != nil {
		t.Fatalf("OTEL_SDK_DISABLED=true, tracer = %v, %v", tr, err)
	}
}
