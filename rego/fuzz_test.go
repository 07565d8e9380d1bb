package rego_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/rego"
)

// FuzzAuthorize asserts, for any caller and operation: the policy decides
// (no error), answers the same from its decision cache as a policy without
// one, never returns an allow that carries a refusal code, and allows only
// when an independent oracle — the test configurations written out again as
// Go literals (apEntries, raEntries), judged with plain string and wildcard
// code, not the Rego under test — finds a granting entry for exactly that
// permission (or data action) and object, of the vault's tenant; the entry
// the verdict names is one such entry.
func FuzzAuthorize(f *testing.F) {
	f.Add(tenant, alice, webApp, opsGroup, "secrets", "get", "secrets/getSecret/action", "db", false)
	f.Add(tenant, backendSP, backendApp, "", "keys", "wrapKey", "keys/wrap/action", "k1", true)
	f.Add(strings.ToUpper(tenant), strings.ToUpper(alice), "", devGroup, "certificates", "GETISSUERS", "*/read", "", true)
	f.Add(otherTenant, alice, webApp, opsGroup, "secrets", "all", "*", "x", false)
	f.Add(tenant, "", "", "", "", "", "", "", false)
	f.Add(tenant, opsGroup, "\x00", alice, "secrets\n", "get", "Microsoft.KeyVault/vaults/secrets/*", "../db", true)
	// Hostile shapes: look-alike objects and scopes (prefix, suffix, slash,
	// case), actions one character off, wildcards in the input, padding.
	for _, obj := range []string{"db", "DB", "db2", "d", "db/", "db/x", "web", "web2", "WEB", " db", "db\x00", "d\u0131b"} {
		f.Add(tenant, backendSP, "", "", "secrets", "get", "secrets/getSecret/action", obj, true)
		f.Add(tenant, alice, "", "", "certificates", "get", "certificates/read", obj, true)
	}
	for _, action := range []string{"secrets/purge/action", "secrets/purge/action ", "SECRETS/PURGE/ACTION", "secrets/*", "*",
		"keys/read", "keys/readx", "keysx/read", "secrets/readMetadata/action", "secrets/readmetadata/actionx",
		"keyrotationpolicies/write", "keys", "/keys/read", "keys//read", "Microsoft.KeyVault/vaults/keys/read"} {
		f.Add(tenant, alice, webApp, opsGroup, "keys", "get", action, "", true)
		f.Add(tenant, backendSP, "", "", "secrets", "get", action, "", true)
	}
	for _, perm := range []string{"get", "GET", "Get ", "set", "all", "manageissuers", "setissuers", "getissuers", "purge", "wrapkey", "wrap"} {
		for _, fam := range []string{"secrets", "keys", "certificates", "Secrets"} {
			f.Add(tenant, alice, webApp, opsGroup, fam, perm, "", "", false)
			f.Add(tenant, backendSP, otherApp, "", fam, perm, "", "", false)
		}
	}

	ap := load(f, accessPolicies)
	rb := load(f, rbac)
	pAP, pRBAC := newPolicy(f, ap), newPolicy(f, rb)
	uncached := map[*rego.Policy]*rego.Policy{
		pAP:   newPolicy(f, ap, rego.WithDecisionCache(-1)),
		pRBAC: newPolicy(f, rb, rego.WithDecisionCache(-1)),
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
		var granting []string
		if useRBAC {
			granting = oracleRBAC(c, o)
		} else {
			granting = oracleAccessPolicies(c, o)
		}
		if len(granting) == 0 {
			t.Fatalf("allowed tenant %q oid %q app %q group %q %s/%q action %q object %q, but no entry grants it: %+v",
				tid, oid, appid, group, resource, permission, action, object, v)
		}
		named := false
		for _, g := range granting {
			named = named || g == v.Rule
		}
		if !named {
			t.Fatalf("allow names %q; the granting entries are %v", v.Rule, granting)
		}
	})
}

const vaultTenant = "00000000-0000-0000-0000-000000000001"

// apEntries is the accessPolicies configuration of policy_test.go, again.
var apEntries = []struct {
	oid, app string
	perms    map[string][]string
}{
	{"5e000000-0000-4000-8000-000000000001", "", map[string][]string{"secrets": {"get", "list"}, "keys": {"wrapkey"}}},
	{"a11ce000-0000-4000-8000-000000000001", "a9900000-0000-4000-8000-000000000001", map[string][]string{"secrets": {"set"}}},
	{"9a000000-0000-4000-8000-000000000001", "", map[string][]string{"secrets": {"get"}, "certificates": {"manageissuers"}}},
	{"a11ce000-0000-4000-8000-000000000001", "", map[string][]string{"keys": {"all"}}},
}

