package bench_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/rego"
)

// The multi-vault benchmark: a fleet of N vaults, each with 100 IP rules
// and 100 access policies, built by engine.Fleet from a vaults directory
// the way `vaultwall serve` loads one; the same 1,000 allowed requests
// spread round-robin over the vaults' hosts (vaults=1000: one request per
// vault) or all to the one vault (vaults=1). CPU per Check must not grow
// with the number of vaults: the bound is 1.1×.
const (
	fleetRequests = 1000 // requests in the data set, callers (one token each)
	fleetRules    = 100  // IP rules per vault, and access policies per vault
	fleetGroups   = 10   // group entries among a vault's access policies
	fleetDirect   = 60   // entries naming a caller; the rest name strangers
	fleetTenant   = "00000000-0000-0000-0000-0000000000c1"
	fleetIssuer   = "https://sts.bench.test/" + fleetTenant + "/"
)

// fleetSizes are the vault counts BenchmarkCheckVaults compares.
var fleetSizes = []int{1, 1000}

// benchFleet is a loaded fleet, its requests (every one allowed) and what
// building it cost.
type benchFleet struct {
	fleet    *engine.Fleet
	set      *engine.Set
	srv      *envoy.Server
	reqs     []*authv3.CheckRequest
	build    time.Duration // Fleet.Load of every vault
	heap     uint64        // heap retained by the fleet, in bytes
	vaults   int
	cleanups []func()
}

// fleets keeps built fleets across a benchmark's -count runs: building
// 1,000 vaults takes seconds, measuring one Check does not.
var fleets = struct {
	sync.Mutex
	m      map[int]*benchFleet
	tokens []string
	jwks   []byte
}{m: map[int]*benchFleet{}}

// fleetTokens signs one token per caller, once per process.
func fleetTokens(tb testing.TB) ([]string, []byte) {
	if fleets.tokens != nil {
		return fleets.tokens, fleets.jwks
	}
	// The test kit's issuer signs; only its key and JWKS are used (the
	// vaults read the keys from a file), so its server may end with tb.
	is := authztest.NewIssuer(tb)
	jwks := is.JWKS()
	now := time.Now()
	toks := make([]string, fleetRequests)
	for i := range toks {
		oid := fleetGUID(0xca11e4, i)
		toks[i] = is.Mint(map[string]any{
			"aud": "https://vault.azure.net", "iss": fleetIssuer, "tid": fleetTenant, "oid": oid, "sub": oid,
			"appid": fleetGUID(0xa99, i%100), "ver": "1.0", "idtyp": "app",
			"iat": now.Unix(), "nbf": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(12 * time.Hour).Unix(),
			"groups": []string{fleetGUID(0x9409, i%fleetGroups)},
		})
	}
	fleets.tokens, fleets.jwks = toks, jwks
	return toks, jwks
}

func fleetGUID(kind, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i) }

func fleetVaultName(v int) string { return fmt.Sprintf("bench-vault-%04d", v) }

// fleetRuleAddr is vault v's IP rule k: a /24 for even k, one address
// (.7) for odd k, every vault's rules distinct (in 10.0.0.0/7).
func fleetRuleAddr(v, k int) (netip.Prefix, netip.Addr) {
	n := v*fleetRules + k
	a := [4]byte{10 + byte(n>>16), byte(n >> 8), byte(n), 7}
	if k%2 == 1 {
		return netip.PrefixFrom(netip.AddrFrom4(a), 32), netip.AddrFrom4(a)
	}
	a[3] = 0
	p := netip.PrefixFrom(netip.AddrFrom4(a), 24)
	a[3] = byte(1 + (v+k)%250)
	return p, netip.AddrFrom4(a)
}

