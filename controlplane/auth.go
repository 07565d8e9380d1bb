package controlplane

import (
	"context"
	"crypto/x509"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/rego"
)

// method is what the policy knows about an RPC.
type method struct {
	action   string
	readOnly bool
}

// methods lists every RPC of VaultAdminService; any other is refused.
var methods = map[string]method{
	"GetVault":              {"vault/read", true},
	"UpdateVaultProperties": {"networkAcls/write", false},
	"UpdateAccessPolicies":  {"accessPolicies/write", false},
	"CreateRoleAssignment":  {"roleAssignments/write", false},
	"DeleteRoleAssignment":  {"roleAssignments/delete", false},
	"ListRoleAssignments":   {"roleAssignments/read", true},
	"ListTrustedServices":   {"trustedServices/read", true},
	"Explain":               {"explain/action", true},
	"CreateVault":           {"vaults/write", false},
	"DeleteVault":           {"vaults/delete", false},
	"ListVaults":            {"vaults/read", true},
}

// Caller is who called the control plane, once authenticated and
// authorized.
type Caller struct {
	// Token is the verified management token's caller, nil without one.
	Token *authz.Caller
	// Principal is the verified client certificate's identity ("" without
	// one); Admin says whether it matched controlPlane.adminPrincipals.
	Principal string
	Admin     bool
	// Reason is the policy's reason for its answer.
	Reason string
}

// String is the caller for the audit trail.
func (c *Caller) String() string {
	switch {
	case c == nil:
		return ""
	case c.Token != nil && c.Principal != "":
		return c.Token.String() + " (certificate " + c.Principal + ")"
	case c.Token != nil:
		return c.Token.String()
	case c.Principal != "":
		return "certificate " + c.Principal
	}
	return "anonymous"
}

type callerKey struct{}

// CallerFrom returns the authorized caller of an RPC.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// authenticator holds the management-audience token authenticators of the
// configuration in force, one per vault (each verifies tokens of its
// vault's tenant), by the vault's name in lower case.
type authenticator struct {
	mu     sync.RWMutex
	byName map[string]*token.Authenticator
}

// get is the authenticator of the vault called name. For a call naming no
// vault in force (none, such as Explain selecting by host, or an unknown
// one, refused once the caller is known) it is every vault's, the only one
// or, with several, each in turn: the first that verifies the token
// authenticates it.
func (a *authenticator) get(name string) []*token.Authenticator {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if n := a.byName[strings.ToLower(name)]; name != "" && n != nil {
		return []*token.Authenticator{n}
	}
	out := make([]*token.Authenticator, 0, len(a.byName))
	for _, k := range slices.Sorted(maps.Keys(a.byName)) {
		out = append(out, a.byName[k])
	}
	return out
}

func (a *authenticator) swap(n map[string]*token.Authenticator) {
	a.mu.Lock()
	old := a.byName
	a.byName = n
	a.mu.Unlock()
	for _, o := range old {
		o.Close()
	}
}

// unary authenticates and authorizes every call before its handler runs.
// A refused call is audited (outcome "denied", or "failed" when it could not
// be decided) with the caller as far as it is known and the reason.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := &Caller{}
	actx, err := s.authorize(ctx, info.FullMethod, vaultName(req), c)
	if err != nil {
		name := path.Base(info.FullMethod)
		if _, ok := methods[name]; !ok {
			name = info.FullMethod
		}
		outcome := "denied"
		if code := status.Code(err); code != codes.Unauthenticated && code != codes.PermissionDenied {
			outcome = "failed" // the token could not be verified now, or the policy could not decide
		}
		s.refused(ctx, name, c, outcome, err)
		return nil, err
	}
	return handler(actx, req)
}

// refused audits a call refused before its write ran, and logs it.
func (s *Server) refused(ctx context.Context, method string, c *Caller, outcome string, err error) {
	msg := status.Convert(err).Message()
	ch := Change{Method: method, Caller: c.String(), Address: peerAddress(ctx), Reason: c.Reason, Outcome: outcome, Error: msg}
	s.audit.Change(context.WithoutCancel(ctx), ch)
	s.log.Warn("control-plane call refused", "method", ch.Method, "caller", ch.Caller, "address", ch.Address,
		"code", status.Code(err).String(), "reason", ch.Reason, "error", msg)
}

