package controlplane

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

func ap(oid, app string, secrets, keys []string) authz.AccessPolicy {
	return authz.AccessPolicy{TenantID: "t", ObjectID: oid, ApplicationID: app,
		Permissions: authz.Permissions{Secrets: secrets, Keys: keys}}
}

func l(s ...string) []string { return s }

func TestUpdateAccessPolicies(t *testing.T) {
	cur := []authz.AccessPolicy{
		ap("A", "", l("get", "list"), nil),
		ap("B", "", l("get"), l("wrapKey")),
		ap("A", "app1", l("set"), nil), // compound identity: a different entry
	}
	for _, tc := range []struct {
		name    string
		kind    PolicyUpdate
		entries []authz.AccessPolicy
		want    []authz.AccessPolicy
	}{
		{"add merges into the entry with the same objectId", PolicyAdd,
			[]authz.AccessPolicy{ap("a", "", l("LIST", "delete"), l("get"))},
			[]authz.AccessPolicy{ap("A", "", l("get", "list", "delete"), l("get")), cur[1], cur[2]}},
		{"add appends a new identity", PolicyAdd,
			[]authz.AccessPolicy{ap("C", "", l("get"), nil)},
			[]authz.AccessPolicy{cur[0], cur[1], cur[2], ap("C", "", l("get"), nil)}},
		{"add keys the entry by objectId and applicationId", PolicyAdd,
			[]authz.AccessPolicy{ap("A", "APP1", l("get"), nil)},
			[]authz.AccessPolicy{cur[0], cur[1], ap("A", "app1", l("set", "get"), nil)}},
		{"add of permissions already held changes nothing", PolicyAdd,
			[]authz.AccessPolicy{ap("B", "", l("Get"), l("WRAPKEY"))},
			cur},
		{"add canonicalises casing and drops duplicates", PolicyAdd,
			[]authz.AccessPolicy{ap("D", "", l("GET", "get", "List"), l("wrapkey"))},
			[]authz.AccessPolicy{cur[0], cur[1], cur[2], ap("D", "", l("get", "list"), l("wrapKey"))}},
		{"add of two entries for one identity merges each permission once", PolicyAdd,
			[]authz.AccessPolicy{ap("B", "", l("delete"), l("sign")), ap("b", "", l("Delete", "set"), l("SIGN"))},
			[]authz.AccessPolicy{cur[0], ap("B", "", l("get", "delete", "set"), l("wrapKey", "sign")), cur[2]}},
		{"add of a new identity twice holds each permission once", PolicyAdd,
			[]authz.AccessPolicy{ap("E", "", l("get"), nil), ap("E", "", l("list"), nil), ap("e", "", l("LIST"), nil)},
			[]authz.AccessPolicy{cur[0], cur[1], cur[2], ap("E", "", l("get", "list"), nil)}},
		{"remove takes the listed permissions away", PolicyRemove,
			[]authz.AccessPolicy{ap("A", "", l("LIST"), nil)},
			[]authz.AccessPolicy{ap("A", "", l("get"), nil), cur[1], cur[2]}},
		{"remove drops an entry left empty", PolicyRemove,
			[]authz.AccessPolicy{ap("B", "", l("get"), l("wrapKey"))},
			[]authz.AccessPolicy{cur[0], cur[2]}},
		{"remove without permissions drops the whole entry", PolicyRemove,
			[]authz.AccessPolicy{ap("A", "", nil, nil)},
			[]authz.AccessPolicy{cur[1], cur[2]}},
		{"remove leaves the compound entry alone", PolicyRemove,
			[]authz.AccessPolicy{ap("A", "", l("set"), nil)},
			cur},
		{"remove of an unknown identity is ignored", PolicyRemove,
			[]authz.AccessPolicy{ap("Z", "", l("get"), nil)},
			cur},
		{"replace sets the whole list", PolicyReplace,
			[]authz.AccessPolicy{ap("Z", "", l("get"), nil)},
			[]authz.AccessPolicy{ap("Z", "", l("get"), nil)}},
		{"replace with nothing empties the list", PolicyReplace, nil, []authz.AccessPolicy{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := clonePolicies(cur)
			got, err := UpdateAccessPolicies(cur, tc.kind, tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(got), norm(tc.want)) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(cur, before) {
				t.Fatal("the list in force was modified")
			}
		})
	}
	if _, err := UpdateAccessPolicies(cur, 0, nil); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
}

