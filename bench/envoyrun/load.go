package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/vaultwall/vaultwall/bench/workload"
)

// destination is where clients believe they connect (the load balancer's
// frontend), as the PROXY header reports it; the workload's CheckRequests
// carry the same.
var destination = &net.TCPAddr{IP: net.IPv4(10, 255, 0, 5), Port: 8443}

// target is one HTTP request of the data set. Its URL's host is the
// client's address (the dialer turns it into the PROXY v2 header of the
// connection, and http.Transport keeps one pool of connections per
// client address), its fragment the kind, which is never sent.
type target struct {
	vegeta.Target
	kind workload.Kind
}

// targets turns the workload's CheckRequests back into the HTTP requests
// Envoy would have built them from: method, path, the client's headers
// (authorization, user agent, x-ms-client-request-id, accept,
// content-type), the vault's host, and a small JSON body on POSTs.
// Headers Envoy adds itself (x-request-id, x-forwarded-proto) and the
// pseudo-headers are left to Envoy.
func targets(w *workload.Workload) ([]target, int, error) {
	out := make([]target, 0, len(w.Requests))
	sources := map[netip.Addr]bool{}
	for _, r := range w.Requests {
		a := r.Check.GetAttributes()
		h := a.GetRequest().GetHttp()
		src, err := netip.ParseAddr(a.GetSource().GetAddress().GetSocketAddress().GetAddress())
		if err != nil {
			return nil, 0, err
		}
		sources[src] = true
		hdr := http.Header{"Host": {h.GetHost()}}
		for k, v := range h.GetHeaders() {
			switch k {
			case "authorization", "user-agent", "x-ms-client-request-id", "accept", "content-type":
				hdr.Set(k, v)
			}
		}
		t := target{kind: r.Kind, Target: vegeta.Target{
			Method: h.GetMethod(),
			URL:    "https://" + src.String() + h.GetPath() + "#" + strconv.Itoa(int(r.Kind)),
			Header: hdr,
		}}
		if h.GetMethod() == http.MethodPost {
			t.Body = []byte(`{"alg":"RSA-OAEP-256","value":"Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy"}`)
		}
		out = append(out, t)
	}
	return out, len(sources), nil
}

// kindOf reads the kind back from a result's URL fragment.
func kindOf(url string) workload.Kind {
	i := strings.LastIndexByte(url, '#')
	if i < 0 {
		return workload.Kind(255)
	}
	k, err := strconv.Atoi(url[i+1:])
	if err != nil {
		return workload.Kind(255)
	}
	return workload.Kind(k)
}

// expected is the status a kind gets through a front with vaultwall; a
// front without a decision (Envoy alone, the floor) answers 200 to all.
func expected(k workload.Kind, decides bool) int {
	if !decides {
		return http.StatusOK
	}
	switch k {
	case workload.Allowed:
		return http.StatusOK
	case workload.Unauthorized:
		return http.StatusUnauthorized
	case workload.FirewallDenied, workload.PolicyDenied:
		return http.StatusForbidden
	}
	return 0
}

// client is an HTTP/1.1 client to one Envoy that opens every connection
// with a PROXY v2 header naming the client address found in the URL's
// host, so that Envoy reports it to the authorizer as source.address, as
// it does behind a PROXY-speaking load balancer.
func client(front netip.AddrPort, p *benchPKI) *http.Client {
	var port atomic.Uint32
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			src, err := netip.ParseAddr(host)
			if err != nil {
				return nil, err
			}
			c, err := d.DialContext(ctx, "tcp", front.String())
			if err != nil {
				return nil, err
			}
			srcPort := 20000 + int(port.Add(1)%40000)
			h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: src.AsSlice(), Port: srcPort}, destination)
			if _, err := h.WriteTo(c); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
		TLSClientConfig: &tls.Config{
			ServerName: frontName, RootCAs: p.pool, MinVersion: tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(4096),
		},
		// HTTP/1.1, as the workload's requests (and most SDKs) are: an empty
		// TLSNextProto map keeps h2 out of ALPN.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		// At most 4 connections per client address: beyond that a request
		// waits in the client for one (counted in its latency, as with any
		// client's pool) rather than each stall opening new TLS connections.
		MaxConnsPerHost:     4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     5 * time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// outcome is one load run against one front.
type outcome struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	errors    int             // transport errors and 5xx
	wrong     int             // a status other than the request's due one
	firstErr  string
	envoyCPU  time.Duration
	authzCPU  time.Duration
	statuses  map[int]int
}

func (o *outcome) rps() float64 { return float64(o.requests) / o.elapsed.Seconds() }

func (o *outcome) pct(p float64) time.Duration {
	if len(o.latencies) == 0 {
		return 0
	}
	i := int(p/100*float64(len(o.latencies))+0.5) - 1
	return o.latencies[max(0, min(i, len(o.latencies)-1))]
}

// attack sends the targets round-robin from the shared cursor for du: at
// rate requests per second (open loop: a request is sent on schedule
// whether or not earlier ones have been answered, vegeta adding workers as
// needed), or with rate 0 as fast as workers closed-loop workers go.
func attack(hc *http.Client, ts []target, cursor *atomic.Uint64, rate float64, du time.Duration, workers int, decides bool) *outcome {
	opts := []func(*vegeta.Attacker){vegeta.Client(hc), vegeta.MaxBody(4096), vegeta.Redirects(vegeta.NoFollow)}
	var pacer vegeta.Pacer
	if rate > 0 {
		pacer = vegeta.ConstantPacer{Freq: int(rate + 0.5), Per: time.Second}
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(4096))
	} else {
		pacer = vegeta.ConstantPacer{Freq: 0, Per: time.Second}
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	}
	atk := vegeta.NewAttacker(opts...)
	targeter := func(t *vegeta.Target) error {
		*t = ts[cursor.Add(1)%uint64(len(ts))].Target
		return nil
	}
	o := &outcome{statuses: map[int]int{}}
	start := time.Now()
	for r := range atk.Attack(targeter, pacer, du, "") {
		o.requests++
		o.latencies = append(o.latencies, r.Latency)
		o.statuses[int(r.Code)]++
		switch {
		case r.Code == 0 || r.Code >= 500:
			o.errors++
			if o.firstErr == "" {
				o.firstErr = fmt.Sprintf("%d %s", r.Code, r.Error)
			}
		case int(r.Code) != expected(kindOf(r.URL), decides):
			o.wrong++
			if o.firstErr == "" {
				o.firstErr = fmt.Sprintf("%s %s: %d", r.Method, r.URL, r.Code)
			}
		}
	}
	o.elapsed = time.Since(start)
	slices.Sort(o.latencies)
	return o
}
