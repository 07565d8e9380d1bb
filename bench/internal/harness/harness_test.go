package harness_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/bench/internal/harness"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{9, 1, 5}, 5},
		{"even: the mean of the middle two", []float64{4, 1, 3, 10}, 3.5},
		{"repeats", []float64{2, 2, 1, 2}, 2},
	} {
		in := append([]float64(nil), tc.in...)
		if got := harness.Median(tc.in); got != tc.want {
			t.Errorf("%s: Median(%v) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("%s: Median reordered its input: %v, was %v", tc.name, tc.in, in)
			}
		}
	}
}

// TestFreeAddr: the address is on loopback and a server can listen on it.
func TestFreeAddr(t *testing.T) {
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q (%v), want 127.0.0.1:port", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	l.Close()
}

// TestProc starts a process whose output lands in its log, waits for a
// condition, and sees it exit: Poll then says so, naming the log.
func TestProc(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ready")
	p, err := harness.Start(dir, "sh", []string{"HARNESS_TEST=hello"}, nil,
		"sh", "-c", `echo "$HARNESS_TEST"; touch "$0"; sleep 0.3`, marker)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid <= 0 || p.Log != filepath.Join(dir, "sh.log") {
		t.Fatalf("Pid %d, Log %q", p.Pid, p.Log)
	}
	if err := p.Poll(t.Context(), "the marker", func() bool { _, err := os.Stat(marker); return err == nil }); err != nil {
		t.Fatal(err)
	}
	err = p.Poll(t.Context(), "never", func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), p.Log) {
		t.Fatalf("Poll after the exit: %v, want an error saying it exited, naming the log", err)
	}
	p.Stop() // already gone: returns at once
	out, err := os.ReadFile(p.Log)
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("log %q (%v), want the process's output with its environment", out, err)
	}
}

// TestStop ends a running process with SIGTERM.
func TestStop(t *testing.T) {
	p, err := harness.Start(t.TempDir(), "sleep", nil, nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if err := p.Poll(t.Context(), "anything", func() bool { return false }); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("after Stop: %v, want exited", err)
	}
}
