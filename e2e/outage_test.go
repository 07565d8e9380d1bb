package e2e_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestAuthorizerOutage is envoy.yaml's fail-closed promise, through the
// front: when vaultwall cannot answer in time — slower than the ext_authz
// timeout (0.5 s), stopped, or restarted while requests flow — the front
// answers status_on_error (503, which the Azure SDKs retry), with no Key
// Vault error code, and never lets a request through to the vault. A TCP
// relay the test controls sits between the front and vaultwall (the mTLS
// channel passes through it untouched), so vaultwall can be slowed down or
// replaced by a new process on another port.
func TestAuthorizerOutage(t *testing.T) {
	t.Parallel()
	r := startRelay(t)
	s := newSystem(t, "outage", front.EnvoyL4, nil, func(vw string) string { r.set(vw, 0); return r.addr() })
	if s.opts.StatusOnError != http.StatusServiceUnavailable || s.opts.FailureModeAllow {
		t.Fatalf("%s: status_on_error %d, failure_mode_allow %v; this test expects the shipped 503, fail closed", front.EnvoyL4, s.opts.StatusOnError, s.opts.FailureModeAllow)
	}
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	inside := addr("203.0.113.10")
	allowed := upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"}

	s.do(t, req{path: get, from: inside, as: &app}).wantAllowed(t, 200, allowed)

	t.Run("slower than the ext_authz timeout", func(t *testing.T) {
		// Every byte from vaultwall arrives 0.8 s late: past the 0.5 s
		// timeout, so the front gives up and answers 503.
		r.set(s.vw.grpc, 800*time.Millisecond)
		for _, rq := range []req{
			{path: get, from: inside, as: &app},              // would be allowed
			{path: get, from: addr("8.8.8.8"), as: &app},     // would be refused
			{path: get, from: inside},                        // would be challenged
			{path: get, from: inside, as: &app, http1: true}, // HTTP/1.1 alike
			{method: "DELETE", path: "/secrets/db-password" + api, from: inside, as: &app},
		} {
			wantStatusOnError(t, s.do(t, rq))
		}
		// Fast again (the late bytes still queued are dropped with their
		// connections): vaultwall decides again, and until the front has
		// a fresh channel it still answers 503, never anything else.
		r.set(s.vw.grpc, 0)
		r.dropAll()
		waitRecovered(t, s, req{path: get, from: inside, as: &app}, allowed)
	})

	t.Run("stopped", func(t *testing.T) {
		if err := s.vw.stop(); err != nil {
			t.Fatalf("stopping vaultwall: %v", err)
		}
		r.dropAll()
		for _, rq := range []req{
			{path: get, from: inside, as: &app},
			{path: get, from: inside, as: &app, http1: true},
			{path: get, from: addr("8.8.8.8"), as: &app},
		} {
			wantStatusOnError(t, s.do(t, rq))
		}
	})

	t.Run("restarted while requests flow", func(t *testing.T) {
		// vaultwall is back (a new process, on another port)...
		running := startVaultwall(t, s.cfg)
		r.set(running.grpc, 0)
		s.vw = running
		waitRecovered(t, s, req{path: get, from: inside, as: &app}, allowed)
		// ...and a client keeps asking, allowed and refused requests in
		// turn, while that process is stopped and replaced by another.
		var (
			mu      sync.Mutex
			results []result
			want    []int // 200 for the allowed client, 403 for the refused one
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rq, status := req{path: get, from: inside, as: &app}, 200
				if i%2 == 1 {
					rq, status = req{path: get, from: addr("8.8.8.8"), as: &app}, 403
				}
				res := s.do(t, rq)
				mu.Lock()
				results, want = append(results, res), append(want, status)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
		time.Sleep(300 * time.Millisecond)
		if err := running.stop(); err != nil {
			t.Errorf("stopping vaultwall under load: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // requests meet the stopped vaultwall
		next := startVaultwall(t, s.cfg)
		r.set(next.grpc, 0)
		s.vw = next
		// Until the front's next connection through the relay reaches the
		// new process it answers 503; then vaultwall decides again.
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := len(results)
			recovered := n >= 2 && results[n-1].status == want[n-1] && results[n-2].status == want[n-2]
			mu.Unlock()
			if recovered || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(stop)
		<-done

		var counts = map[int]int{}
		for i, res := range results {
			counts[res.status]++
			switch {
			case res.err != nil:
				t.Errorf("%s: %v", res.desc, res.err)
			case res.status == http.StatusServiceUnavailable:
				wantStatusOnError(t, res)
			case res.status != want[i]:
				t.Errorf("%s: status %d, want %d or the 503 of status_on_error", res.desc, res.status, want[i])
			case res.status == 200:
				res.wantAllowed(t, 200, allowed)
			default:
				res.wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))
			}
		}
		t.Logf("%d requests while vaultwall was restarted: %v (status → count)", len(results), counts)
		if counts[http.StatusServiceUnavailable] == 0 || counts[200] == 0 {
			t.Errorf("statuses %v: want 503s while vaultwall was down, and answers once it was back", counts)
		}
		n := len(results)
		if n < 2 || results[n-1].status != want[n-1] || results[n-2].status != want[n-2] {
			t.Errorf("the front did not recover within 20s of the new vaultwall: last statuses %v", counts)
		}
	})
}

// waitRecovered sends rq until it is allowed again (within 10 s), each
// answer before that being the front's 503.
func waitRecovered(t *testing.T, s *system, rq req, want upstream) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		res := s.do(t, rq)
		if res.status == 200 || time.Now().After(deadline) {
			res.wantAllowed(t, 200, want)
			return
		}
		wantStatusOnError(t, res)
		time.Sleep(50 * time.Millisecond)
	}
}

// wantStatusOnError asserts the front's own answer when vaultwall could not
// decide: 503, no Key Vault error code, and the vault never saw the request.
func wantStatusOnError(t *testing.T, r result) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", r.desc, r.err)
	}
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("%s: status %d, want status_on_error 503; body %q", r.desc, r.status, r.body)
	}
	if r.upstream != nil {
		t.Errorf("%s: reached the vault while vaultwall could not decide", r.desc)
	}
	if c := r.header.Get("X-Ms-Error-Code"); c != "" {
		t.Errorf("%s: x-ms-error-code %q: a front error must not look like a Key Vault answer", r.desc, c)
	}
}

// relay is a TCP relay from the front to vaultwall that the test steers:
// where it connects, how late it passes vaultwall's bytes on, and when it
// drops every connection.
type relay struct {
	ln net.Listener

	mu     sync.Mutex
	target string
	delay  time.Duration
	conns  map[net.Conn]bool
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, conns: map[net.Conn]bool{}}
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.dropAll() })
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// set points new connections at target and delays what vaultwall sends
// (on new and open connections) by delay.
func (r *relay) set(target string, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target, r.delay = target, delay
}

func (r *relay) current() (string, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target, r.delay
}

// dropAll closes every open connection.
func (r *relay) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
}

func (r *relay) track(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		r.conns[c] = true
	}
}

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		target, _ := r.current()
		out, err := net.DialTimeout("tcp", target, time.Second)
		if err != nil {
			in.Close()
			continue
		}
		r.track(in, out)
		go func() {
			_, _ = io.Copy(out, in)
			out.Close()
		}()
		go func() {
			defer in.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := out.Read(buf)
				if n > 0 {
					if _, d := r.current(); d > 0 {
						time.Sleep(d)
					}
					if _, werr := in.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
