package tracing

import (
	"strconv"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/config"
)

// Settings are the effective tracing settings: the configuration file's
// tracing section over the standard OpenTelemetry environment variables
// over vaultwall's defaults.
type Settings struct {
	// Enabled: a collector is named (tracing.endpoint, or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT) and
	// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none.
	Enabled bool
	// Protocol is config.TracingGRPC or config.TracingHTTP.
	Protocol string
	// Endpoint is tracing.endpoint; empty when the exporter takes it
	// from OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT itself.
	Endpoint string
	// Insecure is tracing.insecure (when false, the exporter still reads
	// OTEL_EXPORTER_OTLP_[TRACES_]INSECURE and an http:// endpoint).
	Insecure bool
	// Timeout is tracing.timeout; zero when the exporter takes
	// OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT or its default (10s).
	Timeout time.Duration
	// ServiceName: tracing.serviceName, OTEL_SERVICE_NAME, "vaultwall".
	ServiceName string
	// Ratio: tracing.samplingRatio, OTEL_TRACES_SAMPLER_ARG (when
	// OTEL_TRACES_SAMPLER is unset or a traceidratio sampler), 0.1.
	Ratio float64
}

// Resolve lays cfg over the environment (getenv, os.Getenv in production)
// over the defaults. Per setting, the file wins; what the OTLP exporters
// read by themselves (headers, certificates, compression, and endpoint,
// insecure and timeout when the file leaves them unset) they keep reading.
func Resolve(cfg config.Tracing, getenv func(string) string) Settings {
	env := func(keys ...string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(getenv(k)); v != "" {
				return v
			}
		}
		return ""
	}
	s := Settings{Endpoint: cfg.Endpoint, Insecure: cfg.Insecure, Timeout: cfg.Timeout.D(), ServiceName: cfg.ServiceName}
	s.Enabled = cfg.Endpoint != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(env("OTEL_TRACES_EXPORTER"), "none") {
		s.Enabled = false
	}

	s.Protocol = cfg.Protocol
	if s.Protocol == "" {
		switch env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
		case "http/protobuf", "http/json", "http":
			s.Protocol = config.TracingHTTP
		default:
			s.Protocol = config.TracingGRPC
		}
	}
	if s.ServiceName == "" {
		s.ServiceName = env("OTEL_SERVICE_NAME")
	}
	if s.ServiceName == "" {
		s.ServiceName = "vaultwall"
	}

	s.Ratio = config.DefaultSamplingRatio
	if cfg.SamplingRatio != nil {
		s.Ratio = *cfg.SamplingRatio
	} else if arg := env("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
		switch env("OTEL_TRACES_SAMPLER") {
		case "", "traceidratio", "parentbased_traceidratio":
			if r, err := strconv.ParseFloat(arg, 64); err == nil && r >= 0 && r <= 1 {
				s.Ratio = r
			}
		}
	}
	return s
}