// fleetVaultDoc is vault v's file: a default-deny firewall with 100 IP
// rules and 100 access policies (group entries, then callers, then
// strangers).
func fleetVaultDoc(v int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `vault:
  name: %s
  tenantId: %s
  location: westeurope
  subscriptionId: 00000000-0000-0000-0000-0000000000c2
  resourceGroup: bench-rg
properties:
  publicNetworkAccess: Enabled
  enableRbacAuthorization: false
  networkAcls:
    defaultAction: Deny
    bypass: None
    ipRules:
`, fleetVaultName(v), fleetTenant)
	for k := range fleetRules {
		p, _ := fleetRuleAddr(v, k)
		if p.Bits() == 32 {
			fmt.Fprintf(&b, "      - value: %s\n", p.Addr())
		} else {
			fmt.Fprintf(&b, "      - value: %s\n", p)
		}
	}
	b.WriteString("  accessPolicies:\n")
	for j := range fleetRules {
		var oid, perms string
		switch {
		case j < fleetGroups:
			oid, perms = fleetGUID(0x9409, j), `{secrets: [get, list], keys: [get, wrapKey, unwrapKey]}`
		case j < fleetGroups+fleetDirect:
			oid, perms = fleetGUID(0xca11e4, (v*7+j)%fleetRequests), `{secrets: [get, list, set], keys: [get, list, wrapKey, unwrapKey, sign]}`
		default:
			oid, perms = fleetGUID(0x07e4, v*fleetRules+j), `{secrets: [get], certificates: [get, list]}`
		}
		fmt.Fprintf(&b, "    - tenantId: %s\n      objectId: %s\n      permissions: %s\n", fleetTenant, oid, perms)
	}
	return []byte(b.String())
}

// fleetOps are requests the group entries allow every caller.
var fleetOps = []struct{ method, path string }{
	{"GET", "/secrets/app-secret/"},
	{"GET", "/secrets"},
	{"POST", "/keys/app-kek/0123456789abcdef0123456789abcdef/unwrapkey"},
	{"POST", "/keys/app-kek/0123456789abcdef0123456789abcdef/wrapkey"},
	{"GET", "/keys/app-kek/"},
}

// fleetRequest is request i of the data set, to vault v.
func fleetRequest(i, v int, tok string, now time.Time) *authv3.CheckRequest {
	host := fleetVaultName(v) + ".vault.azure.net"
	op := fleetOps[i%len(fleetOps)]
	path := op.path + "?api-version=7.5"
	h := map[string]string{
		":authority": host, ":method": op.method, ":path": path, ":scheme": "https",
		"user-agent":             "azsdk-go-azsecrets/v1.5.1 (go1.26.8; linux)",
		"x-forwarded-proto":      "https",
		"x-request-id":           fmt.Sprintf("3f1c9a8e-0000-4000-8000-%012x", i),
		"x-ms-client-request-id": fmt.Sprintf("c0ffee00-0000-4000-8000-%012x", i),
		"accept":                 "application/json",
		"authorization":          "Bearer " + tok,
	}
	if op.method == "POST" {
		h["content-type"], h["content-length"] = "application/json", "120"
	}
	_, src := fleetRuleAddr(v, i%fleetRules)
	sock := func(a netip.Addr, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: a.String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock(src, uint32(30000+i))},
		Destination: &authv3.AttributeContext_Peer{Address: sock(netip.MustParseAddr("10.255.0.5"), 8443)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(now),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: fmt.Sprint(8306787481883314548 + i), Method: op.method, Headers: h,
				Path: path, Host: host, Scheme: "https", Protocol: "HTTP/1.1",
			},
		},
	}}
}

