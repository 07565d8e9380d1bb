package rego_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/rego"
)

// FuzzAuthorize asserts, for any caller and operation: the policy decides
// (no error), never allows a caller from another tenant, never allows a
// caller that no entry or assignment names, never returns an allow that
// carries a refusal code, and answers the same from its decision cache as
// a policy without one.
func FuzzAuthorize(f *testing.F) {
	f.Add(tenant, alice, webApp, opsGroup, "secrets", "get", "secrets/getSecret/action", "db", false)
	f.Add(tenant, backendSP, backendApp, "", "keys", "wrapKey", "keys/wrap/action", "k1", true)
	f.Add(strings.ToUpper(tenant), strings.ToUpper(alice), "", devGroup, "certificates", "GETISSUERS", "*/read", "", true)
	f.Add(otherTenant, alice, webApp, opsGroup, "secrets", "all", "*", "x", false)
	f.Add(tenant, "", "", "", "", "", "", "", false)
	f.Add(tenant, opsGroup, "\x00", alice, "secrets\n", "get", "Microsoft.KeyVault/vaults/secrets/*", "../db", true)

	ap := load(f, accessPolicies)
	rb := load(f, rbac)
	pAP, pRBAC := newPolicy(f, ap), newPolicy(f, rb)
	uncached := map[*rego.Policy]*rego.Policy{
		pAP:   newPolicy(f, ap, rego.WithDecisionCache(-1)),
		pRBAC: newPolicy(f, rb, rego.WithDecisionCache(-1)),
	}
	named := map[string]bool{}
	for _, e := range ap.Properties.AccessPolicies {
		named[strings.ToLower(e.ObjectID)] = true
	}
	for _, a := range rb.Properties.RoleAssignments {
		named[strings.ToLower(a.PrincipalID)] = true
	}

	f.Fuzz(func(t *testing.T, tid, oid, appid, group, resource, permission, action, object string, useRBAC bool) {
		cfg, p := ap, pAP
		if useRBAC {
			cfg, p = rb, pRBAC
		}
		c := &authz.Caller{TenantID: tid, ObjectID: oid, ApplicationID: appid, Groups: []string{group}, Expires: tokenExp}
		o := authz.Operation{Plane: authz.PlaneData, Resource: resource, Permission: permission,
			DataAction: authz.DataActionPrefix + action, Object: object}
		if object != "" {
			o.Scope = "/" + resource + "/" + object
		}
		v, err := p.Authorize(t.Context(), decision(cfg, c, o))
		if err != nil {
			t.Fatalf("no decision: %v", err)
		}
		want, err := uncached[p].Authorize(t.Context(), decision(cfg, c, o))
		again, err2 := p.Authorize(t.Context(), decision(cfg, c, o))
		if err != nil || err2 != nil || v != want || again != want {
			t.Fatalf("cached %+v then %+v, uncached %+v (%v, %v)", v, again, want, err, err2)
		}
		if !v.Allowed {
			return
		}
		if v.Code != "" || v.DecisionReason != "" {
			t.Fatalf("an allow with a refusal: %+v", v)
		}
		if !strings.EqualFold(tid, tenant) {
			t.Fatalf("allowed a caller from tenant %q: %+v", tid, v)
		}
		if !named[strings.ToLower(oid)] && !named[strings.ToLower(group)] {
			t.Fatalf("allowed oid %q, group %q that nothing names: %+v", oid, group, v)
		}
	})
}
