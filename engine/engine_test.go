package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

const goodConfig = `
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, ipRules: [{value: 203.0.113.0/24}]}
`

func stubBuild(_ context.Context, cfg *config.Config) (*Runtime, error) {
	if cfg.Vault.Location == "explode" {
		return nil, config.Errorf("vault.location", config.ErrInvalidValue, "the build refused it")
	}
	return &Runtime{Pipeline: &authz.Pipeline{Vault: cfg.AuthzVault()}}, nil
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	var swaps []uint64
	e := New(path, stubBuild, nil, func(rt *Runtime) { swaps = append(swaps, rt.Generation) })
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := e.Current()
	if first == nil || first.Generation != 1 || first.Config.Vault.Name != "contoso-vault" {
		t.Fatalf("first load: %+v", first)
	}

	// Unchanged input: no rebuild.
	if err := e.Load(t.Context()); err != nil || e.Current() != first {
		t.Fatalf("reload of unchanged file rebuilt: %v", err)
	}

	// A config that does not validate: refused with file, line and field.
	write(t, path, strings.Replace(goodConfig, "203.0.113.0/24", "203.0.113.300/24", 1))
	err := e.Load(t.Context())
	if err == nil || !errors.Is(err, config.ErrInvalidPrefix) {
		t.Fatalf("bad config accepted: %v", err)
	}
	if want := path + ":4: properties.networkAcls.ipRules[0].value"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	if e.Current() != first {
		t.Fatal("running configuration replaced by a bad one")
	}
	if st := e.Status(); !st.Loaded || st.LastError == "" || st.Failures != 1 {
		t.Errorf("status = %+v", st)
	}

	// A config the build step refuses: also annotated, also kept out.
	write(t, path, strings.Replace(goodConfig, "westeurope", "explode", 1))
	err = e.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), path+":2: vault.location") {
		t.Fatalf("build error = %v", err)
	}
	if e.Current() != first {
		t.Fatal("running configuration replaced by one that failed to build")
	}

	// A good one again.
	write(t, path, strings.Replace(goodConfig, "westeurope", "northeurope", 1))
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cur := e.Current(); cur.Generation != 2 || cur.Config.Vault.Location != "northeurope" {
		t.Fatalf("second load: %+v", cur)
	}
	if st := e.Status(); st.LastError != "" {
		t.Errorf("error not cleared: %+v", st)
	}
	if len(swaps) != 2 {
		t.Errorf("swaps = %v", swaps)
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	e := New(path, stubBuild, nil)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Watch(ctx, time.Minute) }()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond) // let the watcher register
	write(t, path, strings.Replace(goodConfig, "westeurope", "northeurope", 1))
	deadline := time.Now().Add(5 * time.Second)
	for e.Current().Config.Vault.Location != "northeurope" {
		if time.Now().After(deadline) {
			t.Fatal("change not picked up within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestoringRunningFileClearsError: after a refused edit, putting back
// the exact file in force clears /readyz's lastError and
// so vaultwall_config_last_reload_failed (a function of it), and says so in the log (issue 13,
// item 4).
func TestRestoringRunningFileClearsError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	var logs bytes.Buffer
	e := New(path, stubBuild, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	write(t, path, strings.Replace(goodConfig, "203.0.113.0/24", "203.0.113.300/24", 1))
	if err := e.Load(t.Context()); err == nil {
		t.Fatal("bad config accepted")
	}
	if st := e.Status(); st.LastError == "" {
		t.Fatalf("refused edit not shown: %+v", st)
	}

	write(t, path, goodConfig)
	if err := e.Load(t.Context()); err != nil {
		t.Fatalf("restored file: %v", err)
	}
	if st := e.Status(); st.LastError != "" || st.Generation != 1 || st.Failures != 1 {
		t.Errorf("after restoring the file in force: %+v; want no lastError, generation 1, 1 failure counted", st)
	}
	if !strings.Contains(logs.String(), "configuration restored to the one in force") {
		t.Errorf("no log line for the restore:\n%s", logs.String())
	}
}
