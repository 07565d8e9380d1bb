package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/bench/workload"
)

// TestRenderShipped renders the shipped envoy.yaml for the three
// configurations: (a) has no ext_authz filter nor vaultwall cluster, (b)
// and (c) keep the filter as shipped (fail closed) pointed at the
// authorizer, and every rendering passes Envoy's proto validation.
func TestRenderShipped(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, authz string }{{"a", ""}, {"c", "127.0.0.1:9191"}} {
		path, err := render{shipped: filepath.Join("..", "..", "envoy", "envoy.yaml"), dir: dir, name: tc.name,
			authzAddr: tc.authz, upstream: "127.0.0.1:8443", pki: p}.write()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// protojson varies its whitespace from build to build on purpose:
		// compare with every run of spaces made one.
		s := strings.Join(strings.Fields(string(b)), " ")
		hasFilter := strings.Contains(s, "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
		if hasFilter != (tc.authz != "") {
			t.Errorf("%s: ext_authz filter present = %v", tc.name, hasFilter)
		}
		if tc.authz != "" && (!strings.Contains(s, `"port_value": 9191`) || strings.Contains(s, `"failure_mode_allow": true`)) {
			t.Errorf("%s: the authorizer cluster is not the bench's", tc.name)
		}
		if !strings.Contains(s, "envoy.filters.listener.proxy_protocol") {
			t.Errorf("%s: the PROXY protocol listener filter is gone", tc.name)
		}
	}
}

// TestTargets turns a workload into HTTP requests: every request keeps
// its kind (read back from the URL fragment), its client address (the URL
// host) and its token, and the addresses come from the bounded pool.
func TestTargets(t *testing.T) {
	w, err := workload.Generate(workload.Options{Requests: 500, Callers: 20, IPRules: 10, SubnetRules: 2, AccessPolicies: 30, Sources: 20})
	if err != nil {
		t.Fatal(err)
	}
	ts, n, err := targets(w)
	if err != nil {
		t.Fatal(err)
	}
	if n > 20+2 {
		t.Errorf("%d client addresses, want at most 22 with Sources 20", n)
	}
	for i, tg := range ts {
		r := w.Requests[i]
		if got := kindOf(tg.URL); got != r.Kind {
			t.Fatalf("request %d: kind %v read back as %v", i, r.Kind, got)
		}
		h := r.Check.GetAttributes().GetRequest().GetHttp()
		src := r.Check.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
		if !strings.HasPrefix(tg.URL, "https://"+src+h.GetPath()+"#") {
			t.Fatalf("request %d: URL %s, want client %s and path %s", i, tg.URL, src, h.GetPath())
		}
		if got, want := tg.Header.Get("Authorization"), h.GetHeaders()["authorization"]; got != want {
			t.Fatalf("request %d: authorization differs", i)
		}
		if tg.Header.Get("Host") != h.GetHost() {
			t.Fatalf("request %d: host %q", i, tg.Header.Get("Host"))
		}
		if want := expected(r.Kind, true); r.Kind == workload.Allowed && want != http.StatusOK {
			t.Fatalf("allowed expects %d", want)
		}
	}
}
