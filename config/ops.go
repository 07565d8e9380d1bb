package config

import (
	"net/url"
	"strings"
)

// Audit configures the decision audit log: one Key Vault AuditEvent JSON
// record per decision.
type Audit struct {
	Enabled bool `json:"enabled,omitempty"`
	// Sink is stdout (default) or file.
	Sink string `json:"sink,omitempty"`
	// Path is the log file of the file sink (relative to the configuration
	// file). It is rotated when it reaches maxSizeMB.
	Path string `json:"path,omitempty"`
	// MaxSizeMB is the size at which the file is rotated (default 100).
	MaxSizeMB int `json:"maxSizeMB,omitempty"`
	// MaxBackups is how many rotated files are kept (default 10; -1 keeps
	// all).
	MaxBackups int `json:"maxBackups,omitempty"`
	// MaxAgeDays removes rotated files older than this (default 0: by
	// count only).
	MaxAgeDays int `json:"maxAgeDays,omitempty"`
	// Compress gzips rotated files.
	Compress bool `json:"compress,omitempty"`
	// QueueSize bounds the records waiting to be written (default 8192).
	// When it is full, records are dropped and counted: a check never waits
	// for the audit log.
	QueueSize int `json:"queueSize,omitempty"`
}

// Audit sinks.
const (
	AuditSinkStdout = "stdout"
	AuditSinkFile   = "file"
)

// Tracing configures OpenTelemetry spans for checks, exported over OTLP.
// Each key set here wins over the standard OTEL_* environment variable for
// the same setting, which wins over the default (package tracing resolves
// them). Tracing is off while neither endpoint nor OTEL_EXPORTER_OTLP_*
// names a collector.
type Tracing struct {
	// Endpoint is the OTLP collector: host:port for grpc, a URL
	// (http://collector:4318/v1/traces) for http.
	Endpoint string `json:"endpoint,omitempty"`
	// Protocol is grpc (default) or http.
	Protocol string `json:"protocol,omitempty"`
	// Insecure sends spans without TLS.
	Insecure bool `json:"insecure,omitempty"`
	// SamplingRatio is the share of checks traced when Envoy sent no
	// sampling decision (default 0.1); Envoy's decision is always followed.
	SamplingRatio *float64 `json:"samplingRatio,omitempty"`
	// ServiceName is the service.name resource attribute (default vaultwall).
	ServiceName string `json:"serviceName,omitempty"`
	// Timeout bounds one export (default 10s).
	Timeout Duration `json:"timeout,omitempty"`
}

// Enabled reports whether the file names a collector (the environment may
// name one too: tracing.Resolve).
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// Ratio is the effective sampling ratio.
func (t Tracing) Ratio() float64 {
	if t.SamplingRatio == nil {
		return DefaultSamplingRatio
	}
	return *t.SamplingRatio
}

// Tracing protocols.
const (
	TracingGRPC = "grpc"
	TracingHTTP = "http"
)

// Shadow evaluates a candidate configuration and/or policy directory beside
// the enforced one, off the hot path, and reports where they differ. The
// enforced decision is never affected.
type Shadow struct {
	// Config is the candidate configuration file (relative to this file);
	// empty means this configuration with policyDir as its policy.
	Config string `json:"config,omitempty"`
	// PolicyDir is the candidate's operator policy directory; it overrides
	// the candidate configuration's policy.dir.
	PolicyDir string `json:"policyDir,omitempty"`
	// SampleRate is the share of decisions evaluated again (default 1).
	SampleRate *float64 `json:"sampleRate,omitempty"`
	// QueueSize bounds the decisions waiting for the candidate (default
	// 1024); when full they are dropped and counted.
	QueueSize int `json:"queueSize,omitempty"`
	// Workers evaluate the candidate concurrently (default 1).
	Workers int `json:"workers,omitempty"`
}

// Enabled reports whether a candidate is configured.
func (s Shadow) Enabled() bool { return s.Config != "" || s.PolicyDir != "" }

// Rate is the effective sample rate.
func (s Shadow) Rate() float64 {
	if s.SampleRate == nil {
		return 1
	}
	return *s.SampleRate
}

