package peer

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// Distinguished names: subject: patterns are parsed from RFC 4514 text,
// principals from Envoy's RFC 2253 rendering (OpenSSL's XN_FLAG_RFC2253),
// certificates from their DER subject. All three meet in one canonical key:
// the RDNs most specific first, each RDN's attributes sorted, each
// attribute its dotted OID and its value's decoded bytes. Attribute names
// are case-insensitive and interchangeable with their OIDs; values are
// compared byte for byte (no case folding, no whitespace folding), so a
// look-alike never matches and the worst a spelling difference can do is
// fail to recognise.

const maxDNLen = 4096

type dnAttr struct{ oid, value string }

// dnAttrNames maps attribute names (upper-cased) to OIDs: RFC 4514's, the
// OpenSSL short names Envoy prints, and Go's pkix spellings.
var dnAttrNames = map[string]string{
	"CN": "2.5.4.3", "SN": "2.5.4.4", "SERIALNUMBER": "2.5.4.5", "C": "2.5.4.6",
	"L": "2.5.4.7", "ST": "2.5.4.8", "STREET": "2.5.4.9", "O": "2.5.4.10",
	"OU": "2.5.4.11", "TITLE": "2.5.4.12", "POSTALCODE": "2.5.4.17", "GN": "2.5.4.42",
	"GIVENNAME": "2.5.4.42", "INITIALS": "2.5.4.43", "DNQUALIFIER": "2.5.4.46", "PSEUDONYM": "2.5.4.65",
	"DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
	"EMAILADDRESS": "1.2.840.113549.1.9.1",
}

// dnShortNames is the reverse map, in OpenSSL's spelling, for rendering.
var dnShortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.17": "postalCode", "2.5.4.42": "GN",
	"2.5.4.43": "initials", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.2.840.113549.1.9.1": "emailAddress",
}

// parseDN parses an RFC 4514 distinguished name (most specific RDN first).
// It is strict: ',' separates RDNs and '+' attributes, with no spaces
// around them; RFC 2253's ';' separator, unescaped leading or trailing
// spaces and unescaped specials are refused. Values may be "#"-hex DER of
// an ASN.1 string, as OpenSSL prints attributes it has no name for.
func parseDN(s string) ([][]dnAttr, error) {
	if s == "" {
		return nil, errors.New("empty distinguished name")
	}
	if len(s) > maxDNLen {
		return nil, errors.New("distinguished name too long")
	}
	var rdns [][]dnAttr
	var rdn []dnAttr
	i := 0
	for {
		// attributeType
		j := i
		for j < len(s) && s[j] != '=' {
			j++
		}
		if j == len(s) {
			return nil, errors.New("attribute without '='")
		}
		oid, err := attrOID(s[i:j])
		if err != nil {
			return nil, err
		}
		i = j + 1
		// attributeValue
		var val string
		if i < len(s) && s[i] == '#' {
			j = i + 1
			for j < len(s) && s[j] != ',' && s[j] != '+' {
				j++
			}
			if val, err = hexStringValue(s[i+1 : j]); err != nil {
				return nil, err
			}
			i = j
		} else {
			if val, i, err = stringAttrValue(s, i); err != nil {
				return nil, err
			}
		}
		rdn = append(rdn, dnAttr{oid, val})
		if i == len(s) {
			rdns = append(rdns, rdn)
			return rdns, nil
		}
		if s[i] == ',' {
			rdns = append(rdns, rdn)
			rdn = nil
		}
		i++
		if i == len(s) {
			return nil, errors.New("trailing separator")
		}
	}
}

func attrOID(t string) (string, error) {
	if t == "" {
		return "", errors.New("empty attribute type")
	}
	if '0' <= t[0] && t[0] <= '9' {
		if !validNumericOID(t) {
			return "", errors.New("attribute type " + quote(t) + " is not an OID")
		}
		return t, nil
	}
	if oid, ok := dnAttrNames[strings.ToUpper(t)]; ok {
		return oid, nil
	}
	return "", errors.New("unknown attribute type " + quote(t) + " (write its OID)")
}

func validNumericOID(t string) bool {
	arcs := 0
	for _, part := range strings.Split(t, ".") {
		if part == "" || (len(part) > 1 && part[0] == '0') {
			return false
		}
		for _, c := range []byte(part) {
			if c < '0' || c > '9' {
				return false
			}
		}
		arcs++
	}
	return arcs >= 2
}

