package front

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// Envoy is a real Envoy started from one of the repository's shipped
// front-proxy files (envoy/envoy.yaml or envoy/envoy-behind-l7.yaml),
// rendered for the test by RenderEnvoy.
//
// A real Envoy's ext_authz calls are not recorded: Checks returns nil, and
// tests that must run on both fronts assert on what the client and the
// upstream saw, never on the check log.
type Envoy struct {
	bin, version string
	addr         netip.AddrPort
}

var _ Front = (*Envoy)(nil)

// StartEnvoy renders the shipped file opts names (RenderEnvoy), starts bin
// on it and waits until Envoy is LIVE, for the rest of the test. Output goes
// to a log file whose tail the test prints when it fails.
func StartEnvoy(tb testing.TB, bin string, opts Options) *Envoy {
	tb.Helper()
	e := &Envoy{bin: bin, version: envoyVersion(bin)}
	dir := tb.TempDir()
	cfg, err := RenderEnvoy(tb, opts, dir)
	if err != nil {
		tb.Fatalf("front: %s: %v", e.Name(), err)
	}
	adminFile := filepath.Join(dir, "admin-address")
	logFile := filepath.Join(dir, "envoy.log")
	out, err := os.Create(logFile)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warn", "--admin-address-path", adminFile)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("front: %s: %v", e.Name(), err)
	}
	// exited is closed once the process is gone, so both the wait for
	// readiness and the cleanup can watch it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); out.Close(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			tb.Logf("front: envoy log (tail):\n%s", tail(logFile, 60))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := waitEnvoy(ctx, adminFile, exited, func() error { return waitErr })
	if err != nil {
		tb.Fatalf("front: %s: %v\n%s", e.Name(), err, tail(logFile, 60))
	}
	e.addr = addr
	return e
}

// Name implements Front.
func (e *Envoy) Name() string { return "envoy (" + e.bin + ", " + e.version + ")" }

// Addr implements Front.
func (e *Envoy) Addr() netip.AddrPort { return e.addr }

// Checks implements Front: a real Envoy's checks are not recorded.
func (e *Envoy) Checks() []Check { return nil }