// peerAddress is the caller's network address, "" when unknown.
func peerAddress(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// authorize fills c with what it learns of the caller, so that a refusal
// can name it.
// vault is the vault the request names ("" for none): its tenant's
// authenticator verifies the token, and the policy sees the vault's name.
func (s *Server) authorize(ctx context.Context, fullMethod, vault string, c *Caller) (context.Context, error) {
	name := path.Base(fullMethod)
	m, ok := methods[name]
	if !ok || path.Dir(fullMethod) != "/vaultwall.v1.VaultAdminService" {
		return ctx, status.Errorf(codes.PermissionDenied, "%s is not a control-plane method", fullMethod)
	}
	if cert := clientCert(ctx); cert != nil {
		c.Principal, c.Admin = s.matchAdmin(cert)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	switch auth := md.Get("authorization"); len(auth) {
	case 0:
	case 1:
		authns := s.authn.get(vault)
		if len(authns) == 0 {
			return ctx, status.Error(codes.Unauthenticated, "the control plane accepts no token: controlPlane.audiences is empty; use an admin client certificate")
		}
		req := &authz.Request{Headers: map[string]string{"authorization": auth[0]}}
		var deny *authz.Denial
		for _, authn := range authns {
			caller, d, err := authn.Authenticate(ctx, req, &authz.Operation{Plane: authz.PlaneControl})
			if err != nil {
				return ctx, status.Errorf(codes.Unavailable, "cannot verify the token now: %v", err)
			}
			if d == nil {
				c.Token, deny = caller, nil
				break
			}
			if deny == nil {
				deny = d
			}
		}
		if deny != nil {
			return ctx, status.Error(codes.Unauthenticated, deny.Message)
		}
	default:
		return ctx, status.Error(codes.Unauthenticated, "send one authorization header")
	}
	if c.Token == nil && c.Principal == "" {
		return ctx, status.Error(codes.Unauthenticated,
			"send a bearer token for the management audience, or connect with an admin client certificate")
	}
	d, err := s.policy.Authorize(ctx, policyInput(name, m, s.policyVault(vault), c))
	if err != nil {
		s.log.Error("control-plane policy could not decide; refusing", "method", name, "caller", c.String(), "error", err)
		return ctx, status.Errorf(codes.Internal, "the control-plane policy could not decide: %v", err)
	}
	c.Reason = d.Reason
	if !d.Allow {
		return ctx, status.Errorf(codes.PermissionDenied, "%s refused: %s", name, d.Reason)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// clientCert is the verified client certificate of the connection, nil
// when none was sent (or the listener has no client CA, so nothing was
// verified).
func clientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// matchAdmin names the certificate and reports whether it matches an
// admin principal. It is the trusted-service matcher of the data plane
// (peer.Principals): raw SAN bytes, SPIFFE patterns against the one URI SAN
// (a certificate with several is refused), DNS patterns against DNS SANs
// only, subject patterns against the subject only.
func (s *Server) matchAdmin(cert *x509.Certificate) (principal string, admin bool) {
	return s.admins.MatchCertificate(cert)
}

func policyInput(name string, m method, vault string, c *Caller) rego.ControlInput {
	in := rego.ControlInput{Method: name, Action: m.action, ReadOnly: m.readOnly, Vault: vault}
	if t := c.Token; t != nil {
		in.Token = &rego.ControlToken{
			ObjectID: t.ObjectID, ApplicationID: t.ApplicationID, TenantID: t.TenantID,
			Roles: t.Roles, Groups: t.Groups, Scopes: t.Scopes, Claims: t.Claims,
		}
	}
	if c.Principal != "" {
		in.Certificate = &rego.ControlCertificate{Principal: c.Principal, Admin: c.Admin}
	}
	return in
}
