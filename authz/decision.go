package authz

import (
	"net/netip"
	"time"
)

// Stage names a step of the pipeline.
type Stage uint8

const (
	StageNone Stage = iota
	StageClassify
	StageAuthenticate
	StageFirewall
	StageAuthorize
	// StageVault selects the vault by the request's host. It runs first;
	// it is numbered last so that the stages' numbers stayed as they were.
	StageVault
)

var stageNames = [...]string{"none", "classify", "authenticate", "firewall", "authorize", "vault"}

func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return "unknown"
}

// Decision is the one value a request's pass down the pipeline builds. Each
// stage adds its verdict; the first final verdict ends the pass.
type Decision struct {
	ID      string
	Time    time.Time
	Vault   *Vault
	Request *Request

	Operation Operation
	Caller    *Caller
	Network   NetworkVerdict
	Authz     AuthzVerdict

	// Allowed is the outcome. Stage is the stage that decided: the denying
	// stage, or the last one that ran for an allow.
	Allowed bool
	Stage   Stage
	// Denial describes the refusal; nil when Allowed.
	Denial *Denial
	// Err is the internal error or panic behind a fail-closed deny, for logs
	// and audit only: it never reaches the client.
	Err error
	// ClassifyDenial is the classifier's refusal, nil when the request was
	// classified. Key Vault answers 401 first, so it is the answer (Denial,
	// Stage classify) only once the caller has authenticated; otherwise the
	// 401 (or a fail-closed 500) is, and it stays here for explain and logs.
	ClassifyDenial *Denial

	idBuf [36]byte // ID's bytes when Decide made it (see newID)
}

// Denial is a refusal as Key Vault would answer it.
type Denial struct {
	Status int    // HTTP status: 400, 401, 403, 500, …
	Code   string // error.code: "Unauthorized", "Forbidden", "BadParameter", …
	Inner  string // error.innererror.code, "" for none: "ForbiddenByFirewall", …
	// Message is error.message. Key Vault separates lines with \r\n.
	Message string
	// Challenge asks for the WWW-Authenticate bearer challenge (every 401).
	Challenge bool
}

// ErrorCode is what x-ms-error-code carries: the inner code when there is
// one, since that is what Azure SDK clients surface as ResponseError.ErrorCode.
func (d *Denial) ErrorCode() string {
	if d.Inner != "" {
		return d.Inner
	}
	return d.Code
}

// AddrAuthType is how the network stage admitted (or placed) the caller, in
// the AuditEvent's addrAuthType vocabulary, extended with vaultwall's cases.
type AddrAuthType uint8

const (
	AddrUnknown AddrAuthType = iota
	AddrPublicIP
	AddrSubnet
	AddrPrivateLink
	AddrTrustedService
)

var addrAuthNames = [...]string{"", "PublicIP", "Subnet", "PrivateLink", "TrustedService"}

func (a AddrAuthType) String() string {
	if int(a) < len(addrAuthNames) {
		return addrAuthNames[a]
	}
	return ""
}

// Connection is where a request came from, as the network stage sees it
// before any rule is applied.
type Connection struct {
	// ClientAddr is the client's address: the peer, or the X-Forwarded-For
	// entry that network.trustedProxies says to believe. Invalid when it
	// could not be determined (Problem says why).
	ClientAddr netip.Addr
	// SubnetID is the inventory subnet that contains ClientAddr, "" if none.
	SubnetID string
	// PrivateEndpointID is the approved private endpoint the request came
	// through, "" if none. PrivateLinkUnknown is true when PROXY-protocol
	// TLVs named an endpoint that is not approved.
	PrivateEndpointID  string
	PrivateLinkUnknown bool
	// Problem explains why ClientAddr is invalid ("" when valid).
	Problem string
}

// NetworkVerdict is the firewall's answer.
type NetworkVerdict struct {
	Connection
	Evaluated bool
	Allowed   bool
	// AuthType is how the caller was admitted (or, on a deny, where it came
	// from).
	AuthType AddrAuthType
	// Rule is the rule that decided, for explain and audit:
	// "ipRules[3]=203.0.113.0/24", "defaultAction=Allow", …
	Rule string
	// TrustedService is the catalog name of the trusted service the request
	// was recognised as, "" if none; TrustedInScope says whether the
	// operation lies inside that service's scope.
	TrustedService string
	TrustedInScope bool
	// TrustedProblem says why a client certificate that names a trusted
	// service was not recognised as it, "" otherwise.
	TrustedProblem string
	// Code is the refusal's inner code: "ForbiddenByFirewall" or
	// "ForbiddenByConnection".
	Code string
}

// AuthorizeModel names the authorization model that decided.
const (
	ModelAccessPolicy = "accessPolicy"
	ModelRBAC         = "rbac"
)

// Inner codes of authorization refusals.
const (
	CodeAccessDenied      = "AccessDenied"
	CodeForbiddenByRbac   = "ForbiddenByRbac"
	CodeForbiddenByPolicy = "ForbiddenByPolicy"
)

// AuthzVerdict is the authorize stage's answer.
type AuthzVerdict struct {
	Evaluated bool
	Allowed   bool
	// Model is ModelAccessPolicy or ModelRBAC.
	Model string
	// Code is the refusal's inner code: CodeAccessDenied, CodeForbiddenByRbac
	// or CodeForbiddenByPolicy (an operator rule).
	Code string
	// Rule names what decided: the access-policy entry or role assignment
	// that granted, or the operator rule that denied.
	Rule string
	// Reason explains the verdict in a sentence, for explain and logs.
	Reason string
	// Message replaces the built-in refusal text (operator deny rules).
	Message string
	// AccessPolicyMatch is the AuditEvent's isAccessPolicyMatch.
	AccessPolicyMatch bool
	// AssignmentID is the RBAC assignment that granted (appliedAssignmentId).
	AssignmentID string
	// DecisionReason is RBAC's DecisionReason on a refusal.
	DecisionReason string
}