// RenderEnvoy writes the shipped front-proxy file opts.EnvoyConfig names
// (default by ProxyProtocol: EnvoyL4 or EnvoyL7) into dir as a runnable
// JSON bootstrap and returns its path. Only the environment changes:
//
//   - the admin interface and the listener bind 127.0.0.1 port 0 (the
//     admin reports the ports);
//   - the listener's certificate and client CA are the test's (written to
//     files in dir), the virtual host's domains are opts.Domains or "*"
//     (a file with several virtual hosts keeps its own);
//   - the ext_authz cluster points at opts.AuthzAddr, with the test's
//     client certificate, CA and server name (AuthzTLS), or plaintext when
//     AuthzTLS is nil;
//   - the vault cluster points at opts.Upstream, trusting UpstreamCAPEM
//     (its sni and SAN match stay as shipped), or plaintext for http.
//
// Every behaviour knob stays as shipped, and options whose knobs differ
// from the file (see Shipped) are refused, so what runs is the file users
// deploy and what the stand-in reproduces.
func RenderEnvoy(tb testing.TB, opts Options, dir string) (string, error) {
	name := opts.EnvoyConfig
	if name == "" {
		name = EnvoyL7
		if opts.ProxyProtocol {
			name = EnvoyL4
		}
	}
	p, err := loadFront(name)
	if err != nil {
		return "", err
	}
	shipped, err := p.options()
	if err != nil {
		return "", err
	}
	if diff := knobDiff(opts, shipped); len(diff) > 0 {
		return "", fmt.Errorf("options differ from %s:\n  %s", name, strings.Join(diff, "\n  "))
	}
	if err := p.render(tb, opts, dir); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := p.bootstrap.ValidateAll(); err != nil {
		return "", fmt.Errorf("%s rendered: %w", name, err)
	}
	j, err := protojson.MarshalOptions{Indent: "  ", UseProtoNames: true}.Marshal(p.bootstrap)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.TrimSuffix(filepath.Base(name), ".yaml")+".json")
	if err := os.WriteFile(path, j, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

func (p *frontParts) render(tb testing.TB, o Options, dir string) error {
	loopback := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	if p.bootstrap.GetAdmin() == nil {
		return errors.New("no admin interface: the suite reads the listener's port from it")
	}
	p.bootstrap.Admin.Address = loopback(0)
	p.listener.Address = loopback(0)

	// The listener's TLS.
	if p.tls == nil || o.ServerCert == nil {
		return errors.New("the shipped listeners serve TLS: ServerCert is required")
	}
	cert, key := authztest.WriteKeyPair(tb, dir, "server", *o.ServerCert)
	ctc := p.tls.GetCommonTlsContext()
	if len(ctc.GetTlsCertificates()) != 1 {
		return fmt.Errorf("listener has %d certificates, want 1", len(ctc.GetTlsCertificates()))
	}
	setFile(ctc.TlsCertificates[0].CertificateChain, cert)
	setFile(ctc.TlsCertificates[0].PrivateKey, key)
	if vc := ctc.GetValidationContext(); vc != nil {
		if o.ClientCAs == nil || len(o.ClientCAPEM) == 0 {
			return errors.New("the listener verifies client certificates: set ClientCAs and ClientCAPEM")
		}
		vc.TrustedCa = fileSource(writeFile(tb, dir, "client-ca.pem", o.ClientCAPEM))
	} else if o.ClientCAs != nil {
		return errors.New("ClientCAs set, but the listener requests no client certificate")
	}
	if err := repack(p.tlsSocket, p.tls); err != nil {
		return err
	}

	// Hosts. A file with several virtual hosts keeps its domains: they
	// are what selects each one's vault pin.
	if vhs := p.hcm.GetRouteConfig().GetVirtualHosts(); len(vhs) > 1 {
		if len(o.Domains) > 0 {
			return fmt.Errorf("%d virtual hosts keep their own domains: Domains must be empty", len(vhs))
		}
	} else {
		domains := o.Domains
		if len(domains) == 0 {
			domains = []string{"*"}
		}
		for _, vh := range vhs {
			vh.Domains = domains
		}
	}

	// The authorizer.
	if err := pointAt(p.authzCluster.GetLoadAssignment(), o.AuthzAddr); err != nil {
		return fmt.Errorf("cluster %s: %w", p.authzCluster.GetName(), err)
	}
	if o.AuthzTLS == nil {
		p.authzCluster.TransportSocket = nil
	} else {
		a := o.AuthzTLS
		cert, key := authztest.WriteKeyPair(tb, dir, "envoy-client", a.Certificate)
		ca := writeFile(tb, dir, "vaultwall-ca.pem", a.CAPEM)
		if err := upstreamTLS(p.authzCluster.GetTransportSocket(), a.ServerName, cert, key, ca); err != nil {
			return fmt.Errorf("cluster %s: %w", p.authzCluster.GetName(), err)
		}
	}

	// The vault.
	if o.Upstream == nil {
		return errors.New("Upstream is required")
	}
	if err := pointAt(p.vaultCluster.GetLoadAssignment(), o.Upstream.Host); err != nil {
		return fmt.Errorf("cluster %s: %w", p.vaultCluster.GetName(), err)
	}
	switch o.Upstream.Scheme {
	case "http":
		p.vaultCluster.TransportSocket = nil
	case "https":
		if len(o.UpstreamCAPEM) == 0 {
			return errors.New("an https Upstream needs UpstreamCAPEM")
		}
		ca := writeFile(tb, dir, "vault-ca.pem", o.UpstreamCAPEM)
		if err := upstreamTLS(p.vaultCluster.GetTransportSocket(), "", "", "", ca); err != nil {
			return fmt.Errorf("cluster %s: %w", p.vaultCluster.GetName(), err)
		}
	default:
		return fmt.Errorf("Upstream scheme %q", o.Upstream.Scheme)
	}

	return repack(p.hcmFilter, p.hcm)
}

// upstreamTLS patches a cluster's UpstreamTlsContext: the server name (sni
// and the DNS SAN required) and the files, each only when given.
func upstreamTLS(ts *corev3.TransportSocket, serverName, cert, key, ca string) error {
	if ts == nil {
		return errors.New("no transport_socket to patch")
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		return err
	}
	ctc := u.GetCommonTlsContext()
	if serverName != "" {
		u.Sni = serverName
	}
	if cert != "" {
		if len(ctc.GetTlsCertificates()) != 1 {
			return fmt.Errorf("%d client certificates, want 1", len(ctc.GetTlsCertificates()))
		}
		setFile(ctc.TlsCertificates[0].CertificateChain, cert)
		setFile(ctc.TlsCertificates[0].PrivateKey, key)
	}
	vc := ctc.GetValidationContext()
	if vc == nil {
		return errors.New("no validation_context: the shipped clusters verify their servers")
	}
	vc.TrustedCa = fileSource(ca)
	if serverName != "" {
		for _, m := range vc.GetMatchTypedSubjectAltNames() {
			if m.GetSanType() == tlsv3.SubjectAltNameMatcher_DNS {
				m.Matcher = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: serverName}}
			}
		}
	}
	return repack(ts, u)
}

