package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/opstest"
)

// vaultwall replay: exit 0 when nothing changes, 2 with the changes listed,
// 1 on error.
func TestReplayCommand(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	logPath := filepath.Join(r.Dir, "audit.json")
	w, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkFile, Path: logPath, MaxSizeMB: 1, QueueSize: 64}, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := r.Server(r.Runtime(path), w)
	tok := r.Token()
	for _, peer := range []string{"203.0.113.10", "203.0.113.11", "192.0.2.1"} {
		if _, err := srv.Check(t.Context(), opstest.Check(tok, peer, "GET", "/secrets/db?api-version=7.5")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		cmd.SetContext(t.Context())
		err := cmd.Execute()
		return out.String(), err
	}

	out, err := run("replay", "--audit", logPath, "--config", path)
	if err != nil || !strings.Contains(out, "unchanged          3") {
		t.Fatalf("same config: %v\n%s", err, out)
	}

	cand := r.Write("candidate.yaml", strings.Replace(r.Render(opstest.Config, ""), "ipRules: [{value: 203.0.113.0/24}]", "ipRules: [{value: 203.0.113.10}]", 1))
	out, err = run("replay", "--audit", logPath, "--config", cand)
	var ee *exitError
	if !errors.As(err, &ee) || exitCode(err) != exitChanged || !ee.quiet {
		t.Fatalf("changed config: err %v, want exit %d", err, exitChanged)
	}
	if !strings.Contains(out, "allow → deny       1") || !strings.Contains(out, "203.0.113.11") || strings.Contains(out, "203.0.113.10  ") {
		t.Fatalf("changed config report:\n%s", out)
	}

	if _, err := run("replay", "--audit", filepath.Join(r.Dir, "missing.json"), "--config", path); err == nil || exitCode(err) != 1 {
		t.Fatalf("missing log: %v", err)
	}
}
