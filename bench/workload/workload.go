package workload

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Kind is the outcome a request is made to have.
type Kind uint8

const (
	Allowed        Kind = iota // passes every stage
	FirewallDenied             // valid token, address outside every rule: 403 ForbiddenByFirewall
	Unauthorized               // 401: no token, an expired one, or a bad signature
	PolicyDenied               // valid token and address, an operation no entry grants: 403 AccessDenied
	numKinds
)

var kindNames = [...]string{"allowed", "firewall-denied", "401", "policy-denied"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds lists every kind, in the order the mix is reported.
func Kinds() []Kind { return []Kind{Allowed, FirewallDenied, Unauthorized, PolicyDenied} }

// Options size a workload. The zero value of a field takes its default.
type Options struct {
	IPRules        int // networkAcls.ipRules (default 1000)
	SubnetRules    int // networkAcls.virtualNetworkRules, each with its subnet (default 200)
	AccessPolicies int // properties.accessPolicies (default 1000)
	Callers        int // distinct identities, one token each (default 1000)
	Requests       int // size of the request data set (default 10000)
	// Share of each kind in the data set, in percent; the rest is Allowed.
	// Defaults: 10% firewall-denied, 10% 401, 10% policy-denied.
	FirewallPct, UnauthorizedPct, PolicyPct int
	// Sources, when positive, draws the client addresses from a fixed pool
	// of that many addresses inside the rules (and a tenth as many outside
	// every rule, for the firewall denials) instead of a fresh random host
	// per request: a load generator that opens a connection per client
	// address (make bench-envoy, PROXY protocol v2) then keeps a bounded
	// number of connections. 0 (make bench) keeps the random hosts.
	Sources int
	Seed    uint64
	// Now is the tokens' issue time (default time.Now); they expire 12h later.
	Now time.Time
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.IPRules, 1000)
	def(&o.SubnetRules, 200)
	def(&o.AccessPolicies, 1000)
	def(&o.Callers, 1000)
	def(&o.Requests, 10000)
	def(&o.FirewallPct, 10)
	def(&o.UnauthorizedPct, 10)
	def(&o.PolicyPct, 10)
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
}

// Request is one CheckRequest of the data set and the outcome it is made
// to have.
type Request struct {
	Kind  Kind
	Check *authv3.CheckRequest
}

// Workload is a generated vault configuration, its issuer's keys, and a
// request data set.
type Workload struct {
	Options  Options
	Config   []byte // vault.yaml; the issuer's keys are in ./jwks.json beside it
	JWKS     []byte
	Requests []Request
	// Tokens is the number of distinct bearer tokens the data set carries.
	Tokens int
}

// Identifiers of the generated vault.
const (
	Tenant = "00000000-0000-0000-0000-0000000000b1"
	Issuer = "https://sts.bench.test/" + Tenant + "/"
	Vault  = "bench-vault"
	sub    = "/subscriptions/00000000-0000-0000-0000-0000000000b2/resourceGroups/bench-rg/providers/Microsoft.Network/virtualNetworks/"
	kid    = "bench-key"
)

func guid(kind, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i) }

const (
	kindCaller = 0xca11e4
	kindApp    = 0xa99
	kindGroup  = 0x9409
	kindOther  = 0x07e4
)

// Grants. Group entries hold the base set every caller has; direct entries
// add to it. Nothing grants delete or purge: those make the policy denials.
var (
	groupGrant  = `{secrets: [get, list], keys: [get, wrapKey, unwrapKey]}`
	directGrant = `{secrets: [get, list, set], keys: [get, list, wrapKey, unwrapKey, sign]}`
)

