package authz

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Headers vaultwall sets on an allowed request for the vault upstream. Any
// client-sent header with the x-vaultwall- prefix is removed or overwritten,
// so the upstream can believe them.
const (
	HeaderPrefix         = "x-vaultwall-"
	HeaderDecisionID     = "x-vaultwall-decision-id"
	HeaderOperation      = "x-vaultwall-operation"
	HeaderCallerObjectID = "x-vaultwall-caller-oid"
	HeaderCallerTenantID = "x-vaultwall-caller-tid"
	HeaderCallerAppID    = "x-vaultwall-caller-appid"
	HeaderClientIP       = "x-vaultwall-client-ip"
	HeaderTrustedService = "x-vaultwall-trusted-service"
)

// HeaderRBACAssignmentID is Key Vault's response header naming the role
// assignment that granted an RBAC-authorized request.
const HeaderRBACAssignmentID = "x-ms-keyvault-rbac-assignment-id"

// Header is one HTTP header.
type Header struct{ Name, Value string }

// Response is a Decision as the front proxy must apply it, still in plain
// Go: the gRPC adapter translates it to a CheckResponse.
type Response struct {
	Allowed bool
	// Status and Body are the local reply on a refusal.
	Status int
	Body   string
	// Headers go to the client: the refusal's headers, or headers added to
	// the upstream's response on an allow.
	Headers []Header
	// Upstream are the headers set (overwriting) on the request to the vault;
	// UpstreamRemove are client-sent headers in vaultwall's namespace that
	// must not reach it.
	Upstream       []Header
	UpstreamRemove []string
	// Metadata is recorded as the proxy's dynamic metadata for access logs.
	Metadata Metadata
}

// Metadata is what vaultwall tells the proxy's access log about a decision.
type Metadata struct {
	DecisionID  string
	Allowed     bool
	Stage       string
	Operation   string
	Code        string // x-ms-error-code of a refusal
	NetworkRule string
	PolicyRule  string
	ClientIP    string
	Trusted     string
	Endpoint    string // private endpoint id
}

// Response turns the decision into what the proxy must do. Every value in
// it — header values, metadata, the body's message — has been through
// Sanitize: the client controls some of them (x-ms-client-request-id, its
// token's claims, the path), and a CheckResponse string that is not UTF-8
// would not marshal, turning a refusal into an RPC error.
func (d *Decision) Response() Response {
	r := d.response()
	sanitizeHeaders(r.Headers)
	sanitizeHeaders(r.Upstream)
	m := &r.Metadata
	for _, f := range [...]*string{&m.DecisionID, &m.Stage, &m.Operation, &m.Code, &m.NetworkRule,
		&m.PolicyRule, &m.ClientIP, &m.Trusted, &m.Endpoint} {
		*f = Sanitize(*f, MaxEchoValue)
	}
	return r
}

func sanitizeHeaders(hs []Header) {
	for i := range hs {
		hs[i].Value = Sanitize(hs[i].Value, MaxEchoValue)
	}
}

func (d *Decision) response() Response {
	md := Metadata{
		DecisionID:  d.ID,
		Allowed:     d.Allowed,
		Stage:       d.Stage.String(),
		Operation:   d.Operation.Name,
		NetworkRule: d.Network.Rule,
		PolicyRule:  d.Authz.Rule,
		Trusted:     d.Network.TrustedService,
		Endpoint:    d.Network.PrivateEndpointID,
	}
	netInfo, clientIP := d.networkInfo()
	md.ClientIP = clientIP
	if d.Allowed {
		r := Response{Allowed: true, Metadata: md}
		// One array for both header lists: up to 7 upstream headers, then
		// up to 2 response headers.
		hs := make([]Header, 0, 9)
		r.Upstream = d.upstreamHeaders(hs[:0:7], md.ClientIP)
		r.Headers = hs[len(r.Upstream):len(r.Upstream)]
		if netInfo != "" {
			r.Headers = append(r.Headers, Header{"x-ms-keyvault-network-info", netInfo})
		}
		if id := d.Authz.AssignmentID; id != "" && d.Vault != nil && d.Vault.RBAC {
			r.Headers = append(r.Headers, Header{HeaderRBACAssignmentID, id})
		}
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		r.UpstreamRemove = d.forgedHeaders(r.Upstream)
		return r
	}
	den := d.Denial
	if den == nil { // cannot happen through Decide; refuse anyway
		den = &Denial{Status: 500, Code: "InternalServerError", Message: "no decision"}
	}
	md.Code = den.ErrorCode()
	h := make([]Header, 0, 12)
	h = append(h,
		Header{"content-type", "application/json; charset=utf-8"},
		Header{"x-ms-error-code", den.ErrorCode()},
		Header{"x-ms-request-id", d.ID},
		Header{"cache-control", "no-cache"},
		Header{"pragma", "no-cache"},
		Header{"expires", "-1"},
		Header{"strict-transport-security", "max-age=31536000;includeSubDomains"},
		Header{"x-content-type-options", "nosniff"},
	)
	if d.Vault != nil && d.Vault.Location != "" {
		h = append(h, Header{"x-ms-keyvault-region", d.Vault.Location})
	}
	if d.Request != nil {
		if id := d.Request.Header("x-ms-client-request-id"); id != "" {
			h = append(h, Header{"x-ms-client-request-id", id})
		}
	}
	if netInfo != "" {
		h = append(h, Header{"x-ms-keyvault-network-info", netInfo})
	}
	if den.Challenge && d.Vault != nil {
		h = append(h, Header{"www-authenticate", d.Vault.Challenge})
	}
	return Response{Status: den.Status, Body: ErrorBody(den), Headers: h, Metadata: md}
}