// oracleAccessPolicies names the entries that grant: the vault's tenant;
// the caller's oid (with its application for a compound entry) or one of
// its groups (not for a compound entry); the permission listed in the
// operation's family, or "all" there, or manageissuers for an issuer
// permission. Ids and permissions compare case-insensitively.
func oracleAccessPolicies(c *authz.Caller, o authz.Operation) []string {
	if strings.ToLower(c.TenantID) != vaultTenant {
		return nil
	}
	perm := strings.ToLower(o.Permission)
	var out []string
	for i, e := range apEntries {
		who := strings.ToLower(c.ObjectID) == e.oid && (e.app == "" || strings.ToLower(c.ApplicationID) == e.app)
		for _, g := range c.Groups {
			who = who || e.app == "" && strings.ToLower(g) == e.oid
		}
		if !who {
			continue
		}
		grants := false
		for _, p := range e.perms[o.Resource] {
			grants = grants || p == perm || p == "all"
		}
		if o.Resource == "certificates" {
			for _, p := range e.perms["certificates"] {
				switch perm {
				case "getissuers", "listissuers", "setissuers", "deleteissuers":
					grants = grants || p == "manageissuers"
				}
			}
		}
		if grants {
			out = append(out, fmt.Sprintf("accessPolicies[%d]", i))
		}
	}
	return out
}

// raEntries is the rbac configuration of policy_test.go, again, with the
// roles' data actions from the Key Vault reference table.
var raEntries = []struct {
	principal, scope string
	actions, not     []string
}{
	{"5e000000-0000-4000-8000-000000000001", "", []string{"*/read", "secrets/readmetadata/action"}, nil},                              // Key Vault Reader
	{"5e000000-0000-4000-8000-000000000001", "/secrets/db", []string{"secrets/getsecret/action", "secrets/readmetadata/action"}, nil}, // Secrets User
	{"9a000000-0000-4000-8000-000000000001", "", []string{"keys/*", "keyrotationpolicies/*"}, nil},                                    // Crypto Officer
	{"a11ce000-0000-4000-8000-000000000001", "", []string{"secrets/*"}, []string{"secrets/purge/action"}},                             // custom
	{"a11ce000-0000-4000-8000-000000000001", "/certificates/web",
		[]string{"certificates/read", "secrets/getsecret/action", "secrets/readmetadata/action", "keys/read"}, nil}, // Certificate User
}

// oracleRBAC names the assignments that grant: the vault's tenant; to the
// caller's oid or one of its groups; at the vault or at exactly the
// operation's object (lower-cased, never a prefix); whose role has a data
// action matching the operation's (Azure's "*": any run of characters) and
// no notDataAction matching it.
func oracleRBAC(c *authz.Caller, o authz.Operation) []string {
	const prefix = "microsoft.keyvault/vaults/"
	da := strings.ToLower(o.DataAction)
	if strings.ToLower(c.TenantID) != vaultTenant || !strings.HasPrefix(da, prefix) {
		return nil
	}
	act := da[len(prefix):]
	var out []string
	for i, a := range raEntries {
		who := strings.ToLower(c.ObjectID) == a.principal
		for _, g := range c.Groups {
			who = who || strings.ToLower(g) == a.principal
		}
		if !who || a.scope != "" && a.scope != strings.ToLower(o.Scope) {
			continue
		}
		allowed, excluded := false, false
		for _, p := range a.actions {
			allowed = allowed || starMatch(p, act)
		}
		for _, p := range a.not {
			excluded = excluded || starMatch(p, act)
		}
		if allowed && !excluded {
			out = append(out, fmt.Sprintf("roleAssignments[%d]", i))
		}
	}
	return out
}

// starMatch matches a pattern whose only metacharacter is "*" (any run of
// characters, "/" included) against the whole of s.
func starMatch(p, s string) bool {
	head, rest, star := strings.Cut(p, "*")
	if !star {
		return p == s
	}
	if !strings.HasPrefix(s, head) {
		return false
	}
	s = s[len(head):]
	for i := 0; i <= len(s); i++ {
		if starMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}