// Generate builds a workload: deterministic for a seed, except for the
// issuer's RSA key.
func Generate(o Options) (*Workload, error) {
	o.defaults()
	if o.FirewallPct+o.UnauthorizedPct+o.PolicyPct > 100 {
		return nil, fmt.Errorf("workload: the denial shares add up to more than 100%%")
	}
	if o.IPRules > 1<<14 || o.SubnetRules > 1<<16 {
		return nil, fmt.Errorf("workload: at most %d IP rules and %d subnet rules", 1<<14, 1<<16)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	jwks, err := publicJWKS(key)
	if err != nil {
		return nil, err
	}
	w := &Workload{Options: o, JWKS: jwks}
	w.Config = config(o)

	rng := mrand.New(mrand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	groups := groupCount(o)
	callers := make([]string, o.Callers)
	for i := range callers {
		callers[i], err = sign(key, kid, callerClaims(o, i, groups, o.Now.Add(12*time.Hour)))
		if err != nil {
			return nil, err
		}
	}
	// 401s: a third without a token (an Azure SDK's first, challenge-seeking
	// request), a third expired, a third signed by a key the issuer never
	// published.
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	const badTokens = 20
	expired := make([]string, badTokens)
	forged := make([]string, badTokens)
	for i := range badTokens {
		if expired[i], err = sign(key, kid, callerClaims(o, i, groups, o.Now.Add(-time.Hour))); err != nil {
			return nil, err
		}
		if forged[i], err = sign(stranger, kid, callerClaims(o, i, groups, o.Now.Add(12*time.Hour))); err != nil {
			return nil, err
		}
	}
	var inside, outside []netip.Addr
	if o.Sources > 0 {
		for range o.Sources {
			inside = append(inside, allowedAddr(rng, o))
		}
		for range max(1, o.Sources/10) {
			outside = append(outside, deniedAddr(rng))
		}
	}
	used := map[string]bool{}
	for n := range o.Requests {
		kind := pickKind(rng, o)
		i := rng.IntN(o.Callers)
		tok := callers[i]
		var addr netip.Addr
		if inside != nil {
			addr = inside[rng.IntN(len(inside))]
		} else {
			addr = allowedAddr(rng, o)
		}
		op := allowedOp(rng, i)
		switch kind {
		case FirewallDenied:
			if outside != nil {
				addr = outside[rng.IntN(len(outside))]
			} else {
				addr = deniedAddr(rng)
			}
		case PolicyDenied:
			op = deniedOp(rng, i)
		case Unauthorized:
			switch rng.IntN(3) {
			case 0:
				tok = ""
			case 1:
				tok = expired[rng.IntN(badTokens)]
			default:
				tok = forged[rng.IntN(badTokens)]
			}
		}
		if tok != "" {
			used[tok] = true
		}
		w.Requests = append(w.Requests, Request{Kind: kind, Check: checkRequest(n, addr, op, tok, o.Now)})
	}
	w.Tokens = len(used)
	return w, nil
}

func groupCount(o Options) int { return max(1, min(50, o.AccessPolicies/4)) }

func pickKind(rng *mrand.Rand, o Options) Kind {
	p := rng.IntN(100)
	switch {
	case p < o.FirewallPct:
		return FirewallDenied
	case p < o.FirewallPct+o.UnauthorizedPct:
		return Unauthorized
	case p < o.FirewallPct+o.UnauthorizedPct+o.PolicyPct:
		return PolicyDenied
	}
	return Allowed
}

// Mix counts the data set's requests by kind.
func (w *Workload) Mix() [numKinds]int {
	var m [numKinds]int
	for _, r := range w.Requests {
		m[r.Kind]++
	}
	return m
}

// config is the vault: default-deny firewall with IP and subnet rules,
// access policies (group entries first, then one per caller, then
// strangers).
func config(o Options) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by bench/workload: %d IP rules, %d subnet rules, %d access policies.
vault:
  name: %s
  tenantId: %s
  location: westeurope
properties:
  publicNetworkAccess: Enabled
  enableRbacAuthorization: false
  networkAcls:
    defaultAction: Deny
    bypass: None
    ipRules:
`, o.IPRules, o.SubnetRules, o.AccessPolicies, Vault, Tenant)
	for k := range o.IPRules {
		fmt.Fprintf(&b, "      - value: %s\n", ipRule(k))
	}
	if o.SubnetRules > 0 {
		b.WriteString("    virtualNetworkRules:\n")
		for s := range o.SubnetRules {
			fmt.Fprintf(&b, "      - id: %s\n", subnetID(s))
		}
	}
	b.WriteString("  accessPolicies:\n")
	groups := groupCount(o)
	for j := range o.AccessPolicies {
		oid, perms := guid(kindOther, j), directGrant
		switch {
		case j < groups:
			oid, perms = guid(kindGroup, j), groupGrant
		case j-groups < o.Callers:
			oid = guid(kindCaller, j-groups)
		}
		fmt.Fprintf(&b, "    - tenantId: %s\n      objectId: %s\n      permissions: %s\n", Tenant, oid, perms)
	}
	if o.SubnetRules > 0 {
		b.WriteString("network:\n  subnets:\n")
		for s := range o.SubnetRules {
			fmt.Fprintf(&b, "    - id: %s\n      addressPrefixes: [%s]\n", subnetID(s), subnetPrefix(s))
		}
	}
	fmt.Fprintf(&b, `identity:
  issuers:
    - issuer: %s
      jwksFile: jwks.json
      audiences: [https://vault.azure.net]
limits:
  maxIpRules: %d
  maxVirtualNetworkRules: %d
  maxAccessPolicies: %d
server:
  reflection: true
log:
  level: warn
`, Issuer, max(o.IPRules, 1000), max(o.SubnetRules, 200), max(o.AccessPolicies, 1024))
	return []byte(b.String())
}

// ipRule k is a /24 (even k) or a single address (odd k) in 100.64.0.0/10.
func ipRule(k int) string {
	a := [4]byte{100, 64 + byte(k>>8), byte(k), 0}
	if k%2 == 1 {
		a[3] = 7
		return netip.AddrFrom4(a).String()
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), 24).String()
}

func subnetID(s int) string {
	return fmt.Sprintf("%svnet%d/subnets/sn%d", sub, s/50, s)
}

func subnetPrefix(s int) string {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(s >> 8), byte(s), 0}), 24).String()
}

// allowedAddr is inside an IP rule (70%) or a subnet rule (30%).
func allowedAddr(rng *mrand.Rand, o Options) netip.Addr {
	if o.SubnetRules > 0 && rng.IntN(10) < 3 {
		s := rng.IntN(o.SubnetRules)
		return netip.AddrFrom4([4]byte{10, byte(s >> 8), byte(s), byte(1 + rng.IntN(250))})
	}
	k := rng.IntN(o.IPRules)
	host := byte(1 + rng.IntN(250))
	if k%2 == 1 {
		host = 7
	}
	return netip.AddrFrom4([4]byte{100, 64 + byte(k>>8), byte(k), host})
}

// deniedAddr is in 198.18.0.0/15, which no rule covers.
func deniedAddr(rng *mrand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(256)), byte(1 + rng.IntN(250))})
}

type op struct{ method, path string }

// Each caller works with a few objects of its own.
func secretName(caller, k int) string { return fmt.Sprintf("app%d-secret%d", caller%200, k) }
func keyName(caller int) string       { return fmt.Sprintf("app%d-kek", caller%200) }

const keyVersion = "0123456789abcdef0123456789abcdef"

func allowedOp(rng *mrand.Rand, caller int) op {
	switch p := rng.IntN(100); {
	case p < 55:
		return op{"GET", "/secrets/" + secretName(caller, rng.IntN(3)) + "/"}
	case p < 65:
		return op{"GET", "/secrets"}
	case p < 85:
		return op{"POST", "/keys/" + keyName(caller) + "/" + keyVersion + "/unwrapkey"}
	case p < 95:
		return op{"POST", "/keys/" + keyName(caller) + "/" + keyVersion + "/wrapkey"}
	default:
		return op{"GET", "/keys/" + keyName(caller) + "/"}
	}
}

func deniedOp(rng *mrand.Rand, caller int) op {
	switch rng.IntN(3) {
	case 0:
		return op{"DELETE", "/secrets/" + secretName(caller, rng.IntN(3))}
	case 1:
		return op{"DELETE", "/deletedsecrets/" + secretName(caller, rng.IntN(3))}
	default:
		return op{"DELETE", "/keys/" + keyName(caller)}
	}
}

func callerClaims(o Options, i, groups int, exp time.Time) map[string]any {
	oid := guid(kindCaller, i)
	app := guid(kindApp, i%100)
	c := map[string]any{
		"aud": "https://vault.azure.net", "iss": Issuer, "tid": Tenant, "oid": oid, "sub": oid,
		"appid": app, "ver": "1.0", "iat": o.Now.Unix(), "nbf": o.Now.Add(-5 * time.Minute).Unix(), "exp": exp.Unix(),
		"aio": "E2RgYJg3v7Z0a5rN+bench+workload+aio+value==", "idp": Issuer, "rh": "0.AAAA-bench-workload-rh-value.",
		"uti": fmt.Sprintf("bench-uti-%d", i), "xms_tcdt": 1600000000,
		"groups": []string{guid(kindGroup, i%groups)},
	}
	if i%2 == 0 {
		c["idtyp"], c["appidacr"] = "app", "2"
	} else {
		c["idtyp"], c["appidacr"], c["scp"] = "user", "0", "user_impersonation"
		c["upn"], c["name"] = fmt.Sprintf("user%d@bench.example", i), fmt.Sprintf("Bench User %d", i)
		c["amr"] = []string{"pwd", "mfa"}
		c["family_name"], c["given_name"] = "User", fmt.Sprintf("Bench%d", i)
	}
	return c
}

func sign(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, kid)
	_ = h.Set(jws.TypeKey, "JWT")
	b, err := jws.Sign(payload, jws.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(h)))
	return string(b), err
}

func publicJWKS(key *rsa.PrivateKey) ([]byte, error) {
	pub, err := jwk.FromRaw(key.Public())
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.KeyUsageKey: "sig", jwk.AlgorithmKey: "RS256"} {
		if err := pub.Set(k, v); err != nil {
			return nil, err
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	return json.MarshalIndent(set, "", "  ")
}

// checkRequest is what Envoy sends for one request from addr.
func checkRequest(n int, addr netip.Addr, o op, tok string, now time.Time) *authv3.CheckRequest {
	host := Vault + ".vault.azure.net"
	path := o.path + "?api-version=7.5"
	h := map[string]string{
		":authority":             host,
		":method":                o.method,
		":path":                  path,
		":scheme":                "https",
		"user-agent":             "azsdk-go-azsecrets/v1.5.1 (go1.26.8; linux)",
		"x-forwarded-proto":      "https",
		"x-request-id":           fmt.Sprintf("3f1c9a8e-0000-4000-8000-%012x", n),
		"x-ms-client-request-id": fmt.Sprintf("c0ffee00-0000-4000-8000-%012x", n),
		"accept":                 "application/json",
	}
	if o.method == "POST" || o.method == "PUT" {
		h["content-type"] = "application/json"
		h["content-length"] = "120"
	}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	sock := func(a netip.Addr, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: a.String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock(addr, uint32(30000+n%30000))},
		Destination: &authv3.AttributeContext_Peer{Address: sock(netip.MustParseAddr("10.255.0.5"), 8443)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(now),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: fmt.Sprint(8306787481883314548 + n), Method: o.method, Headers: h,
				Path: path, Host: host, Scheme: "https", Protocol: "HTTP/1.1",
			},
		},
	}}
}

// Files written by WriteDir.
const (
	ConfigFile   = "vault.yaml"
	JWKSFile     = "jwks.json"
	RequestsFile = "requests.json" // a JSON array of CheckRequests, as ghz --data-file takes it
)

// WriteDir writes the configuration, the JWKS and the request data set
// into dir and returns the configuration's path.
func (w *Workload) WriteDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("[\n")
	for i, r := range w.Requests {
		raw, err := protojson.Marshal(r.Check)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(raw)
	}
	b.WriteString("\n]\n")
	files := map[string][]byte{ConfigFile: w.Config, JWKSFile: w.JWKS, RequestsFile: []byte(b.String())}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, ConfigFile), nil
}

// KindOf reads the outcome of a CheckResponse the way the data set labels
// it; ok is false for any other answer (a 500, a 400, another refusal).
func KindOf(resp *authv3.CheckResponse) (k Kind, ok bool) {
	if resp.GetOkResponse() != nil {
		return Allowed, true
	}
	den := resp.GetDeniedResponse()
	if den == nil {
		return numKinds, false
	}
	if den.GetStatus().GetCode() == 401 {
		return Unauthorized, true
	}
	for _, h := range den.GetHeaders() {
		if h.GetHeader().GetKey() != "x-ms-error-code" {
			continue
		}
		switch h.GetHeader().GetValue() {
		case "ForbiddenByFirewall":
			return FirewallDenied, true
		case "AccessDenied":
			return PolicyDenied, true
		}
	}
	return numKinds, false
}

// Verify sends every request of the data set through check and reports
// each one whose outcome is not the kind it was made to have, so that the
// mix a benchmark claims is the mix it measured.
func (w *Workload) Verify(check func(*authv3.CheckRequest) (*authv3.CheckResponse, error)) error {
	var bad []string
	for i, r := range w.Requests {
		var resp *authv3.CheckResponse
		// A 500 is vaultwall failing closed (on a busy machine, an evaluation
		// can outlast policy.timeout), not the request's outcome: ask again.
		for try := 0; try < 3 && (try == 0 || unavailable(resp)); try++ {
			var err error
			if resp, err = check(r.Check); err != nil {
				return fmt.Errorf("request %d: %w", i, err)
			}
		}
		if got, ok := KindOf(resp); !ok || got != r.Kind {
			if len(bad) < 5 {
				body := resp.GetDeniedResponse().GetBody()
				bad = append(bad, fmt.Sprintf("request %d (%s %s): want %s, got %s %s",
					i, r.Check.GetAttributes().GetRequest().GetHttp().GetMethod(),
					r.Check.GetAttributes().GetRequest().GetHttp().GetPath(), r.Kind, got, body))
			} else {
				bad = append(bad[:5], "…")
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("workload: outcomes differ from the mix:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

func unavailable(resp *authv3.CheckResponse) bool {
	return resp.GetDeniedResponse().GetStatus().GetCode() == 500
}