// writeFleet writes the main file, the issuer's keys and n vault files
// into dir and returns the main file's path.
func writeFleet(tb testing.TB, dir string, n int, jwks []byte) string {
	vd := filepath.Join(dir, "vaults.d")
	if err := os.MkdirAll(vd, 0o755); err != nil {
		tb.Fatal(err)
	}
	main := fmt.Sprintf(`vaults:
  dir: vaults.d
identity:
  issuers:
    - issuer: %s
      jwksFile: jwks.json
      audiences: [https://vault.azure.net]
policy:
  timeout: 5s # the verification pass runs on a shared, busy machine
log:
  level: warn
`, fleetIssuer)
	files := map[string][]byte{"vaultwall.yaml": []byte(main), "jwks.json": jwks}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for v := range n {
		if err := os.WriteFile(filepath.Join(vd, fleetVaultName(v)+".yaml"), fleetVaultDoc(v), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return filepath.Join(dir, "vaultwall.yaml")
}

// loadFleet builds (once per process and size) a fleet of n vaults through
// engine.Fleet and envoy.Server, and checks that every request of its data
// set is allowed.
func loadFleet(tb testing.TB, n int) *benchFleet {
	tb.Helper()
	fleets.Lock()
	defer fleets.Unlock()
	if f := fleets.m[n]; f != nil {
		return f
	}
	toks, jwks := fleetTokens(tb)
	dir, err := os.MkdirTemp("", "vaultwall-bench-fleet-")
	if err != nil {
		tb.Fatal(err)
	}
	f := &benchFleet{vaults: n, cleanups: []func(){func() { _ = os.RemoveAll(dir) }}}
	path := writeFleet(tb, dir, n, jwks)
	keys := token.NewKeyStore(token.StoreOptions{})
	f.cleanups = append(f.cleanups, func() { _ = keys.Close() })
	b := &engine.Builder{Keys: keys}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f.fleet = engine.NewFleet(path, b.Build, nil)
	if err := f.fleet.Load(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	f.build = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc {
		f.heap = after.HeapAlloc - before.HeapAlloc
	}
	f.set = f.fleet.Set()
	if got := f.set.Vaults.Len(); got != n {
		tb.Fatalf("the fleet serves %d vaults, want %d", got, n)
	}
	for _, rt := range f.set.Runtimes {
		if err := rt.Authenticator.WaitReady(tb.Context()); err != nil {
			tb.Fatal(err)
		}
	}
	f.srv = envoy.NewServer(nil, nil)
	f.srv.SetVaults(f.set.Vaults)
	now := time.Now()
	for i := range fleetRequests {
		f.reqs = append(f.reqs, fleetRequest(i, i%n, toks[i], now))
	}
	for i, cr := range f.reqs {
		resp, err := f.srv.Check(tb.Context(), cr)
		if err != nil {
			tb.Fatal(err)
		}
		if resp.GetOkResponse() == nil {
			tb.Fatalf("request %d (%s %s to %s) is not allowed: %v", i, cr.Attributes.Request.Http.Method,
				cr.Attributes.Request.Http.Path, cr.Attributes.Request.Http.Host, resp.GetDeniedResponse())
		}
	}
	fleets.m[n] = f
	return f
}

// cacheStats sums the token and verdict caches' counters over the vaults.
func (f *benchFleet) cacheStats() (tok token.CacheStats, pol rego.CacheStats) {
	for _, rt := range f.set.Runtimes {
		t, p := rt.Authenticator.CacheStats(), rt.Policy.CacheStats()
		tok.Hits, tok.Misses = tok.Hits+t.Hits, tok.Misses+t.Misses
		pol.Hits, pol.Misses = pol.Hits+p.Hits, pol.Misses+p.Misses
	}
	return tok, pol
}

// BenchmarkCheckVaults is one Check through envoy.Server on a fleet of
// vaults built by engine.Fleet: vaults=1 sends the 1,000 requests to the
// one vault, vaults=1000 one to each vault. Every request is allowed, its
// token and verdict cached after the first round. cpu-ns/op is the
// process's CPU per Check; build-ms is Fleet.Load of every vault and
// heap-KiB/vault the heap the fleet retains, per vault (both measured once,
// when the fleet is first built).
func BenchmarkCheckVaults(b *testing.B) {
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("vaults=%d", n), func(b *testing.B) {
			f := loadFleet(b, n)
			ctx := b.Context()
			reqs := f.reqs
			tok0, pol0 := f.cacheStats()
			b.ReportAllocs()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := f.srv.Check(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(reqs) {
					i = 0
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(f.build.Microseconds())/1e3, "build-ms")
			b.ReportMetric(float64(f.heap)/1024/float64(n), "heap-KiB/vault")
			tok, pol := f.cacheStats()
			b.ReportMetric(hitRate(tok.Hits-tok0.Hits, tok.Misses-tok0.Misses), "token-hit-%")
			b.ReportMetric(hitRate(pol.Hits-pol0.Hits, pol.Misses-pol0.Misses), "policy-hit-%")
		})
	}
}

// TestFleetVaults proves the multi-vault benchmark's data set: every
// request allowed, each vault answering its own host, a host of no vault
// refused. It builds 20 vaults, not 1,000.
func TestFleetVaults(t *testing.T) {
	if testing.Short() {
		t.Skip("signs a thousand tokens")
	}
	f := loadFleet(t, 20)
	t.Logf("20 vaults: built in %s, %.0f KiB of heap per vault", f.build.Round(time.Millisecond), float64(f.heap)/1024/20)
	seen := map[string]bool{}
	for _, cr := range f.reqs {
		seen[cr.Attributes.Request.Http.Host] = true
	}
	if len(seen) != 20 {
		t.Fatalf("the requests go to %d hosts, want 20", len(seen))
	}
	cr := fleetRequest(0, 20, fleets.tokens[0], time.Now()) // vault 20 is not in the fleet
	resp, err := f.srv.Check(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() != nil {
		t.Fatal("a host no vault answers to was allowed")
	}
}
