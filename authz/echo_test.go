package authz

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	for _, c := range []struct {
		in, want string
		max      int
	}{
		{"9b2cc866-0f1e-4d3c-8a2e-6b0c3a2e1f4d", "9b2cc866-0f1e-4d3c-8a2e-6b0c3a2e1f4d", MaxEchoValue},
		{"é 😀 ok", "é 😀 ok", MaxEchoValue},
		{"\xff\xfeid", "\uFFFD\uFFFDid", MaxEchoValue},
		{"id\r\nx-injected: 1", "id\uFFFD\uFFFDx-injected: 1", MaxEchoValue},
		{"nul\x00del\x7fc1\u0085sep\u2028", "nul\uFFFDdel\uFFFDc1\uFFFDsep\uFFFD", MaxEchoValue},
		{"\xe2\x82", "\uFFFD\uFFFD", MaxEchoValue}, // a truncated sequence: one per byte
		{"c1 bounds \u0080\u009f, kept \u007e\u00a0", "c1 bounds \uFFFD\uFFFD, kept \u007e\u00a0", MaxEchoValue},
		{"abcdefghij", "abcdefghij", 10},
		{"abcdefghijk", "abcdefg…", 10},
		{"ééééé", "ééé…", 9}, // cut on a character boundary, never inside é
		{"abc\xff", "abc\uFFFD", 6},
	} {
		if got := Sanitize(c.in, c.max); got != c.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
	if got := SanitizeMessage("line one\r\nline two\x00", MaxEchoMessage); got != "line one\r\nline two\uFFFD" {
		t.Errorf("SanitizeMessage kept or dropped the wrong characters: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Sanitize("9b2cc866-0f1e-4d3c-8a2e-6b0c3a2e1f4d", MaxEchoValue) }); n != 0 {
		t.Errorf("a clean value allocates %v times, want 0", n)
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("id\r\n\xff\u2028é", 16, false)
	f.Add(strings.Repeat("😀", 40), 7, true)
	f.Fuzz(func(t *testing.T, s string, max int, lines bool) {
		max = max%2048 + 2048*(max>>31&1) // 0 … 2047, whatever the sign
		got := sanitize(s, max, lines)
		if !utf8.ValidString(got) {
			t.Fatalf("sanitize(%q) = %q: not UTF-8", s, got)
		}
		if len(got) > max && len(got) > len(ellipsis) {
			t.Fatalf("sanitize(%q, %d) = %q: %d bytes", s, max, got, len(got))
		}
		if !clean(got, lines) {
			t.Fatalf("sanitize(%q) = %q: not clean", s, got)
		}
		if len(s) <= max && clean(s, lines) && got != s {
			t.Fatalf("sanitize changed a clean value %q to %q", s, got)
		}
		if sanitize(got, max, lines) != got {
			t.Fatalf("sanitize is not idempotent on %q", s)
		}
	})
}

// Explain names the object canonically — what rules compared — and says
// how the client spelt it when that differs; details are sanitised.
func TestExplainNamesTheObjectCanonically(t *testing.T) {
	d := &Decision{Allowed: true, Stage: StageAuthorize, Request: &Request{Path: "/secrets/PROD-ROOT"},
		Operation: Operation{Name: "SecretGet", Method: "GET", Resource: "secrets", Permission: "get", Object: "prod-root", ObjectRaw: "PROD-ROOT"},
		Caller:    &Caller{ObjectID: "oid\x00\xff", TenantID: "t"}}
	steps := d.Explain()
	if got := steps[0].Detail; !strings.Contains(got, "object prod-root (sent as PROD-ROOT)") {
		t.Errorf("classify detail %q: want the canonical name and the spelling sent", got)
	}
	d.Operation.ObjectRaw = "prod-root"
	if got := d.Explain()[0].Detail; strings.Contains(got, "sent as") {
		t.Errorf("classify detail %q: names the spelling although it is canonical", got)
	}
	if got := steps[1].Detail; Sanitize(got, MaxEchoMessage) != got || !strings.Contains(got, "oid\uFFFD\uFFFD") {
		t.Errorf("authenticate detail %q: want it sanitised", got)
	}
}
