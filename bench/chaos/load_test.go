package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// class is a kind of request whose right answer the oracle knows.
type class int

const (
	allowed      class = iota // the app reads its secret from the office
	firewall                  // the same from an address no rule admits
	noToken                   // no Authorization header
	forged                    // a token whose signature was tampered with
	accessDenied              // a delete no access policy grants
	operatorDeny              // a read of an object the operator rule denies
	numClasses
)

var classNames = [numClasses]string{"allowed", "firewall", "no-token", "forged", "access-denied", "operator-deny"}

func (c class) String() string { return classNames[c] }

// verdict is an answer reduced to what the oracle compares.
type verdict struct {
	allow  bool
	status int32  // HTTP status of a refusal
	code   string // its x-ms-error-code
}

func (v verdict) String() string {
	if v.allow {
		return "allow"
	}
	return fmt.Sprintf("%d %s", v.status, v.code)
}

// want is the right answer for each class.
var want = [numClasses]verdict{
	allowed:      {allow: true},
	firewall:     {status: 403, code: "ForbiddenByFirewall"},
	noToken:      {status: 401, code: "Unauthorized"},
	forged:       {status: 401, code: "Unauthorized"},
	accessDenied: {status: 403, code: "AccessDenied"},
	operatorDeny: {status: 403, code: "ForbiddenByPolicy"},
}

func verdictOf(resp *authv3.CheckResponse) verdict {
	if resp.GetStatus().GetCode() == 0 && resp.GetOkResponse() != nil {
		return verdict{allow: true}
	}
	v := verdict{status: int32(resp.GetDeniedResponse().GetStatus().GetCode())}
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "x-ms-error-code" {
			v.code = h.GetHeader().GetValue()
		}
	}
	return v
}

// outcome is how one answer compares with the oracle.
type outcome int

const (
	correct     outcome = iota
	wrongAllow          // a refusal was due and the answer allowed: never acceptable
	wrongRefuse         // refused, but not as due (an outage's 500, a 401 for a new key)
	rpcError            // no CheckResponse at all
)

// result is one request as the load saw it.
type result struct {
	class   class
	sent    time.Time
	done    time.Time
	outcome outcome
	got     string
}

// tokens are the bearer tokens the load sends, swapped atomically when a
// fault changes them (a key rotation, a flood of unique tokens).
type tokens struct {
	valid  []string // the app's valid tokens, used round-robin
	forged []string
	unique bool // each token is used once, then the pool wraps
}

// loader sends requests at a fixed rate (open loop: a slow answer does not
// delay the next request) with a bound on those in flight, and records every
// answer.
type loader struct {
	client authv3.AuthorizationClient
	tokens atomic.Pointer[tokens]
	next   atomic.Uint64

	mu      sync.Mutex
	results []result
	skipped int // ticks dropped because maxInFlight answers were pending
}

const maxInFlight = 256

// run sends rate requests a second until ctx ends, and waits for every
// request it sent to be answered.
func (l *loader) run(ctx context.Context, rate int) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.mu.Lock()
			l.skipped++
			l.mu.Unlock()
			continue
		}
		n := l.next.Add(1)
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.record(l.one(n))
		}()
	}
}

// closed sends as fast as workers answers come back, for the capacity.
func (l *loader) closed(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.record(l.one(l.next.Add(1)))
			}
		})
	}
	wg.Wait()
}

func (l *loader) record(r result) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

// take returns the results recorded so far and forgets them.
func (l *loader) take() ([]result, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, s := l.results, l.skipped
	l.results, l.skipped = nil, 0
	slices.SortFunc(r, func(a, b result) int { return a.sent.Compare(b.sent) })
	return r, s
}

// one sends request number n; its class follows n, so every class is in the
// mix at every moment.
func (l *loader) one(n uint64) result {
	c := class(n % uint64(numClasses))
	req := l.request(c, n)
	r := result{class: c, sent: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := l.client.Check(ctx, req)
	r.done = time.Now()
	if err != nil {
		r.outcome, r.got = rpcError, err.Error()
		return r
	}
	v := verdictOf(resp)
	r.got = v.String()
	switch {
	case v == want[c]:
		r.outcome = correct
	case v.allow:
		r.outcome = wrongAllow
	default:
		r.outcome = wrongRefuse
	}
	return r
}

const (
	office  = "203.0.113.10"
	outside = "192.0.2.44"
)

func (l *loader) request(c class, n uint64) *authv3.CheckRequest {
	tk := l.tokens.Load()
	pick := func(pool []string) string { return pool[int(n/uint64(numClasses))%len(pool)] }
	method, path, from, auth := "GET", "/secrets/app-secret?api-version=7.5", office, ""
	switch c {
	case allowed:
		auth = "Bearer " + pick(tk.valid)
	case firewall:
		from, auth = outside, "Bearer "+pick(tk.valid)
	case noToken:
	case forged:
		auth = "Bearer " + pick(tk.forged)
	case accessDenied:
		method, auth = "DELETE", "Bearer "+pick(tk.valid)
	case operatorDeny:
		path, auth = "/secrets/forbidden-root?api-version=7.5", "Bearer "+pick(tk.valid)
	}
	return checkRequest(from, method, path, auth, nil)
}

func checkRequest(from, method, path, auth string, raw []*corev3.HeaderValue) *authv3.CheckRequest {
	headers := map[string]string{
		":method": method, ":path": path, ":authority": "contoso-vault.vault.azure.net",
		":scheme": "https", "x-ms-client-request-id": "chaos",
	}
	if auth != "" {
		headers["authorization"] = auth
	}
	http := &authv3.AttributeContext_HttpRequest{
		Id: "1", Method: method, Path: path, Host: "contoso-vault.vault.azure.net", Scheme: "https", Protocol: "HTTP/2",
		Headers: headers,
	}
	if raw != nil {
		http.Headers = nil
		http.HeaderMap = &corev3.HeaderMap{Headers: raw}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: from, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}},
		}}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: http},
	}}
}

// rawCodec sends bytes as they are: a malformed message no proto encoder
// would produce.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return fmt.Errorf("rawCodec: %T", v)
}

func (rawCodec) Name() string { return "proto" }

// sendRaw invokes Check with a body that is not a CheckRequest.
func sendRaw(ctx context.Context, conn *grpc.ClientConn, body []byte) error {
	var out []byte
	return conn.Invoke(ctx, "/envoy.service.auth.v3.Authorization/Check", &body, &out, grpc.ForceCodec(rawCodec{}))
}