// ErrorBody is Key Vault's JSON error envelope for a denial:
// {"error":{"code":…,"message":…[,"innererror":{"code":…}]}}, strings
// escaped exactly as encoding/json does without HTML escaping. The message
// is sanitised (SanitizeMessage, MaxEchoMessage) and the codes too, so the
// body is UTF-8 and bounded whatever the denial holds.
func ErrorBody(den *Denial) string {
	return errorBody(&Denial{Code: Sanitize(den.Code, MaxEchoValue), Inner: Sanitize(den.Inner, MaxEchoValue),
		Message: SanitizeMessage(den.Message, MaxEchoMessage)})
}

func errorBody(den *Denial) string {
	var b strings.Builder
	b.Grow(len(`{"error":{"code":"","message":"","innererror":{"code":""}}}`) + len(den.Code) + len(den.Message) + len(den.Inner) + 16)
	b.WriteString(`{"error":{"code":`)
	writeJSONString(&b, den.Code)
	b.WriteString(`,"message":`)
	writeJSONString(&b, den.Message)
	if den.Inner != "" {
		b.WriteString(`,"innererror":{"code":`)
		writeJSONString(&b, den.Inner)
		b.WriteByte('}')
	}
	b.WriteString("}}")
	return b.String()
}

// writeJSONString writes s as a JSON string the way encoding/json does with
// SetEscapeHTML(false): \" \\ \b \f \n \r \t, \u00XX for other control
// bytes, \ufffd for invalid UTF-8, \u2028 and \u2029 escaped.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// upstreamHeaders appends the headers set on the request to the vault to
// h (of capacity 7, all it can need).
func (d *Decision) upstreamHeaders(h []Header, clientIP string) []Header {
	h = append(h, Header{HeaderDecisionID, d.ID})
	if d.Operation.Name != "" {
		h = append(h, Header{HeaderOperation, d.Operation.Name})
	}
	if c := d.Caller; c != nil {
		h = append(h,
			Header{HeaderCallerObjectID, c.ObjectID},
			Header{HeaderCallerTenantID, c.TenantID},
			Header{HeaderCallerAppID, c.ApplicationID})
	}
	if clientIP != "" {
		h = append(h, Header{HeaderClientIP, clientIP})
	}
	if d.Network.TrustedService != "" && d.Network.AuthType == AddrTrustedService {
		h = append(h, Header{HeaderTrustedService, d.Network.TrustedService})
	}
	return h
}

// forgedHeaders lists client-sent headers in vaultwall's namespace that this
// decision does not overwrite: they must be removed before the upstream
// sees them.
func (d *Decision) forgedHeaders(set []Header) []string {
	if d.Request == nil {
		return nil
	}
	var out []string
	for name := range d.Request.Headers {
		if !strings.HasPrefix(name, HeaderPrefix) {
			continue
		}
		overwritten := false
		for _, h := range set {
			if h.Name == name {
				overwritten = true
				break
			}
		}
		if !overwritten {
			out = append(out, name)
		}
	}
	sort.Strings(out) // stable for golden files and logs
	return out
}