// stringAttrValue reads an RFC 4514 string value from s[i:], up to an
// unescaped ',' or '+' or the end.
func stringAttrValue(s string, i int) (string, int, error) {
	var b []byte
	start := i
	lastEscaped := -1
	for i < len(s) {
		c := s[i]
		switch {
		case c == ',' || c == '+':
			goto done
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, errors.New("dangling escape")
			}
			n := s[i+1]
			if isHex(n) {
				if i+2 >= len(s) || !isHex(s[i+2]) {
					return "", 0, errors.New("bad hex escape")
				}
				v, _ := hex.DecodeString(s[i+1 : i+3])
				b = append(b, v[0])
				i += 3
			} else if strings.IndexByte(` "#+,;<=>\`, n) >= 0 {
				b = append(b, n)
				i += 2
			} else {
				return "", 0, errors.New("bad escape \\" + string(n))
			}
			lastEscaped = len(b) - 1
		case c == '"' || c == ';' || c == '<' || c == '>' || c == 0:
			return "", 0, errors.New("unescaped " + quote(string(c)) + " in value")
		case c == ' ' && i == start:
			return "", 0, errors.New("unescaped leading space in value")
		default:
			b = append(b, c)
			i++
		}
	}
done:
	if len(b) > 0 && b[len(b)-1] == ' ' && lastEscaped != len(b)-1 {
		return "", 0, errors.New("unescaped trailing space in value")
	}
	if !utf8.Valid(b) {
		return "", 0, errors.New("value is not UTF-8")
	}
	return string(b), i, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hexStringValue decodes a "#"-hex value: the DER of an ASN.1 string.
func hexStringValue(h string) (string, error) {
	der, err := hex.DecodeString(h)
	if err != nil || len(der) == 0 {
		return "", errors.New("bad #hex value")
	}
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rv)
	if err != nil || len(rest) > 0 {
		return "", errors.New("#hex value is not DER")
	}
	v, ok := asn1StringValue(rv)
	if !ok {
		return "", errors.New("#hex value is not a string")
	}
	return v, nil
}

// asn1StringValue decodes the ASN.1 string types names use to UTF-8. T61
// is read as Latin-1, as OpenSSL does.
func asn1StringValue(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(v.Bytes) {
			return "", false
		}
		return string(v.Bytes), true
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString:
		for _, c := range v.Bytes {
			if c >= 0x80 {
				return "", false
			}
		}
		return string(v.Bytes), true
	case asn1.TagT61String:
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		var x any
		if _, err := asn1.Unmarshal(v.FullBytes, &x); err != nil {
			return "", false
		}
		s, ok := x.(string)
		return s, ok
	}
	return "", false
}

// subjectDN reads a certificate's DER subject into RDNs, most specific
// first; ok is false when an attribute is not a string (such a subject
// never matches a pattern).
func subjectDN(raw []byte) ([][]dnAttr, bool) {
	var seq []asn1.RawValue
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 || len(seq) == 0 {
		return nil, false
	}
	rdns := make([][]dnAttr, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		var attrs []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if rest, err := asn1.UnmarshalWithParams(seq[i].FullBytes, &attrs, "set"); err != nil || len(rest) > 0 || len(attrs) == 0 {
			return nil, false
		}
		rdn := make([]dnAttr, len(attrs))
		for j, a := range attrs {
			v, ok := asn1StringValue(a.Value)
			if !ok {
				return nil, false
			}
			rdn[j] = dnAttr{a.Type.String(), v}
		}
		rdns = append(rdns, rdn)
	}
	return rdns, true
}

// dnKey is the canonical key of a DN: injective, so two DNs share a key
// only when they are the same name.
func dnKey(rdns [][]dnAttr) string {
	var b strings.Builder
	for i, rdn := range rdns {
		if i > 0 {
			b.WriteByte(',')
		}
		sorted := slices.Clone(rdn)
		slices.SortFunc(sorted, func(x, y dnAttr) int {
			if c := strings.Compare(x.oid, y.oid); c != 0 {
				return c
			}
			return strings.Compare(x.value, y.value)
		})
		for j, a := range sorted {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(a.oid)
			b.WriteByte('=')
			for k := 0; k < len(a.value); k++ {
				c := a.value[k]
				if c < 0x20 || c >= 0x7f || c == '\\' || c == ',' || c == '+' || c == '=' {
					b.WriteByte('\\')
					b.WriteByte("0123456789abcdef"[c>>4])
					b.WriteByte("0123456789abcdef"[c&15])
				} else {
					b.WriteByte(c)
				}
			}
		}
	}
	return b.String()
}

// renderDN prints a DN the way Envoy reports a subject-only principal
// (OpenSSL XN_FLAG_RFC2253): short names, RFC 2253 escapes, bytes outside
// printable ASCII as \XX. Attributes without a short name print as their
// OID with a #-hex UTF8String value.
func renderDN(rdns [][]dnAttr) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i, rdn := range rdns {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			name, ok := dnShortNames[a.oid]
			if !ok {
				der, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(a.value)})
				b.WriteString(a.oid)
				b.WriteString("=#")
				b.WriteString(strings.ToUpper(hex.EncodeToString(der)))
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			v := a.value
			for k := 0; k < len(v); k++ {
				c := v[k]
				switch {
				case c < 0x20 || c >= 0x7f:
					b.WriteByte('\\')
					b.WriteByte(hexdig[c>>4])
					b.WriteByte(hexdig[c&15])
				case strings.IndexByte(`,+"\<>;`, c) >= 0, k == 0 && (c == '#' || c == ' '), k == len(v)-1 && c == ' ':
					b.WriteByte('\\')
					b.WriteByte(c)
				default:
					b.WriteByte(c)
				}
			}
		}
	}
	return b.String()
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(`"`+s+`"`, "?")
}
