package controlplane

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// FuzzUpdateAccessPolicies: whatever the entries, add grants everything it
// was given and keeps identities unique, remove never grants, and neither
// touches identities it was not given.
func FuzzUpdateAccessPolicies(f *testing.F) {
	f.Add(uint8(1), "A", "", "get,list", "B", "app", "wrapKey")
	f.Add(uint8(3), "a", "", "GET", "A", "", "")
	f.Add(uint8(2), "x", "y", "all", "x", "Y", "purge,get")
	f.Fuzz(func(t *testing.T, kind uint8, oid1, app1, perms1, oid2, app2, perms2 string) {
		cur := []authz.AccessPolicy{
			{TenantID: "t", ObjectID: "A", Permissions: authz.Permissions{Secrets: []string{"get", "list"}}},
			{TenantID: "t", ObjectID: "B", ApplicationID: "app", Permissions: authz.Permissions{Keys: []string{"wrapKey"}}},
			{TenantID: "t", ObjectID: "untouched", Permissions: authz.Permissions{Storage: []string{"get"}}},
		}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		entries := []authz.AccessPolicy{
			{ObjectID: oid1, ApplicationID: app1, Permissions: authz.Permissions{Secrets: split(perms1)}},
			{ObjectID: oid2, ApplicationID: app2, Permissions: authz.Permissions{Secrets: split(perms2), Keys: split(perms2)}},
		}
		k := PolicyUpdate(kind%4 + 0)
		out, err := UpdateAccessPolicies(cur, k, entries)
		if k < PolicyAdd || k > PolicyRemove {
			if err == nil {
				t.Fatal("an unknown kind was accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		given := map[string]bool{}
		for _, e := range entries {
			given[policyKey(e)] = true
		}
		held := map[string]authz.AccessPolicy{}
		for _, p := range out {
			held[policyKey(p)] = p
		}
		switch k {
		case PolicyAdd:
			if len(held) != len(out) {
				t.Fatalf("add left duplicate identities: %+v", out)
			}
			for _, e := range entries {
				p := held[policyKey(e)]
				for _, perm := range e.Permissions.Secrets {
					if !containsFold(p.Permissions.Secrets, perm) {
						t.Fatalf("add lost %q: %+v", perm, out)
					}
				}
			}
		case PolicyRemove:
			before := map[string]authz.AccessPolicy{}
			for _, p := range cur {
				before[policyKey(p)] = p
			}
			for key, p := range held {
				b, ok := before[key]
				if !ok {
					t.Fatalf("remove created %+v", p)
				}
				for _, perm := range p.Permissions.Secrets {
					if !containsFold(b.Permissions.Secrets, perm) {
						t.Fatalf("remove granted %q", perm)
					}
				}
				if given[key] && isEmpty(p.Permissions) {
					t.Fatalf("remove kept an empty entry %+v", p)
				}
			}
		case PolicyReplace:
			if len(out) != len(entries) {
				t.Fatalf("replace: %d entries for %d given", len(out), len(entries))
			}
		}
		if k != PolicyReplace && !given[policyKey(cur[2])] {
			if p, ok := held[policyKey(cur[2])]; !ok || len(p.Permissions.Storage) != 1 {
				t.Fatalf("an identity nobody named changed: %+v", out)
			}
		}
	})
}
