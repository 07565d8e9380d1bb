package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

const opsBase = "vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}\n"

func TestOpsDefaultsAndPaths(t *testing.T) {
	c, err := config.Parse("dir/vault.yaml", []byte(opsBase+`
audit: {enabled: true, sink: file, path: logs/audit.json}
tracing: {endpoint: "collector:4317"}
shadow: {config: candidate.yaml, policyDir: next}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.Path != filepath.Join("dir", "logs", "audit.json") || a.QueueSize != config.DefaultAuditQueue ||
		a.MaxSizeMB != 100 || a.MaxBackups != 10 {
		t.Errorf("audit = %+v", a)
	}
	// Unset tracing keys stay unset (the tracing package fills them from
	// OTEL_* variables, then its defaults); only the ratio has a getter.
	if tr := c.Tracing; !tr.Enabled() || tr.Protocol != "" || tr.Ratio() != 0.1 || tr.ServiceName != "" || tr.Timeout != 0 {
		t.Errorf("tracing = %+v", tr)
	}
	s := c.Shadow
	if !s.Enabled() || s.Config != filepath.Join("dir", "candidate.yaml") || s.PolicyDir != filepath.Join("dir", "next") ||
		s.Rate() != 1 || s.QueueSize != config.DefaultShadowQueue || s.Workers != 1 {
		t.Errorf("shadow = %+v", s)
	}

	off, err := config.Parse("vault.yaml", []byte(opsBase))
	if err != nil {
		t.Fatal(err)
	}
	if off.Audit.Enabled || off.Tracing.Enabled() || off.Shadow.Enabled() || off.Audit.Sink != "stdout" {
		t.Errorf("operations not off by default: %+v %+v %+v", off.Audit, off.Tracing, off.Shadow)
	}
}

func TestOpsInvalid(t *testing.T) {
	cases := []struct {
		yaml, field string
		sentinel    error
	}{
		{"audit: {sink: syslog}", "audit.sink", config.ErrInvalidValue},
		{"audit: {enabled: true, sink: file}", "audit.path", config.ErrRequired},
		{"audit: {queueSize: -1}", "audit.queueSize", config.ErrInvalidValue},
		{"audit: {maxSizeMB: -5}", "audit.maxSizeMB", config.ErrInvalidValue},
		{"audit: {maxBackups: -2}", "audit.maxBackups", config.ErrInvalidValue},
		{"audit: {maxAgeDays: -1}", "audit.maxAgeDays", config.ErrInvalidValue},
		{"audit: {rotate: true}", "audit.rotate", config.ErrUnknownField},
		{"tracing: {protocol: zipkin}", "tracing.protocol", config.ErrInvalidValue},
		{`tracing: {endpoint: "http://collector:4317"}`, "tracing.endpoint", config.ErrInvalidValue},
		{`tracing: {protocol: http, endpoint: "collector:4318"}`, "tracing.endpoint", config.ErrInvalidValue},
		{"tracing: {samplingRatio: 1.5}", "tracing.samplingRatio", config.ErrInvalidValue},
		{"shadow: {sampleRate: -0.1}", "shadow.sampleRate", config.ErrInvalidValue},
		{"shadow: {workers: 100}", "shadow.workers", config.ErrInvalidValue},
		{"shadow: {queueSize: -3}", "shadow.queueSize", config.ErrInvalidValue},
		{"shadow: {config: vault.yaml}", "shadow.config", config.ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			_, err := config.Parse("vault.yaml", []byte(opsBase+tc.yaml+"\n"))
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			if want := "vault.yaml:2: " + tc.field + ": "; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
		})
	}
}
