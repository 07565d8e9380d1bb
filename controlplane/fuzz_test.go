package controlplane

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// model is the fuzz oracle's own reading of an access-policy list: the
// identities in order, and per identity a set of lower-case permissions per
// family. It is written from ARM's description of add / remove / replace,
// not from the code under test.
type model struct {
	order []string
	perms map[string]*[4]map[string]bool
}

func modelKey(p authz.AccessPolicy) string {
	return strings.ToLower(p.TenantID) + "\x00" + strings.ToLower(p.ObjectID) + "\x00" + strings.ToLower(p.ApplicationID)
}

func modelSets(p authz.AccessPolicy) *[4]map[string]bool {
	var s [4]map[string]bool
	for f, list := range [4][]string{p.Permissions.Keys, p.Permissions.Secrets, p.Permissions.Certificates, p.Permissions.Storage} {
		s[f] = map[string]bool{}
		for _, perm := range list {
			s[f][strings.ToLower(perm)] = true
		}
	}
	return &s
}

func modelEmpty(s *[4]map[string]bool) bool {
	return len(s[0])+len(s[1])+len(s[2])+len(s[3]) == 0
}

func newModel(list []authz.AccessPolicy) *model {
	m := &model{perms: map[string]*[4]map[string]bool{}}
	for _, p := range list {
		k := modelKey(p)
		m.order = append(m.order, k)
		m.perms[k] = modelSets(p)
	}
	return m
}

func (m *model) add(e authz.AccessPolicy) {
	k := modelKey(e)
	cur, ok := m.perms[k]
	if !ok {
		m.order = append(m.order, k)
		m.perms[k] = modelSets(e)
		return
	}
	for f, set := range modelSets(e) {
		for perm := range set {
			cur[f][perm] = true
		}
	}
}

func (m *model) remove(e authz.AccessPolicy) {
	k := modelKey(e)
	cur, ok := m.perms[k]
	if !ok {
		return
	}
	give := modelSets(e)
	if !modelEmpty(give) {
		for f, set := range give {
			for perm := range set {
				delete(cur[f], perm)
			}
		}
		if !modelEmpty(cur) {
			return
		}
	}
	delete(m.perms, k)
	m.order = slices.DeleteFunc(m.order, func(x string) bool { return x == k })
}

func sameSets(a, b *[4]map[string]bool) bool {
	for f := range a {
		if len(a[f]) != len(b[f]) {
			return false
		}
		for perm := range a[f] {
			if !b[f][perm] {
				return false
			}
		}
	}
	return true
}

// FuzzUpdateAccessPolicies compares UpdateAccessPolicies with an oracle of
// its own (model): the identities in order, each with exactly the
// permissions ARM's add / remove / replace leave it, tenant included in the
// identity; no duplicate permission in an entry; the list in force never
// modified.
func FuzzUpdateAccessPolicies(f *testing.F) {
	f.Add(uint8(1), "t", "A", "", "get,list", "t", "B", "app", "wrapKey")
	f.Add(uint8(3), "t", "a", "", "GET", "T", "A", "", "")
	f.Add(uint8(2), "t", "x", "y", "all", "t", "x", "Y", "purge,get")
	f.Add(uint8(1), "other-tenant", "A", "", "delete", "t", "A", "", "GET,Get,get")
	f.Add(uint8(3), "other-tenant", "A", "", "", "t", "B", "APP", "wrapkey")
	f.Add(uint8(3), "t", "B", "app", "get", "t", "B", "app", "wrapKey")
	f.Add(uint8(1), "t", "untouched", "", "", "t", "new", "", "a,,b")
	f.Fuzz(func(t *testing.T, kind uint8, t1, oid1, app1, perms1, t2, oid2, app2, perms2 string) {
		inForce := func() []authz.AccessPolicy {
			return []authz.AccessPolicy{
				{TenantID: "t", ObjectID: "A", Permissions: authz.Permissions{Secrets: []string{"get", "list"}}},
				{TenantID: "t", ObjectID: "B", ApplicationID: "app", Permissions: authz.Permissions{Keys: []string{"wrapKey"}}},
				{TenantID: "t", ObjectID: "untouched", Permissions: authz.Permissions{Storage: []string{"get"}}},
			}
		}
		cur := inForce()
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		entries := []authz.AccessPolicy{
			{TenantID: t1, ObjectID: oid1, ApplicationID: app1, Permissions: authz.Permissions{Secrets: split(perms1)}},
			{TenantID: t2, ObjectID: oid2, ApplicationID: app2, Permissions: authz.Permissions{Secrets: split(perms2), Keys: split(perms2)}},
		}
		k := PolicyUpdate(kind % 4)
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
		if !reflect.DeepEqual(cur, inForce()) {
			t.Fatal("the list in force was modified")
		}
		for _, p := range out {
			for _, list := range [][]string{p.Permissions.Keys, p.Permissions.Secrets, p.Permissions.Certificates, p.Permissions.Storage} {
				seen := map[string]bool{}
				for _, perm := range list {
					if seen[strings.ToLower(perm)] {
						t.Fatalf("duplicate permission %q in %+v", perm, p)
					}
					seen[strings.ToLower(perm)] = true
				}
			}
		}
		if k == PolicyReplace {
			if len(out) != len(entries) {
				t.Fatalf("replace: %d entries for %d given", len(out), len(entries))
			}
			for i := range entries {
				if modelKey(out[i]) != modelKey(entries[i]) || !sameSets(modelSets(out[i]), modelSets(entries[i])) {
					t.Fatalf("replace: entry %d is %+v, want %+v", i, out[i], entries[i])
				}
			}
			return
		}
		want := newModel(cur)
		for _, e := range entries {
			if k == PolicyAdd {
				want.add(e)
			} else {
				want.remove(e)
			}
		}
		got := newModel(out)
		if !slices.Equal(got.order, want.order) {
			t.Fatalf("identities %q, want %q\nout: %+v", got.order, want.order, out)
		}
		for key, w := range want.perms {
			if !sameSets(got.perms[key], w) {
				t.Fatalf("%q holds %v, want %v", key, *got.perms[key], *w)
			}
		}
	})
}
