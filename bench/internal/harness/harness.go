package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Step prints a progress line.
func Step(s string) { fmt.Printf("== %s\n", s) }

// BuildServers builds the floor (bench/floor) into dir and, unless
// vaultwall names a prebuilt binary, vaultwall (cmd/vaultwall); it returns
// the two binaries. It runs in the module's root, as make does.
func BuildServers(ctx context.Context, dir, vaultwall string) (floorBin, vaultwallBin string, err error) {
	Step("building the floor and vaultwall")
	floorBin = filepath.Join(dir, "floor")
	if err := goCmd(ctx, "build", "-o", floorBin, "./bench/floor"); err != nil {
		return "", "", err
	}
	if vaultwall != "" {
		return floorBin, vaultwall, nil
	}
	vaultwallBin = filepath.Join(dir, "vaultwall")
	if err := goCmd(ctx, "build", "-o", vaultwallBin, "./cmd/vaultwall"); err != nil {
		return "", "", err
	}
	return floorBin, vaultwallBin, nil
}

// goCmd runs the go command with args, its output on stderr.
func goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// FreeAddr is a loopback address with a port nothing listens on now, for a
// server to be started on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Median is the median of v (the mean of the middle two for an even
// count), 0 for none. v is left as it is.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 15 * time.Second

// Proc is a started server process.
type Proc struct {
	Name string
	Pid  int
	// Log is the file its output goes to.
	Log string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit, once exited is closed
}

// Start starts argv with env added to the environment, its stderr and
// stdout in dir/name.log — stdout in the file given instead, when not nil.
func Start(dir, name string, env []string, stdout *os.File, argv ...string) (*Proc, error) {
	p := &Proc{Name: name, Log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.Pid = p.cmd.Process.Pid
	go func() { p.err = p.cmd.Wait(); logf.Close(); close(p.exited) }()
	return p, nil
}

// Stop sends SIGTERM and waits for the exit, killing the process when it
// has not exited 15 s later.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Poll calls try every 100 ms until it succeeds, the process exits or
// 60 s pass; what names the awaited condition in the error.
func (p *Proc) Poll(ctx context.Context, what string, try func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for !try() {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) before %s (log: %s)", p.Name, p.err, what, p.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s within 60s (log: %s)", p.Name, what, p.Log)
		}
	}
	return nil
}

// Get fetches url (2 s at most) and returns its status code and body,
// trimmed; 0 when there is no answer.
func Get(url string) (int, string) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// WaitHTTP waits until url answers 200.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	return p.Poll(ctx, url, func() bool { code, _ := Get(url); return code == http.StatusOK })
}

// WaitTCP waits until addr accepts connections.
func (p *Proc) WaitTCP(ctx context.Context, addr string) error {
	return p.Poll(ctx, "listener", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
