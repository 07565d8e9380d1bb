package peer

import "testing"

// Every hex digit, at both ends of each range, is read in a \HH escape;
// the characters just outside the ranges are not hex digits.
func TestParseDNHexEscapes(t *testing.T) {
	// Digits and letters of both cases at each end of their range, as the
	// first and as the second digit of an escape.
	rdns, err := parseDN(`CN=\30\39\61\66\41\46\4a\4A\6f\6F\c3\a9\C3\A9\f0\9f\98\80\F0\9F\98\80`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rdns) != 1 || len(rdns[0]) != 1 || rdns[0][0].value != "09afAFJJooéé😀😀" {
		t.Fatalf("got %+v, want CN=09afAFJJooéé😀😀", rdns)
	}
	for _, bad := range []string{`CN=\3/`, `CN=\3:`, `CN=\6g`, `CN=\4G`, "CN=\\3`", `CN=\3@`} {
		if _, err := parseDN(bad); err == nil {
			t.Errorf("%s parsed; its escape is not two hex digits", bad)
		}
	}
}