// Defaults of the operations sections.
const (
	DefaultAuditQueue      = 8192
	DefaultAuditMaxSizeMB  = 100
	DefaultAuditMaxBackups = 10
	DefaultSamplingRatio   = 0.1
	DefaultShadowQueue     = 1024
)

func (c *Config) resolveOpsPaths(abs func(*string)) {
	abs(&c.Audit.Path)
	abs(&c.Shadow.Config)
	abs(&c.Shadow.PolicyDir)
}

func (c *Config) opsDefaults() {
	a := &c.Audit
	if a.Sink == "" {
		a.Sink = AuditSinkStdout
	}
	if a.QueueSize == 0 {
		a.QueueSize = DefaultAuditQueue
	}
	if a.MaxSizeMB == 0 {
		a.MaxSizeMB = DefaultAuditMaxSizeMB
	}
	if a.MaxBackups == 0 {
		a.MaxBackups = DefaultAuditMaxBackups
	}
	// Tracing keeps what the file says, unset stays unset: the tracing
	// package lays the standard OTEL_* variables under the file, then its
	// defaults (grpc, vaultwall, 10s, 0.1).
	s := &c.Shadow
	if s.QueueSize == 0 {
		s.QueueSize = DefaultShadowQueue
	}
	if s.Workers == 0 {
		s.Workers = 1
	}
}

func (c *Config) validateOps(e *errs) {
	a := &c.Audit
	switch a.Sink {
	case AuditSinkStdout:
	case AuditSinkFile:
		if a.Path == "" && a.Enabled {
			e.Add("audit.path", ErrRequired, "the file sink needs a path")
		}
	default:
		e.Add("audit.sink", ErrInvalidValue, "%q: want stdout or file", a.Sink)
	}
	if a.MaxSizeMB < 1 {
		e.Add("audit.maxSizeMB", ErrInvalidValue, "%d: at least 1", a.MaxSizeMB)
	}
	if a.MaxBackups < -1 {
		e.Add("audit.maxBackups", ErrInvalidValue, "%d: want -1 (keep all) or more", a.MaxBackups)
	}
	if a.MaxAgeDays < 0 {
		e.Add("audit.maxAgeDays", ErrInvalidValue, "%d: want 0 (no limit) or more", a.MaxAgeDays)
	}
	if a.QueueSize < 1 || a.QueueSize > 1<<20 {
		e.Add("audit.queueSize", ErrInvalidValue, "%d: want 1 to 1048576", a.QueueSize)
	}

	t := &c.Tracing
	switch t.Protocol {
	case TracingGRPC, "":
		if t.Endpoint != "" && strings.Contains(t.Endpoint, "://") {
			e.Add("tracing.endpoint", ErrInvalidValue, "%q: the grpc protocol takes host:port, not a URL", t.Endpoint)
		}
	case TracingHTTP:
		if t.Endpoint != "" {
			if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				e.Add("tracing.endpoint", ErrInvalidValue, "%q: the http protocol takes a URL such as http://collector:4318/v1/traces", t.Endpoint)
			}
		}
	default:
		e.Add("tracing.protocol", ErrInvalidValue, "%q: want grpc or http", t.Protocol)
	}
	if r := t.Ratio(); r < 0 || r > 1 {
		e.Add("tracing.samplingRatio", ErrInvalidValue, "%v: want 0 to 1", r)
	}
	if t.Timeout < 0 {
		e.Add("tracing.timeout", ErrInvalidValue, "%s: want a positive duration", t.Timeout.D())
	}

	s := &c.Shadow
	if r := s.Rate(); r < 0 || r > 1 {
		e.Add("shadow.sampleRate", ErrInvalidValue, "%v: want 0 to 1", r)
	}
	if s.QueueSize < 1 || s.QueueSize > 1<<20 {
		e.Add("shadow.queueSize", ErrInvalidValue, "%d: want 1 to 1048576", s.QueueSize)
	}
	if s.Workers < 1 || s.Workers > 64 {
		e.Add("shadow.workers", ErrInvalidValue, "%d: want 1 to 64", s.Workers)
	}
	if s.Config != "" && s.Config == c.Path {
		e.Add("shadow.config", ErrConflict, "the candidate is this configuration itself; name another file, or set only policyDir")
	}
}
