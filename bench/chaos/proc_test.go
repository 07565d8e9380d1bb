package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/bench/internal/harness"
)

// vaultwallBin is the binary TestMain builds from this tree.
var vaultwallBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds vaultwall once, with the race detector exactly when this
// test binary has it (as e2e does), then runs the tests.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vaultwall-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vaultwallBin = filepath.Join(dir, "vaultwall")
	args := []string{"build", "-o", vaultwallBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/vaultwall")...)
	cmd.Dir = "../.." // the module root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building vaultwall:", err)
		return 1
	}
	return m.Run()
}

// server is one `vaultwall serve` on fixed loopback ports, so that a restart
// answers where the load already sends.
type server struct {
	t          testing.TB
	cfgPath    string
	grpc, http string
	logPath    string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
	starts     int
}

func freePort(t testing.TB) string {
	t.Helper()
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func newServer(t testing.TB, cfgPath, grpcAddr, httpAddr string) *server {
	s := &server{t: t, cfgPath: cfgPath, grpc: grpcAddr, http: httpAddr, logPath: filepath.Join(filepath.Dir(cfgPath), "vaultwall.log")}
	s.start()
	t.Cleanup(func() {
		if s.running() {
			s.stop(syscall.SIGTERM)
		}
		if t.Failed() {
			out, _ := os.ReadFile(s.logPath)
			t.Logf("vaultwall log (last lines):\n%s", lastLines(out, 30))
		}
	})
	return s
}

// start runs the process and waits until /readyz answers 200.
func (s *server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(vaultwallBin, "serve", "--config", s.cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.starts++
	s.exited = make(chan struct{})
	exited, cmd := s.exited, s.cmd
	go func() { s.waitErr = cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for !s.ready() {
		if time.Now().After(deadline) {
			s.t.Fatalf("vaultwall not ready within 60s (start %d)", s.starts)
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("vaultwall exited before it was ready: %v\n%s", s.waitErr, lastLines(out, 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the exit; SIGTERM must end the process
// cleanly (exit 0) within its shutdown grace.
func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("vaultwall did not exit within 30s of %v", sig)
	}
	if sig == syscall.SIGTERM && s.waitErr != nil {
		s.t.Errorf("vaultwall after SIGTERM: %v", s.waitErr)
	}
	out, _ := os.ReadFile(s.logPath)
	if i := bytes.Index(out, []byte("WARNING: DATA RACE")); i >= 0 {
		s.t.Errorf("vaultwall reported a data race:\n%s", lastLines(out[i:], 60))
	}
	if bytes.Contains(out, []byte("panic:")) || bytes.Contains(out, []byte("goroutine ")) && bytes.Contains(out, []byte("[running]")) {
		s.t.Errorf("vaultwall's log holds a crash:\n%s", lastLines(out, 60))
	}
}

func (s *server) ready() bool {
	resp, err := http.Get("http://" + s.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// readyz is /readyz's status code and body.
func (s *server) readyz() (int, map[string]any) {
	resp, err := http.Get("http://" + s.http + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// sample is one reading of the process's resources.
type sample struct {
	at         time.Time
	rssKiB     float64
	goroutines float64
	fds        float64
}

func (s *server) sample() (sample, error) {
	pid := s.cmd.Process.Pid
	smp := sample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return smp, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			smp.rssKiB, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return smp, err
	}
	smp.fds = float64(len(fds))
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		return smp, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			smp.goroutines, _ = strconv.ParseFloat(rest, 64)
		}
	}
	return smp, sc.Err()
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