// networkInfo is Key Vault's x-ms-keyvault-network-info header value and
// the client address, both "" when the address is unknown. They are one
// string, the address a substring of the header value: one allocation.
func (d *Decision) networkInfo() (info, addr string) {
	c := &d.Network.Connection
	if !c.ClientAddr.IsValid() {
		return "", ""
	}
	fam := "InterNetwork"
	kind := "Ipv4"
	if c.ClientAddr.Is6() {
		fam, kind = "InterNetworkV6", "Ipv6"
	}
	// The address's longest text form, with a zone.
	const maxAddr = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%")
	var b strings.Builder
	b.Grow(len("conn_type=PrivateLink;private_endpoint=;addr=;act_addr_fam=InterNetworkV6;") +
		len(c.PrivateEndpointID) + len(c.SubnetID) + maxAddr + len(c.ClientAddr.Zone()))
	switch {
	case c.PrivateEndpointID != "":
		b.WriteString("conn_type=PrivateLink;private_endpoint=")
		b.WriteString(c.PrivateEndpointID)
	case c.SubnetID != "":
		b.WriteString("conn_type=Subnet;subnet=")
		b.WriteString(c.SubnetID)
	default:
		b.WriteString("conn_type=")
		b.WriteString(kind)
	}
	b.WriteString(";addr=")
	start := b.Len()
	var buf [64]byte
	b.Write(c.ClientAddr.AppendTo(buf[:0]))
	end := b.Len()
	b.WriteString(";act_addr_fam=")
	b.WriteString(fam)
	b.WriteString(";")
	info = b.String()
	return info, info[start:end]
}

func firewallDenial(d *Decision) *Denial {
	caller := d.Caller.String()
	if d.Network.Code == "ForbiddenByConnection" && d.Network.PrivateLinkUnknown {
		return &Denial{
			Status: 403, Code: "Forbidden", Inner: "ForbiddenByConnection",
			Message: "The request came through a private endpoint connection that is not approved for this vault.\r\n" +
				"Caller: " + caller + "\r\nVault: " + d.Vault.Label(),
		}
	}
	if d.Network.Code == "ForbiddenByConnection" {
		return &Denial{
			Status: 403, Code: "Forbidden", Inner: "ForbiddenByConnection",
			Message: "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\n" +
				"Caller: " + caller + "\r\nVault: " + d.Vault.Label(),
		}
	}
	addr := "unknown"
	if d.Network.ClientAddr.IsValid() {
		addr = d.Network.ClientAddr.String()
	}
	if d.Network.SubnetID != "" {
		addr += " from unknown subnet"
	}
	return &Denial{
		Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall",
		Message: "Client address is not authorized and caller is not a trusted service.\r\n" +
			"Client address: " + addr + "\r\nCaller: " + caller + "\r\nVault: " + d.Vault.Label(),
	}
}

func authorizeDenial(d *Decision) *Denial {
	v := &d.Authz
	caller := d.Caller.String()
	switch {
	case v.Code == CodeForbiddenByRbac || (v.Code == "" && v.Model == ModelRBAC):
		assignment := "(not found)"
		if v.AssignmentID != "" {
			assignment = v.AssignmentID
		}
		reason := "'DeniedWithNoValidRBAC'"
		if v.DecisionReason != "" {
			reason = "'" + v.DecisionReason + "'"
		}
		return &Denial{
			Status: 403, Code: "Forbidden", Inner: CodeForbiddenByRbac,
			Message: "Caller is not authorized to perform action on resource.\r\n" +
				"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
				"Caller: " + caller + "\r\n" +
				"Action: '" + d.Operation.DataAction + "'\r\n" +
				"Resource: '" + d.Vault.RBACResource(&d.Operation) + "'\r\n" +
				"Assignment: " + assignment + "\r\n" +
				"DenyAssignmentId: null\r\n" +
				"DecisionReason: " + reason + " \r\n" +
				"Vault: " + d.Vault.Label() + "\r\n",
		}
	case v.Code == CodeForbiddenByPolicy:
		msg := v.Message
		if msg == "" {
			msg = "The request was denied by the vault's policy"
			if v.Rule != "" {
				msg += " (" + v.Rule + ")"
			}
			msg += "."
		}
		return &Denial{
			Status: 403, Code: "Forbidden", Inner: CodeForbiddenByPolicy,
			Message: msg + "\r\nCaller: " + caller + "\r\nVault: " + d.Vault.Label(),
		}
	default:
		return &Denial{
			Status: 403, Code: "Forbidden", Inner: CodeAccessDenied,
			Message: "The user, group or application '" + caller + "' does not have " +
				d.Operation.Resource + " " + d.Operation.Permission +
				" permission on key vault '" + d.Vault.Label() +
				"'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
		}
	}
}

// StatusText is the HTTP reason phrase Key Vault's audit records use as
// resultSignature.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 413:
		return "Request Entity Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	}
	return strconv.Itoa(code)
}
