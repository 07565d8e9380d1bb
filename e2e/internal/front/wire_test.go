package front

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSubjectRFC2253(t *testing.T) {
	oid := func(s ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(s) }
	atv := func(o asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: o, Value: v}
	}
	cn, o, ou, c := oid(2, 5, 4, 3), oid(2, 5, 4, 10), oid(2, 5, 4, 11), oid(2, 5, 4, 6)
	for _, tc := range []struct {
		name string
		seq  pkix.RDNSequence
		want string
	}{
		{"order is reversed", pkix.RDNSequence{{atv(c, "DE")}, {atv(o, "Acme")}, {atv(cn, "svc-a")}}, "CN=svc-a,O=Acme,C=DE"},
		{"specials escaped", pkix.RDNSequence{{atv(o, `A,B+C"D\E<F>G;H`)}, {atv(cn, "#lead and trail ")}}, `CN=\#lead and trail\ ,O=A\,B\+C\"D\\E\<F\>G\;H`},
		{"leading space", pkix.RDNSequence{{atv(cn, " x")}}, `CN=\ x`},
		{"UTF-8 bytes as \\XX", pkix.RDNSequence{{atv(cn, "café")}}, `CN=caf\C3\A9`},
		{"multi-valued RDN", pkix.RDNSequence{{atv(ou, "Ops"), atv(cn, "svc")}}, "OU=Ops+CN=svc"}, // DER sorts the SET; OpenSSL prints it reversed,
		{"email and DC short names", pkix.RDNSequence{{atv(oid(0, 9, 2342, 19200300, 100, 1, 25), "example")}, {atv(oid(1, 2, 840, 113549, 1, 9, 1), "a@example.com")}}, "emailAddress=a@example.com,DC=example"},
		{"unknown type as #hex", pkix.RDNSequence{{atv(oid(1, 2, 3, 4), "x")}}, "1.2.3.4=#130178"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := asn1.Marshal(tc.seq)
			if err != nil {
				t.Fatal(err)
			}
			if got := subjectRFC2253(raw); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if got := subjectRFC2253([]byte{0x30, 0x03, 0x01}); got != "" {
		t.Errorf("garbage subject printed as %q", got)
	}
}

func TestSanitizeUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"caf\xc3\xa9":          "café",
		"\x01\x80\x56\x34\x12": "\x01!V4\x12",
		"\xc3":                 "!",
		"a\xed\xa0\x80b":       "a!!!b", // a surrogate is not UTF-8
		"\xf0\x9f\x98":         "!!!",
	} {
		if got := sanitizeUTF8(in); got != want {
			t.Errorf("sanitizeUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSanitizeUTF8: the result is valid UTF-8 of the same byte length, and
// valid input is untouched — the untyped TLV string keeps its positions.
func FuzzSanitizeUTF8(f *testing.F) {
	f.Add("\x01\x80\x56\x34\x12")
	f.Add("vpce-0123")
	f.Fuzz(func(t *testing.T, s string) {
		got := sanitizeUTF8(s)
		if !utf8.ValidString(got) || len(got) != len(s) {
			t.Fatalf("sanitizeUTF8(%q) = %q", s, got)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("valid %q changed to %q", s, got)
		}
	})
}

// FuzzCertificateEncoding: whatever the DER, the encoding has none of the
// five escaped characters and url.PathUnescape gives back the PEM.
func FuzzCertificateEncoding(f *testing.F) {
	f.Add([]byte{0xfb, 0xff, 0xfe, 0x3e})
	f.Add([]byte("any bytes at all"))
	f.Fuzz(func(t *testing.T, der []byte) {
		enc := urlEncodePEM(der)
		if strings.ContainsAny(enc, "\n +/=") {
			t.Fatalf("unescaped character in %q", enc)
		}
		dec, err := url.PathUnescape(enc)
		if err != nil || !strings.HasPrefix(dec, "-----BEGIN CERTIFICATE-----\n") || !strings.HasSuffix(dec, "-----END CERTIFICATE-----\n") {
			t.Fatalf("PathUnescape(%q) = %q, %v", enc, dec, err)
		}
	})
}

func TestLastAddressFromXFF(t *testing.T) {
	for _, tc := range []struct {
		xff  string
		skip int
		want string
	}{
		{"", 0, ""},
		{"1.1.1.1", 0, "1.1.1.1"},
		{"1.1.1.1, 2.2.2.2", 0, "2.2.2.2"},
		{"1.1.1.1, 2.2.2.2", 1, "1.1.1.1"},
		{"1.1.1.1, 2.2.2.2", 2, ""},
		{"1.1.1.1,2001:db8::1", 0, "2001:db8::1"},
		{"1.1.1.1,[2001:db8::1]", 0, ""},
		{"1.1.1.1,garbage", 0, ""},
	} {
		got := lastAddressFromXFF(tc.xff, tc.skip)
		want := netip.Addr{}
		if tc.want != "" {
			want = netip.MustParseAddr(tc.want)
		}
		if got != want {
			t.Errorf("lastAddressFromXFF(%q, %d) = %v, want %v", tc.xff, tc.skip, got, want)
		}
	}
}

func TestHeaderMapOps(t *testing.T) {
	h := headerMap{{"a", "1"}, {"b", "2"}, {"a", "3"}}
	if h.joined("a") != "1,3" {
		t.Errorf("joined %q", h.joined("a"))
	}
	h.appendValue("a", "x")
	if h.joined("a") != "1,x,3" {
		t.Errorf("appendValue touches the first entry only: %q", h.joined("a"))
	}
	h.appendValue("missing", "x")
	if _, ok := h.get("missing"); ok {
		t.Error("appendValue added an absent header")
	}
	h.set("a", "only")
	if h.joined("a") != "only" || h.joined("b") != "2" {
		t.Errorf("set: %v", h)
	}
	for _, k := range []string{":path", ":authority", "host", "HOST", ""} {
		if removable(k) {
			t.Errorf("removable(%q)", k)
		}
	}
	if !removable("x-vaultwall-caller") {
		t.Error("an ordinary header is not removable")
	}
}

func TestRouteTimeout(t *testing.T) {
	o, err := Shipped(EnvoyL4)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]time.Duration{
		"/healthstatus":              5 * time.Second,
		"/healthstatus?x=1":          5 * time.Second,
		"/healthstatus/more":         time.Minute,
		"/secrets/s?api-version=7.5": time.Minute,
	} {
		if got, ok := o.routeTimeout(path); !ok || got != want {
			t.Errorf("routeTimeout(%q) = %v, %v; want %v", path, got, ok, want)
		}
	}
	if got, ok := (Options{}).routeTimeout("/x"); !ok || got != 15*time.Second {
		t.Errorf("default route: %v, %v; want Envoy's 15s", got, ok)
	}
	if _, ok := (Options{Routes: []Route{{Path: "/only"}}}).routeTimeout("/x"); ok {
		t.Error("no route should match /x")
	}
}
