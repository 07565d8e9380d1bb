package audit

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
)

// Record is one decision as a Key Vault AuditEvent (keyvault-spec §7), with
// vaultwall's own facts under the "vaultwall" key.
type Record struct {
	Time              Time   `json:"time"`
	ResourceID        string `json:"resourceId"`
	OperationName     string `json:"operationName"`
	OperationVersion  string `json:"operationVersion"`
	Category          string `json:"category"`
	ResultType        string `json:"resultType"`
	ResultSignature   string `json:"resultSignature"`
	ResultDescription string `json:"resultDescription"`
	// DurationMs is a string, as in Key Vault's records.
	DurationMs      string     `json:"durationMs"`
	CallerIPAddress string     `json:"callerIpAddress"`
	CorrelationID   string     `json:"correlationId"`
	Identity        *Identity  `json:"identity,omitempty"`
	Properties      Properties `json:"properties"`
	Vaultwall       Extension  `json:"vaultwall"`
}

// Identity is the caller as the verified token described it.
type Identity struct {
	// Claim holds every verified claim under its short name (oid, appid,
	// appidacr, idtyp, scp, upn, ipaddr, amr, xms_mirid, …): what the
	// policy saw, so replay can decide again. Never the token.
	Claim map[string]any `json:"claim"`
}

// Properties are the AuditEvent's properties.
type Properties struct {
	// ID is the object's URI, e.g. https://<vault>.vault.azure.net/secrets/db/<version>.
	ID         string `json:"id,omitempty"`
	ClientInfo string `json:"clientInfo,omitempty"`
	RequestURI string `json:"requestUri"`
	// HTTPStatusCode is vaultwall's answer: 200 when it let the request
	// through to the vault (whose own status it does not see).
	HTTPStatusCode int `json:"httpStatusCode"`
	// IsAccessPolicyMatch is set on access-policy vaults, IsRbacAuthorized
	// and AppliedAssignmentID on RBAC vaults.
	IsAccessPolicyMatch *bool  `json:"isAccessPolicyMatch,omitempty"`
	IsRbacAuthorized    *bool  `json:"isRbacAuthorized,omitempty"`
	AppliedAssignmentID string `json:"appliedAssignmentId,omitempty"`
	// AddrAuthType is PublicIP, Subnet, TrustedService or (vaultwall's
	// addition) PrivateLink; empty when the firewall did not run.
	AddrAuthType        string `json:"addrAuthType,omitempty"`
	IsAddressAuthorized *bool  `json:"isAddressAuthorized,omitempty"`
	SubnetID            string `json:"subnetId,omitempty"`
	PrivateEndpointID   string `json:"privateEndpointId,omitempty"`
	// TrustedService is null unless the caller was admitted as one.
	TrustedService *string `json:"trustedService"`
	// TLSVersion is not in Envoy's CheckRequest; empty unless known.
	TLSVersion string `json:"tlsVersion,omitempty"`
}

// Extension is what vaultwall adds to Key Vault's schema.
type Extension struct {
	DecisionID string `json:"decisionId"`
	Stage      string `json:"stage"`
	Allowed    bool   `json:"allowed"`
	// Operation is the classified Key Vault operation, also when
	// operationName is Authentication (a refused token).
	Operation string `json:"operation,omitempty"`
	// Denial is the refusal's status and codes; its message is
	// resultDescription.
	Denial *Denial `json:"denial,omitempty"`
	// Rules that decided.
	NetworkRule    string `json:"networkRule,omitempty"`
	TrustedInScope *bool  `json:"trustedServiceInScope,omitempty"`
	// TrustedProblem says why a client certificate naming a trusted
	// service was not recognised as it (no clientAuth EKU, no chain).
	TrustedProblem string `json:"trustedServiceProblem,omitempty"`
	PolicyModel    string `json:"policyModel,omitempty"`
	PolicyRule     string `json:"policyRule,omitempty"`
	PolicyReason   string `json:"policyReason,omitempty"`
	// AddressProblem says why the client address could not be determined.
	AddressProblem string `json:"addressProblem,omitempty"`
	// InternalError is the first line of the error behind a fail-closed
	// refusal (resultType Failure).
	InternalError string `json:"internalError,omitempty"`
	DurationUs    int64  `json:"durationUs"`
	// Request is what replay needs to decide the request again.
	Request *Request `json:"request,omitempty"`
}

// Denial is a refusal's status and codes.
type Denial struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	InnerCode string `json:"innerCode,omitempty"`
}