func clonePolicies(l []authz.AccessPolicy) []authz.AccessPolicy {
	out := make([]authz.AccessPolicy, len(l))
	for i, p := range l {
		out[i] = clonePolicy(p)
	}
	return out
}

// norm makes nil and empty lists compare equal.
func norm(l []authz.AccessPolicy) []authz.AccessPolicy {
	out := []authz.AccessPolicy{}
	for _, p := range l {
		p = clonePolicy(p)
		for _, f := range []*[]string{&p.Permissions.Keys, &p.Permissions.Secrets, &p.Permissions.Certificates, &p.Permissions.Storage} {
			if len(*f) == 0 {
				*f = nil
			}
		}
		out = append(out, p)
	}
	return out
}

func TestApplyNetworkPatch(t *testing.T) {
	cur := &config.Properties{PublicNetworkAccess: "Enabled", NetworkAcls: &config.NetworkAcls{
		DefaultAction: "Deny", Bypass: "AzureServices", IPRules: []config.IPRule{{Value: "203.0.113.0/24"}}}}
	in := &config.NetworkAcls{DefaultAction: "Allow", IPRules: []config.IPRule{{Value: "192.0.2.1"}}}
	for _, tc := range []struct {
		name     string
		patch    NetworkPatch
		wantPNA  string
		wantACLs *config.NetworkAcls
		wantErr  string // the PatchError's field
	}{
		{"ip rules only", NetworkPatch{Paths: l(PathIPRules), NetworkAcls: in}, "",
			&config.NetworkAcls{DefaultAction: "Deny", Bypass: "AzureServices", IPRules: in.IPRules}, ""},
		{"default action only", NetworkPatch{Paths: l(PathDefaultAction), NetworkAcls: in}, "",
			&config.NetworkAcls{DefaultAction: "Allow", Bypass: "AzureServices", IPRules: cur.NetworkAcls.IPRules}, ""},
		{"whole rule set, unspecified enums take ARM's defaults", NetworkPatch{Paths: l(PathNetworkAcls), NetworkAcls: &config.NetworkAcls{IPRules: in.IPRules}}, "",
			&config.NetworkAcls{DefaultAction: "Allow", Bypass: "AzureServices", IPRules: in.IPRules}, ""},
		{"public access", NetworkPatch{Paths: l(PathPublicNetworkAccess), PublicNetworkAccess: "Disabled"}, "Disabled", nil, ""},
		{"empty mask", NetworkPatch{NetworkAcls: in}, "", nil, "update_mask"},
		{"unknown path", NetworkPatch{Paths: l("access_policies")}, "", nil, "update_mask"},
		{"repeated path", NetworkPatch{Paths: l(PathIPRules, PathIPRules), NetworkAcls: in}, "", nil, "update_mask"},
		{"whole set and a field of it", NetworkPatch{Paths: l(PathNetworkAcls, PathIPRules), NetworkAcls: in}, "", nil, "update_mask"},
		{"unspecified bypass under a field path", NetworkPatch{Paths: l(PathBypass), NetworkAcls: in}, "", nil, PathBypass},
		{"unspecified public access", NetworkPatch{Paths: l(PathPublicNetworkAccess)}, "", nil, PathPublicNetworkAccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pna, acls, err := ApplyNetworkPatch(cur, tc.patch)
			if tc.wantErr != "" {
				var pe *PatchError
				if !errors.As(err, &pe) || pe.Field != tc.wantErr {
					t.Fatalf("err = %v, want a PatchError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pna != tc.wantPNA || !reflect.DeepEqual(acls, tc.wantACLs) {
				t.Errorf("got %q %+v, want %q %+v", pna, acls, tc.wantPNA, tc.wantACLs)
			}
			if cur.NetworkAcls.DefaultAction != "Deny" || len(cur.NetworkAcls.IPRules) != 1 {
				t.Fatal("the properties in force were modified")
			}
		})
	}
}

func TestRoleAssignments(t *testing.T) {
	cur := []authz.RoleAssignment{{ID: "r1", PrincipalID: "p1", RoleDefinitionID: "Key Vault Secrets User", Scope: ""}}
	for _, tc := range []struct {
		name     string
		ra       authz.RoleAssignment
		existing bool
		err      bool
	}{
		{"new", authz.RoleAssignment{ID: "r2", PrincipalID: "p2", RoleDefinitionID: "Key Vault Reader"}, false, false},
		{"same again is idempotent", authz.RoleAssignment{ID: "r1", PrincipalID: "P1", RoleDefinitionID: "key vault secrets user", Scope: "/"}, true, false},
		{"same id, other content", authz.RoleAssignment{ID: "r1", PrincipalID: "p9", RoleDefinitionID: "Key Vault Reader"}, false, true},
		{"same grant under another id", authz.RoleAssignment{ID: "r3", PrincipalID: "p1", RoleDefinitionID: "Key Vault Secrets User"}, false, true},
		{"same principal and role at another scope", authz.RoleAssignment{ID: "r4", PrincipalID: "p1", RoleDefinitionID: "Key Vault Secrets User", Scope: "/secrets/db"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, existing, err := CreateRoleAssignment(cur, tc.ra)
			if tc.err {
				if !errors.Is(err, errExists) {
					t.Fatalf("err = %v, want errExists", err)
				}
				return
			}
			if err != nil || existing != tc.existing {
				t.Fatalf("existing=%v err=%v", existing, err)
			}
			if !existing && (len(out) != 2 || out[1].ID != tc.ra.ID) {
				t.Fatalf("out = %+v", out)
			}
		})
	}
	out, ok := DeleteRoleAssignment(cur, "r1")
	if !ok || len(out) != 0 || len(cur) != 1 {
		t.Fatalf("delete: %v %+v (cur %+v)", ok, out, cur)
	}
	if _, ok := DeleteRoleAssignment(cur, "nope"); ok {
		t.Fatal("deleted an assignment that does not exist")
	}
}

// TestUpdateAccessPoliciesTenant: the tenant is part of an entry's
// identity; another tenant's entry with the same objectId is another entry.
func TestUpdateAccessPoliciesTenant(t *testing.T) {
	cur := []authz.AccessPolicy{ap("A", "", l("get"), nil)}
	other := ap("A", "", l("delete"), nil)
	other.TenantID = "other"
	got, err := UpdateAccessPolicies(cur, PolicyAdd, []authz.AccessPolicy{other})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(norm(got[:1]), norm(cur)) {
		t.Fatalf("add with another tenant merged into the vault-tenant entry: %+v", got)
	}
	other.Permissions.Secrets = l("get")
	got, err = UpdateAccessPolicies(cur, PolicyRemove, []authz.AccessPolicy{other})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(norm(got), norm(cur)) {
		t.Fatalf("remove with another tenant touched the vault-tenant entry: %+v", got)
	}
}

// TestUpdateAccessPoliciesLinear: merging n entries costs O(n). The
// quadratic merge took about 1 s of CPU at 4,096 distinct identities and
// tens of seconds at 20,000; the bound is generous for -race on a busy
// machine.
func TestUpdateAccessPoliciesLinear(t *testing.T) {
	const n = 20000
	distinct := make([]authz.AccessPolicy, n)
	onePerm := make([]authz.AccessPolicy, n)
	for i := range distinct {
		distinct[i] = ap(fmt.Sprintf("oid-%d", i), "", l("get"), nil)
		onePerm[i] = ap("A", "", l(fmt.Sprintf("p%d", i), "get"), nil)
	}
	cur := func() []authz.AccessPolicy { return []authz.AccessPolicy{ap("A", "", l("get", "list"), nil)} }
	for _, tc := range []struct {
		name    string
		kind    PolicyUpdate
		entries []authz.AccessPolicy
		check   func(out []authz.AccessPolicy) bool
	}{
		{"add of distinct identities", PolicyAdd, distinct, func(out []authz.AccessPolicy) bool { return len(out) == n+1 }},
		{"add to one identity", PolicyAdd, onePerm, func(out []authz.AccessPolicy) bool {
			return len(out) == 1 && len(out[0].Permissions.Secrets) == n+2
		}},
		{"remove of distinct identities", PolicyRemove, distinct, func(out []authz.AccessPolicy) bool { return len(out) == 1 }},
		{"remove from one identity", PolicyRemove, onePerm, func(out []authz.AccessPolicy) bool {
			return len(out) == 1 && reflect.DeepEqual(out[0].Permissions.Secrets, l("list"))
		}},
	} {
		start := time.Now()
		out, err := UpdateAccessPolicies(cur(), tc.kind, tc.entries)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.check(out) {
			t.Fatalf("%s: wrong result (%d entries)", tc.name, len(out))
		}
		if took > 5*time.Second {
			t.Fatalf("%s: %d entries took %v", tc.name, n, took)
		}
		t.Logf("%s, %d entries: %v", tc.name, n, took)
	}
}
