package envoy

import (
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/vaultwall/vaultwall/authz"
)

// Every header reaches the CheckResponse, in order and overwriting,
// whether it fits the response's block or not; none means no field.
func TestResponseFromHeaders(t *testing.T) {
	headers := func(n int) []authz.Header {
		var hs []authz.Header
		for i := range n {
			hs = append(hs, authz.Header{Name: fmt.Sprintf("h%d", i), Value: fmt.Sprintf("v%d", i)})
		}
		return hs
	}
	check := func(t *testing.T, got []*corev3.HeaderValueOption, want []authz.Header) {
		t.Helper()
		if len(want) == 0 && got != nil {
			t.Fatalf("headers %v, want none", got)
		}
		if len(got) != len(want) {
			t.Fatalf("%d headers, want %d", len(got), len(want))
		}
		for i, h := range want {
			o := got[i]
			if o.GetHeader().GetKey() != h.Name || o.GetHeader().GetValue() != h.Value ||
				o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("header %d = %v, want %s: %s overwriting", i, o, h.Name, h.Value)
			}
		}
	}
	for _, n := range []int{0, 1, allowedHeaders, deniedHeaders, deniedHeaders + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			up, down := headers(n), headers(n/2+1)
			ok := ResponseFrom(authz.Response{Allowed: true, Upstream: up, Headers: down, UpstreamRemove: []string{"x-vaultwall-forged"}})
			check(t, ok.GetOkResponse().GetHeaders(), up)
			check(t, ok.GetOkResponse().GetResponseHeadersToAdd(), down)
			if r := ok.GetOkResponse().GetHeadersToRemove(); len(r) != 1 {
				t.Errorf("headers to remove: %v", r)
			}
			den := ResponseFrom(authz.Response{Status: 403, Body: "{}", Headers: up})
			check(t, den.GetDeniedResponse().GetHeaders(), up)
			if den.GetDeniedResponse().GetStatus().GetCode() != 403 || den.GetDeniedResponse().GetBody() != "{}" {
				t.Errorf("denied response %v", den)
			}
		})
	}
	// Two responses never share a header.
	a := ResponseFrom(authz.Response{Allowed: true, Upstream: headers(2)})
	b := ResponseFrom(authz.Response{Allowed: true, Upstream: headers(2)})
	if a.GetOkResponse().GetHeaders()[0] == b.GetOkResponse().GetHeaders()[0] {
		t.Error("two responses share a header option")
	}
}

// TestHeaderOptionsReuseBlock: n header options fit in arrays of exactly n,
// so they are the block's own, not fresh allocations (the per-check block
// sizes its arrays to the usual count).
func TestHeaderOptionsReuseBlock(t *testing.T) {
	ptrs := make([]*corev3.HeaderValueOption, 2)
	opts := make([]corev3.HeaderValueOption, 2)
	values := make([]corev3.HeaderValue, 2)
	got := headerOptions(ptrs, opts, values, 2)
	if len(got) != 2 || &got[0] != &ptrs[0] || got[1] != &opts[1] || got[1].Header != &values[1] {
		t.Fatal("two options in arrays of two were not placed in the block")
	}
	if n := testing.AllocsPerRun(50, func() { _ = headerOptions(ptrs, opts, values, 2) }); n != 0 {
		t.Errorf("headerOptions allocated %v times with arrays large enough", n)
	}
	if got := headerOptions(ptrs, opts, values, 3); len(got) != 3 || &got[0] == &ptrs[0] || got[2].Header == nil {
		t.Error("three options did not get arrays of their own")
	}
}
