package envoy_test

// The multi-vault front proxy, envoy-multi-vault.yaml: envoy.yaml with one
// virtual host per vault, each pinning its vault through the ext_authz
// per-filter config's check_settings.context_extensions {vault: <name>}.
// vaultwall selects the vault by the request's host and refuses (400) a pin
// that disagrees with it; these checks keep the pins and the domains in
// agreement, and the file otherwise identical to envoy.yaml.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

const (
	// vaultPinKey is the context_extensions key vaultwall reads the pinned
	// vault from.
	vaultPinKey = "vault"
	// vaultDomainSuffix makes a vault's default hostname: <name>.vault.azure.net.
	vaultDomainSuffix = ".vault.azure.net"
)

// vaultNameRE is Key Vault's rule for a vault name (3–24 letters, digits and
// hyphens, starting with a letter, ending with a letter or digit), in the
// lower case vaultwall compares hosts in.
var vaultNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,22}[a-z0-9]$`)

// checkVaultPins checks a multi-vault route configuration: every virtual
// host pins one of want.vaults, every domain of it is that vault's
// <name>.vault.azure.net (with or without the listener's port), no route
// overrides the pin or rewrites the host, and nothing catches other hosts.
// pinned collects the vaults pinned.
func checkVaultPins(f *findings, path string, rc *routev3.RouteConfiguration, authzName string, want frontFile, pinned map[string]bool) {
	rcExt, _ := pinSettings(rc.GetTypedPerFilterConfig(), authzName)
	if v, ok := rcExt[vaultPinKey]; ok {
		f.add(path, "typed_per_filter_config pins vault %q for the whole route configuration: each virtual host must pin its own", v)
	}
	if len(rc.GetVirtualHosts()) == 0 {
		f.add(path, "no virtual hosts")
	}
	for i, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d](%s)", path, i, vh.GetName())
		vhExt, ok := pinSettings(vh.GetTypedPerFilterConfig(), authzName)
		vault := merged(rcExt, vhExt)[vaultPinKey]
		switch {
		case !ok:
			f.add(vp, "no %s typed_per_filter_config: this virtual host's Checks carry no vault pin (want an ExtAuthzPerRoute with check_settings.context_extensions {%s: <vault name>})", authzName, vaultPinKey)
		case vault == "":
			f.add(vp, "no vault pin: the ext_authz per-filter config has no check_settings.context_extensions %q", vaultPinKey)
		case !vaultNameRE.MatchString(vault) || strings.Contains(vault, "--"):
			f.add(vp, "vault pin %q is not a Key Vault name in lower case", vault)
		}
		if vault != "" {
			if pinned[vault] {
				f.add(vp, "a second virtual host pins vault %q", vault)
			}
			pinned[vault] = true
			if !slices.Contains(want.vaults, vault) {
				f.add(vp, "pins vault %q, which is not one of this file's vaults %v", vault, want.vaults)
			}
		}
		if len(vh.GetDomains()) == 0 {
			f.add(vp, "no domains")
		}
		for _, d := range vh.GetDomains() {
			if vault != "" && !isVaultDomain(d, vault, want.port) {
				f.add(vp, "domain %q does not match the vault pin %q: want %s%s or %s%s:%d (vaultwall refuses a pin that disagrees with the host)",
					d, vault, vault, vaultDomainSuffix, vault, vaultDomainSuffix, want.port)
			}
			if strings.Contains(d, "*") {
				f.add(vp, "wildcard domain %q: hosts of no configured vault would reach vaultwall; leave unknown hosts to Envoy's 404", d)
			}
		}
		for j, r := range vh.GetRoutes() {
			rp := fmt.Sprintf("%s.routes[%d]", vp, j)
			rExt, _ := pinSettings(r.GetTypedPerFilterConfig(), authzName)
			eff := merged(rcExt, vhExt, rExt)
			if got := eff[vaultPinKey]; got != vault {
				f.add(rp, "the route's vault pin %q differs from its virtual host's %q (the more specific context_extensions win)", got, vault)
			}
			a := r.GetRoute()
			if a == nil {
				continue
			}
			if a.GetHostRewriteSpecifier() != nil {
				f.add(rp, "host rewrite: the vault would be told another host than the one vaultwall decided for")
			}
			for k, wc := range a.GetWeightedClusters().GetClusters() {
				wExt, _ := pinSettings(wc.GetTypedPerFilterConfig(), authzName)
				if got := merged(eff, wExt)[vaultPinKey]; got != vault {
					f.add(fmt.Sprintf("%s.weighted_clusters[%d]", rp, k), "vault pin %q differs from its virtual host's %q", got, vault)
				}
			}
		}
	}
}

// isVaultDomain reports whether an Envoy domain is vault's default host,
// with or without port. Envoy matches domains case-insensitively.
func isVaultDomain(domain, vault string, port uint32) bool {
	d := strings.ToLower(domain)
	host := vault + vaultDomainSuffix
	return d == host || (port != 0 && d == host+":"+strconv.FormatUint(uint64(port), 10))
}

// pinSettings returns the context_extensions of the ext_authz per-filter
// config in per (an ExtAuthzPerRoute, bare or in a FilterConfig), and
// whether there is one. Unreadable payloads are checkPerFilter's findings.
func pinSettings(per map[string]*anypb.Any, authzName string) (map[string]string, bool) {
	a, ok := per[authzName]
	if !ok {
		return nil, false
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, true
	}
	if fc, ok := m.(*routev3.FilterConfig); ok {
		if m, err = fc.GetConfig().UnmarshalNew(); err != nil {
			return nil, true
		}
	}
	c, ok := m.(*extauthzv3.ExtAuthzPerRoute)
	if !ok {
		return nil, true
	}
	return c.GetCheckSettings().GetContextExtensions(), true
}

// merged is Envoy's merge of context_extensions across per-filter configs,
// least specific first: keys from more specific configs override.
func merged(levels ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, l := range levels {
		maps.Copy(out, l)
	}
	return out
}

// checkSameAsBase requires a multi-vault file to equal base (envoy.yaml)
// except for its virtual hosts, and each of its virtual hosts to equal
// base's one except for name, domains and the vault pin: every security
// property of the base then holds for the multi-vault file, and a reader
// sees only the multi-vault difference. Compared as parsed YAML, so
// comments and layout may differ.
func checkSameAsBase(base string, data []byte) error {
	raw, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	var b, m any
	if err := yaml.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return err
	}
	var bv, mv [][]any
	cutVirtualHosts(b, &bv)
	cutVirtualHosts(m, &mv)
	f := &findings{}
	var diffs []string
	diffYAML(b, m, "", &diffs)
	if len(diffs) > 0 {
		f.add("file", "differs from %s outside the virtual hosts, at %s: this file is %s with one virtual host per vault; change both", base, strings.Join(diffs, ", "), base)
	}
	if len(bv) != 1 || len(bv[0]) != 1 || len(mv) != 1 {
		f.add("file", "%s has %d route configurations (want 1 with 1 virtual host), this file %d (want 1)", base, len(bv), len(mv))
		return f.err()
	}
	baseVH, ok := bv[0][0].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: the virtual host is not a mapping", base)
	}
	trim := func(vh map[string]any) map[string]any {
		c := maps.Clone(vh)
		delete(c, "name")
		delete(c, "domains")
		delete(c, "typed_per_filter_config")
		return c
	}
	for i, v := range mv[0] {
		vh, ok := v.(map[string]any)
		if !ok {
			f.add(fmt.Sprintf("virtual_hosts[%d]", i), "not a mapping")
			continue
		}
		var d []string
		diffYAML(trim(baseVH), trim(vh), "", &d)
		if len(d) > 0 {
			f.add(fmt.Sprintf("virtual_hosts[%d](%v)", i, vh["name"]), "differs from %s's virtual host beyond name, domains and vault pin, at %s", base, strings.Join(d, ", "))
		}
	}
	return f.err()
}

// cutVirtualHosts removes every route_config's virtual_hosts from v and
// appends them to out, in a fixed order.
func cutVirtualHosts(v any, out *[][]any) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if rc, ok := x[k].(map[string]any); ok && k == "route_config" {
				if vhs, ok := rc["virtual_hosts"].([]any); ok {
					*out = append(*out, vhs)
					delete(rc, "virtual_hosts")
				}
			}
			cutVirtualHosts(x[k], out)
		}
	case []any:
		for _, c := range x {
			cutVirtualHosts(c, out)
		}
	}
}

// diffYAML appends the paths where a and b differ (at most 10).
func diffYAML(a, b any, path string, out *[]string) {
	if len(*out) >= 10 {
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			diffYAML(am[k], bm[k], path+"."+k, out)
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diffYAML(as[i], bs[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, strings.TrimPrefix(path, "."))
	}
}

// TestEnvoyMultiVaultHosts runs Envoy on envoy-multi-vault.yaml with an
// ext_authz server that records each Check and denies it, and sends
// requests for each vault's host and for hosts of no vault. It shows what
// the file's comments promise: a vault's host reaches vaultwall with that
// vault's pin (Envoy matches the host case-insensitively, with or without
// the listed port), and any other host gets Envoy's 404 without a Check.
func TestEnvoyMultiVaultHosts(t *testing.T) {
	bin := realEnvoy(t)
	const name = "envoy-multi-vault.yaml"
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, ca := mintTLSFilesCA(t, string(data), dir)

	// The stand-in vaultwall: mTLS as the file's vaultwall cluster expects,
	// health SERVING, every Check recorded and denied with 403 and the pin.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{
		Certificates: []tls.Certificate{ca.IssueServer("vaultwall.internal").TLS()},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvTLS)))
	checks := make(chan *authv3.CheckRequest, 16)
	authv3.RegisterAuthorizationServer(gs, recordingAuthz{checks})
	hs := health.NewServer()
	hs.SetServingStatus(authzHealthName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	// A port nothing listens on, for the vault: no request may get there.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	grpcPort := lis.Addr().(*net.TCPAddr).Port
	for _, r := range [][2]string{
		{"address: 127.0.0.1, port_value: 9901", "address: 127.0.0.1, port_value: 0"},
		{"address: 0.0.0.0, port_value: 8443", "address: 127.0.0.1, port_value: 0"},
		{"address: vaultwall.internal, port_value: 9191", fmt.Sprintf("address: 127.0.0.1, port_value: %d", grpcPort)},
		{"address: vault.internal, port_value: 8443", fmt.Sprintf("address: 127.0.0.1, port_value: %d", closedPort)},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("%s no longer has exactly one %q", name, r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminFile := filepath.Join(dir, "admin-address")
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, bin, "-c", file, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warn", "--admin-address-path", adminFile)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("envoy log:\n%s", logs.String())
		}
	})
	addr := envoyListenerAddr(t, adminFile)

	cases := []struct {
		host      string
		wantCode  int
		wantVault string // "" = no Check at all
	}{
		{"contoso-vault.vault.azure.net", http.StatusForbidden, "contoso-vault"},
		{"contoso-vault.vault.azure.net:8443", http.StatusForbidden, "contoso-vault"},
		{"fabrikam-vault.vault.azure.net", http.StatusForbidden, "fabrikam-vault"},
		{"Fabrikam-Vault.VAULT.azure.net:8443", http.StatusForbidden, "fabrikam-vault"},
		{"northwind-vault.vault.azure.net", http.StatusNotFound, ""},
		{"contoso-vault.vault.azure.net.", http.StatusNotFound, ""},
		{"contoso-vault.vault.azure.net:9443", http.StatusNotFound, ""},
		{"vault.example.com", http.StatusNotFound, ""},
	}
	for _, c := range cases {
		code, body := proxiedGet(t, addr, ca.Pool(), c.host, "/secrets/db?api-version=7.5")
		if code != c.wantCode {
			t.Errorf("Host %s: status %d (%q), want %d", c.host, code, body, c.wantCode)
		}
		var got []*authv3.CheckRequest
	drain:
		for {
			select {
			case r := <-checks:
				got = append(got, r)
			default:
				break drain
			}
		}
		switch {
		case c.wantVault == "" && len(got) > 0:
			t.Errorf("Host %s: %d Checks reached vaultwall (context_extensions %v); want none, Envoy's 404", c.host, len(got), got[0].GetAttributes().GetContextExtensions())
		case c.wantVault != "" && len(got) != 1:
			t.Errorf("Host %s: %d Checks, want 1", c.host, len(got))
		case c.wantVault != "":
			attrs := got[0].GetAttributes()
			if ext := attrs.GetContextExtensions(); len(ext) != 1 || ext[vaultPinKey] != c.wantVault {
				t.Errorf("Host %s: context_extensions %v, want {%s: %s}", c.host, ext, vaultPinKey, c.wantVault)
			}
			if h := attrs.GetRequest().GetHttp().GetHost(); h != c.host {
				t.Errorf("Host %s: the Check's host is %q; vaultwall selects the vault by it", c.host, h)
			}
		}
	}
}

// recordingAuthz denies every Check, recording it.
type recordingAuthz struct{ seen chan<- *authv3.CheckRequest }

func (r recordingAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r.seen <- req
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			Body:   "pinned " + req.GetAttributes().GetContextExtensions()[vaultPinKey],
		}},
	}, nil
}

// envoyListenerAddr waits for Envoy to be ready and returns its listener's
// address, read from the admin interface.
func envoyListenerAddr(t *testing.T, adminFile string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		admin, err := os.ReadFile(adminFile)
		if err != nil || len(admin) == 0 {
			continue
		}
		base := "http://" + strings.TrimSpace(string(admin))
		resp, err := http.Get(base + "/ready")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		resp, err = http.Get(base + "/listeners?format=json")
		if err != nil {
			t.Fatal(err)
		}
		var ls struct {
			ListenerStatuses []struct {
				LocalAddress struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue int    `json:"port_value"`
					} `json:"socket_address"`
				} `json:"local_address"`
			} `json:"listener_statuses"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ls)
		resp.Body.Close()
		if err != nil || len(ls.ListenerStatuses) != 1 || ls.ListenerStatuses[0].LocalAddress.SocketAddress.PortValue == 0 {
			t.Fatalf("admin /listeners: %+v, %v", ls, err)
		}
		sa := ls.ListenerStatuses[0].LocalAddress.SocketAddress
		return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue))
	}
	t.Fatal("Envoy did not become ready in 30s")
	return ""
}

// proxiedGet sends one HTTP/1.1 GET as the L4 load balancer would deliver
// it: a PROXY v2 header (client 203.0.113.10), then TLS to Envoy.
func proxiedGet(t *testing.T, addr string, roots *x509.CertPool, host, path string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11")
	hdr = binary.BigEndian.AppendUint16(hdr, 12)
	hdr = append(hdr, 203, 0, 113, 10, 127, 0, 0, 1)
	hdr = binary.BigEndian.AppendUint16(hdr, 40000)
	hdr = binary.BigEndian.AppendUint16(hdr, 8443)
	if _, err := conn.Write(hdr); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName: "server.internal", // mintTLSFiles: server.crt has SAN server.internal
		RootCAs:    roots,
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	})
	req, err := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Close = true
	if err := req.Write(tc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
