package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/server"
)

// The vaultwall binary built once from this tree for the tests that need a
// real process: no -ldflags, so the version comes from the build info, and
// -buildvcs=auto, so a GOFLAGS=-buildvcs=false does not keep the commit out.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func vaultwallBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "vaultwall-cmd-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "vaultwall")
		cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, "./cmd/vaultwall")
		cmd.Dir = "../.." // the module root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// readyz is the part of /readyz these tests read.
type readyz struct {
	Ready  bool `json:"ready"`
	Config struct {
		Generation uint64 `json:"generation"`
	} `json:"config"`
}

func getReadyz(addr string) (readyz, error) {
	var r readyz
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// TestSIGHUPReloads runs the built binary on the example configuration,
// sends it SIGHUP and sees the process live on with a new configuration
// generation (in /readyz and the log); SIGTERM then stops it cleanly.
func TestSIGHUPReloads(t *testing.T) {
	bin := vaultwallBinary(t)
	cfgPath := addrFileConfigs(t)["example"]
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addrs.json")
	logPath := filepath.Join(dir, "vaultwall.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	var addrs server.Addrs
	waitFor(t, exited, logText, "the address file", func() bool {
		b, err := os.ReadFile(addrFile)
		return err == nil && json.Unmarshal(b, &addrs) == nil
	})
	var r readyz
	waitFor(t, exited, logText, "ready at generation 1", func() bool {
		r, err = getReadyz(addrs.HTTP)
		return err == nil && r.Ready && r.Config.Generation == 1
	})

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, exited, logText, "ready at generation 2 after SIGHUP", func() bool {
		r, err = getReadyz(addrs.HTTP)
		return err == nil && r.Ready && r.Config.Generation == 2
	})
	log := logText()
	for _, want := range []string{"reload requested", "signal=hangup", "generation=2"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logText())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15s after SIGTERM")
	}
}

// waitFor polls cond for up to 15s, failing early if the process exits.
func waitFor(t *testing.T, exited <-chan error, logText func() string, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("waiting for %s: the process exited (%v):\n%s", what, err, logText())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out:\n%s", what, logText())
		}
	}
}

// TestBuiltBinaryVersion: a binary built without -ldflags reports what its
// own build info gives (the module version, or the commit of a checkout when
// Go stamped one; a git worktree or a tarball give "dev"), the same through
// `version` and `--version`.
func TestBuiltBinaryVersion(t *testing.T) {
	bin := vaultwallBinary(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := "vaultwall " + versionOf("", func() (*debug.BuildInfo, bool) { return bi, true }) + "\n"
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || string(out) != want {
			t.Errorf("vaultwall %s = %q (%v), want %q (main module %s %q)", arg, out, err, want, bi.Main.Path, bi.Main.Version)
		}
	}
}