// pointAt makes a cluster's single endpoint host:port (an IP literal).
func pointAt(la *endpointv3.ClusterLoadAssignment, hostport string) error {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return fmt.Errorf("address %q: %w", hostport, err)
	}
	var sa []*corev3.SocketAddress
	for _, e := range la.GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			sa = append(sa, lb.GetEndpoint().GetAddress().GetSocketAddress())
		}
	}
	if len(sa) != 1 || sa[0] == nil {
		return fmt.Errorf("%d endpoints, want 1", len(sa))
	}
	sa[0].Address = ap.Addr().String()
	sa[0].PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}
	return nil
}

func setFile(ds *corev3.DataSource, path string) {
	ds.Specifier = &corev3.DataSource_Filename{Filename: path}
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// waitEnvoy waits for the admin address file, then for /ready to say LIVE,
// and returns the front listener's bound address.
func waitEnvoy(ctx context.Context, adminFile string, exited <-chan struct{}, exitErr func() error) (netip.AddrPort, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var admin string
	for {
		select {
		case <-exited:
			return netip.AddrPort{}, fmt.Errorf("envoy exited before it was ready: %v", exitErr())
		case <-ctx.Done():
			return netip.AddrPort{}, fmt.Errorf("envoy not ready (admin %q): %w", admin, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		// Read each time: the file may be seen half-written.
		b, err := os.ReadFile(adminFile)
		if admin = strings.TrimSpace(string(b)); err != nil || admin == "" {
			continue
		}
		resp, err := hc.Get("http://" + admin + "/ready")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "LIVE" {
			continue
		}
		return listenerAddr(hc, admin)
	}
}

// listenerAddr asks the admin interface where the front listener is bound
// (admin.v3.Listeners; protojson reads both of its JSON spellings).
func listenerAddr(hc *http.Client, admin string) (netip.AddrPort, error) {
	resp, err := hc.Get("http://" + admin + "/listeners?format=json")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return parseListeners(b)
}

func parseListeners(b []byte) (netip.AddrPort, error) {
	var ls adminv3.Listeners
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &ls); err != nil {
		return netip.AddrPort{}, fmt.Errorf("admin /listeners: %w", err)
	}
	if n := len(ls.GetListenerStatuses()); n != 1 {
		return netip.AddrPort{}, fmt.Errorf("admin /listeners: %d listeners, want 1", n)
	}
	sa := ls.GetListenerStatuses()[0].GetLocalAddress().GetSocketAddress()
	ap, err := netip.ParseAddrPort(net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("admin /listeners: listener at %v", sa)
	}
	return ap, nil
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// envoyVersion is the first line of `envoy --version`, trimmed.
func envoyVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndex(s, "version: "); i >= 0 {
		s = s[i+len("version: "):]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