// Request is the part of the request a decision can depend on.
type Request struct {
	ID       string `json:"id,omitempty"` // Envoy's stream id
	Time     *Time  `json:"time,omitempty"`
	Method   string `json:"method"`
	Path     string `json:"path"` // query included
	Host     string `json:"host,omitempty"`
	Scheme   string `json:"scheme,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Headers are the RecordedHeaders the request carried.
	Headers map[string]string `json:"headers,omitempty"`
	// Peer is the connection's remote address, ip:port.
	Peer      string `json:"peer,omitempty"`
	Principal string `json:"principal,omitempty"`
	// Certificate is the client's leaf certificate in PEM, when the proxy
	// sent it: the trusted-service matcher verifies its chain and reads
	// its SANs, so replay needs the certificate itself, not a fingerprint.
	// A certificate is public.
	Certificate       string            `json:"certificate,omitempty"`
	TLS               bool              `json:"tls,omitempty"`
	SNI               string            `json:"sni,omitempty"`
	PrivateLink       *PrivateLink      `json:"privateLink,omitempty"`
	ContextExtensions map[string]string `json:"contextExtensions,omitempty"`
}

// PrivateLink holds the PROXY-protocol private-link TLV values.
type PrivateLink struct {
	AzureLinkID   *uint32 `json:"azureLinkId,omitempty"`
	AWSEndpointID string  `json:"awsEndpointId,omitempty"`
}

// RecordedHeaders are the request headers a record keeps: every header a
// stage or the shipped policy input reads, plus correlation ids. Anything
// else — authorization, cookies, x-vault-token and other credentials — is
// never written.
var RecordedHeaders = []string{
	":authority", ":method", ":path", ":scheme",
	"content-length", "content-type", "user-agent",
	"x-envoy-external-address", "x-forwarded-for", "x-forwarded-proto",
	"x-http-method", "x-http-method-override", "x-method-override",
	"x-ms-client-request-id", "x-request-id",
}

// Key Vault's category and result types.
const (
	Category       = "AuditEvent"
	ResultSuccess  = "Success"
	ResultFailure  = "Failure"
	OpAuthenticate = "Authentication"
)

// FromDecision builds the record of a decision that took elapsed.
func FromDecision(d *authz.Decision, elapsed time.Duration) *Record {
	req := d.Request
	if req == nil {
		req = &authz.Request{}
	}
	status := 200
	desc := ""
	if !d.Allowed {
		status = 500
		if d.Denial != nil {
			status, desc = d.Denial.Status, d.Denial.Message
		}
	}
	r := &Record{
		Time:              Time(d.Time),
		OperationName:     d.Operation.Name,
		OperationVersion:  d.Operation.APIVersion,
		Category:          Category,
		ResultType:        ResultSuccess,
		ResultSignature:   authz.StatusText(status),
		ResultDescription: authz.SanitizeMessage(desc, authz.MaxEchoMessage),
		DurationMs:        strconv.FormatInt(elapsed.Milliseconds(), 10),
		CorrelationID:     authz.Sanitize(req.Header("x-ms-client-request-id"), authz.MaxEchoValue),
	}
	if d.Vault != nil {
		r.ResourceID = strings.ToUpper(d.Vault.ResourceID)
	}
	if !d.Allowed && d.Stage == authz.StageAuthenticate && d.Err == nil {
		r.OperationName = OpAuthenticate // Key Vault logs refused tokens so
	}
	if r.OperationName == "" {
		r.OperationName = "Unknown"
	}
	if d.Err != nil {
		r.ResultType = ResultFailure
	}
	switch {
	case d.Network.ClientAddr.IsValid():
		r.CallerIPAddress = d.Network.ClientAddr.String()
	case req.Peer.IsValid():
		r.CallerIPAddress = req.Peer.Addr().String()
	}
	if d.Caller != nil && len(d.Caller.Claims) > 0 {
		r.Identity = &Identity{Claim: d.Caller.Claims}
	}
	r.Properties = properties(d, req, status)
	r.Vaultwall = extension(d, req, elapsed)
	return r
}

func properties(d *authz.Decision, req *authz.Request, status int) Properties {
	p := Properties{
		ClientInfo:     authz.Sanitize(req.Header("user-agent"), authz.MaxEchoValue),
		RequestURI:     requestURI(req),
		HTTPStatusCode: status,
		ID:             objectURI(req, &d.Operation),
	}
	if d.Authz.Evaluated {
		if d.Vault != nil && d.Vault.RBAC {
			ok := d.Authz.Allowed
			p.IsRbacAuthorized = &ok
			p.AppliedAssignmentID = d.Authz.AssignmentID
		} else {
			match := d.Authz.AccessPolicyMatch
			p.IsAccessPolicyMatch = &match
		}
	}
	n := &d.Network
	if n.Evaluated {
		ok := n.Allowed
		p.IsAddressAuthorized = &ok
		p.AddrAuthType = n.AuthType.String()
	}
	p.SubnetID = n.SubnetID
	p.PrivateEndpointID = n.PrivateEndpointID
	if n.TrustedService != "" && n.AuthType == authz.AddrTrustedService {
		ts := n.TrustedService
		p.TrustedService = &ts
	}
	return p
}

func extension(d *authz.Decision, req *authz.Request, elapsed time.Duration) Extension {
	// Rules and reasons may quote the request (an operator rule can name
	// anything it read): sanitised like every echoed value.
	x := Extension{
		DecisionID:     d.ID,
		Stage:          d.Stage.String(),
		Allowed:        d.Allowed,
		Operation:      d.Operation.Name,
		NetworkRule:    authz.Sanitize(d.Network.Rule, authz.MaxEchoValue),
		PolicyModel:    d.Authz.Model,
		PolicyRule:     authz.Sanitize(d.Authz.Rule, authz.MaxEchoValue),
		PolicyReason:   authz.Sanitize(d.Authz.Reason, authz.MaxEchoMessage),
		AddressProblem: authz.Sanitize(d.Network.Problem, authz.MaxEchoMessage),
		TrustedProblem: authz.Sanitize(d.Network.TrustedProblem, authz.MaxEchoMessage),
		DurationUs:     elapsed.Microseconds(),
		Request:        requestRecord(req),
	}
	if d.Denial != nil && !d.Allowed {
		x.Denial = &Denial{Status: d.Denial.Status, Code: d.Denial.Code, InnerCode: d.Denial.Inner}
	}
	if d.Network.TrustedService != "" {
		in := d.Network.TrustedInScope
		x.TrustedInScope = &in
	}
	if d.Err != nil {
		msg := d.Err.Error()
		if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
			msg = msg[:i]
		}
		if len(msg) > 1024 {
			msg = msg[:1024] + "…"
		}
		x.InternalError = msg
	}
	return x
}

func requestRecord(req *authz.Request) *Request {
	r := &Request{
		ID:                req.ID,
		Method:            req.Method,
		Path:              req.Path,
		Host:              req.Host,
		Scheme:            req.Scheme,
		Protocol:          req.Protocol,
		Principal:         req.Principal,
		Certificate:       req.CertificatePEM,
		TLS:               req.TLS,
		SNI:               req.SNI,
		ContextExtensions: req.ContextExtensions,
	}
	if !req.Time.IsZero() {
		t := Time(req.Time)
		r.Time = &t
	}
	if req.Peer.IsValid() {
		r.Peer = req.Peer.String()
	}
	for _, h := range RecordedHeaders {
		if v, ok := req.Headers[h]; ok {
			if r.Headers == nil {
				r.Headers = make(map[string]string, 8)
			}
			r.Headers[h] = v
		}
	}
	if pl := req.PrivateLink; pl.Present() {
		r.PrivateLink = &PrivateLink{AWSEndpointID: pl.AWSEndpointID}
		if pl.HasAzureLinkID {
			id := pl.AzureLinkID
			r.PrivateLink.AzureLinkID = &id
		}
	}
	return r
}

// requestURI is the full URL the client asked for.
func requestURI(req *authz.Request) string {
	if req.Host == "" && req.Path == "" {
		return ""
	}
	scheme := req.Scheme
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + req.Host + req.Path
}

// objectURI is Key Vault's properties.id: the vault URL and the object's
// collection, name and version ("https://v.vault.azure.net/secrets/db/<v>"),
// or the collection for collection operations. Collection and name are the
// canonical lower case every rule compared (requestUri keeps the client's
// spelling).
func objectURI(req *authz.Request, op *authz.Operation) string {
	if req.Host == "" || op.Name == "" || op.Resource == "" {
		return ""
	}
	path, _, _ := strings.Cut(req.Path, "?")
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if seg == "" {
		return ""
	}
	u := "https://" + req.Host + "/" + strings.ToLower(seg)
	if op.Object != "" {
		u += "/" + op.Object
		if op.Version != "" {
			u += "/" + op.Version
		}
	}
	return u
}

// Request rebuilds the authz.Request the record was decided on, minus what
// was never recorded (the token, other headers).
func (r *Record) Request() (*authz.Request, error) {
	rr := r.Vaultwall.Request
	if rr == nil {
		return nil, errNoRequest
	}
	req := &authz.Request{
		ID:                rr.ID,
		Method:            rr.Method,
		Path:              rr.Path,
		Host:              rr.Host,
		Scheme:            rr.Scheme,
		Protocol:          rr.Protocol,
		Headers:           rr.Headers,
		Principal:         rr.Principal,
		CertificatePEM:    rr.Certificate,
		TLS:               rr.TLS,
		SNI:               rr.SNI,
		ContextExtensions: rr.ContextExtensions,
	}
	if req.Headers == nil {
		req.Headers = map[string]string{}
	}
	if rr.Time != nil {
		req.Time = time.Time(*rr.Time)
	}
	if rr.Peer != "" {
		ap, err := netip.ParseAddrPort(rr.Peer)
		if err != nil {
			return nil, err
		}
		req.Peer = ap
	}
	if pl := rr.PrivateLink; pl != nil {
		req.PrivateLink.AWSEndpointID = pl.AWSEndpointID
		if pl.AzureLinkID != nil {
			req.PrivateLink.AzureLinkID, req.PrivateLink.HasAzureLinkID = *pl.AzureLinkID, true
		}
	}
	return req, nil
}

// Time is a UTC timestamp written with 7 fractional digits, as Key Vault
// writes it: 2026-11-27T10:00:00.1234567Z.
type Time time.Time

const timeLayout = "2006-01-02T15:04:05.0000000Z"

func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}
