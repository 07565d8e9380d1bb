package controlplane

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// PolicyUpdate is ARM's accessPolicies operationKind.
type PolicyUpdate int

const (
	PolicyAdd PolicyUpdate = iota + 1
	PolicyReplace
	PolicyRemove
)

func (k PolicyUpdate) String() string {
	switch k {
	case PolicyAdd:
		return "add"
	case PolicyReplace:
		return "replace"
	case PolicyRemove:
		return "remove"
	}
	return "unknown"
}

// UpdateAccessPolicies applies one accessPolicies/{add|replace|remove} to
// the list in force and returns the new list; cur is not modified.
//
//   - add: each entry's permissions are merged into the entry with the same
//     tenantId, objectId and applicationId (compared case-insensitively), or
//     the entry is appended.
//   - replace: the list becomes the entries given.
//   - remove: each entry's permissions are taken away from the matching
//     entry (same tenantId, objectId and applicationId), and an entry left
//     without any permission is dropped; an entry given without permissions
//     drops the matching entry whole. Removing "get" from an entry holding
//     "all" leaves "all": permissions are removed as written. An entry that
//     matches nothing is ignored.
//
// Permissions compare case-insensitively and keep Key Vault's casing when
// known; an unknown one is kept as written for validation to refuse with
// its field path. The work is linear in len(cur) plus the size of entries.
func UpdateAccessPolicies(cur []authz.AccessPolicy, kind PolicyUpdate, entries []authz.AccessPolicy) ([]authz.AccessPolicy, error) {
	switch kind {
	case PolicyReplace:
		out := make([]authz.AccessPolicy, 0, len(entries))
		for _, e := range entries {
			out = append(out, normalizePolicy(e))
		}
		return out, nil
	case PolicyAdd, PolicyRemove:
	default:
		return nil, fmt.Errorf("access policy update kind %d: want add, replace or remove", kind)
	}
	out := make([]authz.AccessPolicy, 0, len(cur)+len(entries))
	at := make(map[string]int, len(cur)+len(entries))
	for _, p := range cur {
		if _, dup := at[policyKey(p)]; !dup {
			at[policyKey(p)] = len(out)
		}
		out = append(out, clonePolicy(p))
	}
	held := map[int]*permSet{} // the permissions of out[i], built on first use
	setOf := func(i int) *permSet {
		if held[i] == nil {
			held[i] = newPermSet(&out[i].Permissions)
		}
		return held[i]
	}
	dropped := map[int]bool{}
	for _, e := range entries {
		e = normalizePolicy(e)
		k := policyKey(e)
		i, ok := at[k]
		switch {
		case kind == PolicyAdd && !ok:
			at[k] = len(out)
			out = append(out, e)
		case kind == PolicyAdd:
			setOf(i).add(&out[i].Permissions, &e.Permissions)
		case !ok:
		case isEmpty(e.Permissions):
			dropped[i] = true
			delete(at, k)
		default:
			setOf(i).remove(&out[i].Permissions, &e.Permissions)
			if isEmpty(out[i].Permissions) {
				dropped[i] = true
				delete(at, k)
			}
		}
	}
	if len(dropped) > 0 {
		kept := out[:0]
		for i, p := range out {
			if !dropped[i] {
				kept = append(kept, p)
			}
		}
		out = kept
	}
	return out, nil
}

// policyKey is an access-policy entry's identity: tenant, object and
// application, case-insensitively.
func policyKey(p authz.AccessPolicy) string {
	return strings.ToLower(p.TenantID) + "|" + strings.ToLower(p.ObjectID) + "|" + strings.ToLower(p.ApplicationID)
}

// permSet indexes one entry's permissions, per family, by their lower-case
// form, so that merging n entries into it costs O(n).
type permSet [4]map[string]bool

func newPermSet(p *authz.Permissions) *permSet {
	var s permSet
	for f, list := range familyLists(p) {
		s[f] = make(map[string]bool, len(*list))
		for _, perm := range *list {
			s[f][strings.ToLower(perm)] = true
		}
	}
	return &s
}

// add appends to dst each permission of src it does not hold.
func (s *permSet) add(dst, src *authz.Permissions) {
	from := familyLists(src)
	for f, list := range familyLists(dst) {
		for _, perm := range *from[f] {
			if k := strings.ToLower(perm); !s[f][k] {
				s[f][k] = true
				*list = append(*list, perm)
			}
		}
	}
}

// remove takes src's permissions out of dst.
func (s *permSet) remove(dst, src *authz.Permissions) {
	from := familyLists(src)
	for f, list := range familyLists(dst) {
		if len(*from[f]) == 0 {
			continue
		}
		gone := make(map[string]bool, len(*from[f]))
		for _, perm := range *from[f] {
			gone[strings.ToLower(perm)] = true
		}
		*list = slices.DeleteFunc(*list, func(perm string) bool {
			k := strings.ToLower(perm)
			if gone[k] {
				delete(s[f], k)
				return true
			}
			return false
		})
	}
}

// familyLists are p's four permission lists, in a fixed order.
func familyLists(p *authz.Permissions) [4]*[]string {
	return [4]*[]string{&p.Keys, &p.Secrets, &p.Certificates, &p.Storage}
}

func clonePolicy(p authz.AccessPolicy) authz.AccessPolicy {
	p.Permissions = authz.Permissions{
		Keys: slices.Clone(p.Permissions.Keys), Secrets: slices.Clone(p.Permissions.Secrets),
		Certificates: slices.Clone(p.Permissions.Certificates), Storage: slices.Clone(p.Permissions.Storage),
	}
	return p
}

// normalizePolicy copies p with permissions in Key Vault's casing and
// without duplicates.
func normalizePolicy(p authz.AccessPolicy) authz.AccessPolicy {
	p = clonePolicy(p)
	for _, f := range []struct {
		fam  string
		list *[]string
	}{
		{authz.FamilyKeys, &p.Permissions.Keys}, {authz.FamilySecrets, &p.Permissions.Secrets},
		{authz.FamilyCertificates, &p.Permissions.Certificates}, {authz.FamilyStorage, &p.Permissions.Storage},
	} {
		var out []string
		seen := make(map[string]bool, len(*f.list))
		for _, perm := range *f.list {
			if c, ok := authz.CanonicalPermission(f.fam, perm); ok {
				perm = c
			}
			if k := strings.ToLower(perm); !seen[k] {
				seen[k] = true
				out = append(out, perm)
			}
		}
		*f.list = out
	}
	return p
}

func isEmpty(p authz.Permissions) bool {
	return len(p.Keys)+len(p.Secrets)+len(p.Certificates)+len(p.Storage) == 0
}

// NetworkPatch is an UpdateVaultProperties request in domain terms: the
// mask paths and the values they name.
type NetworkPatch struct {
	Paths               []string
	PublicNetworkAccess string
	NetworkAcls         *config.NetworkAcls // nil: an empty rule set
}

// Mask paths UpdateVaultProperties accepts.
const (
	PathPublicNetworkAccess = "public_network_access"
	PathNetworkAcls         = "network_acls"
	PathDefaultAction       = "network_acls.default_action"
	PathBypass              = "network_acls.bypass"
	PathIPRules             = "network_acls.ip_rules"
	PathVirtualNetworkRules = "network_acls.virtual_network_rules"
)

// PatchError is a problem with the update mask or a value it names.
type PatchError struct {
	Field string // the mask path or field
	Msg   string
}

func (e *PatchError) Error() string { return e.Field + ": " + e.Msg }

// ApplyNetworkPatch applies the fields in p.Paths to the properties in
// force and returns publicNetworkAccess and networkAcls as they become
// ("" / nil when the patch leaves them alone). An empty mask, an unknown or
// repeated path, or an unspecified value under a field-level path is an
// error: a PATCH never guesses.
func ApplyNetworkPatch(cur *config.Properties, p NetworkPatch) (pna string, acls *config.NetworkAcls, err error) {
	if len(p.Paths) == 0 {
		return "", nil, &PatchError{"update_mask", "name the fields to change: " + strings.Join(allPaths, ", ")}
	}
	seen := map[string]bool{}
	next := func() *config.NetworkAcls {
		if acls != nil {
			return acls
		}
		acls = &config.NetworkAcls{}
		if cur.NetworkAcls != nil {
			c := *cur.NetworkAcls
			c.IPRules = slices.Clone(c.IPRules)
			c.VirtualNetworkRules = slices.Clone(c.VirtualNetworkRules)
			acls = &c
		}
		return acls
	}
	in := p.NetworkAcls
	if in == nil {
		in = &config.NetworkAcls{}
	}
	for _, path := range p.Paths {
		if seen[path] {
			return "", nil, &PatchError{"update_mask", fmt.Sprintf("%q is named twice", path)}
		}
		seen[path] = true
		switch path {
		case PathPublicNetworkAccess:
			if p.PublicNetworkAccess == "" {
				return "", nil, &PatchError{path, "set Enabled or Disabled"}
			}
			pna = p.PublicNetworkAccess
		case PathNetworkAcls:
			c := *in
			c.IPRules = slices.Clone(in.IPRules)
			c.VirtualNetworkRules = slices.Clone(in.VirtualNetworkRules)
			if c.DefaultAction == "" {
				c.DefaultAction = "Allow"
			}
			if c.Bypass == "" {
				c.Bypass = "AzureServices"
			}
			acls = &c
		case PathDefaultAction:
			if in.DefaultAction == "" {
				return "", nil, &PatchError{path, "set Allow or Deny"}
			}
			next().DefaultAction = in.DefaultAction
		case PathBypass:
			if in.Bypass == "" {
				return "", nil, &PatchError{path, "set AzureServices or None"}
			}
			next().Bypass = in.Bypass
		case PathIPRules:
			next().IPRules = slices.Clone(in.IPRules)
		case PathVirtualNetworkRules:
			next().VirtualNetworkRules = slices.Clone(in.VirtualNetworkRules)
		default:
			return "", nil, &PatchError{"update_mask", fmt.Sprintf("%q cannot be updated here: want %s", path, strings.Join(allPaths, ", "))}
		}
	}
	if seen[PathNetworkAcls] && len(seen) > 1 && !(len(seen) == 2 && seen[PathPublicNetworkAccess]) {
		return "", nil, &PatchError{"update_mask", "network_acls replaces the whole rule set; do not also name its fields"}
	}
	return pna, acls, nil
}

// canonicalIPRules rewrites each IP rule value that config accepts in the
// form config reads it (config.ParsePrefix: surrounding space trimmed,
// IPv4-mapped addresses unmapped, an address without a length kept without
// one), so the stored state holds no whitespace, newline or alias. A value
// config refuses is left as sent, for validation to refuse with its field.
func canonicalIPRules(rules []config.IPRule) {
	for i := range rules {
		p, err := config.ParsePrefix(rules[i].Value)
		if err != nil {
			continue
		}
		if strings.Contains(rules[i].Value, "/") {
			rules[i].Value = p.String()
		} else {
			rules[i].Value = p.Addr().String()
		}
	}
}

var allPaths = []string{PathPublicNetworkAccess, PathNetworkAcls, PathDefaultAction, PathBypass, PathIPRules, PathVirtualNetworkRules}

// CreateRoleAssignment adds ra to cur. The same assignment again (same id,
// principal, role and scope) changes nothing; another assignment with the
// same id, or the same principal, role and scope under another id, is a
// conflict, as in Azure.
func CreateRoleAssignment(cur []authz.RoleAssignment, ra authz.RoleAssignment) (out []authz.RoleAssignment, existing bool, err error) {
	scope := normScope(ra.Scope)
	for _, c := range cur {
		same := strings.EqualFold(c.PrincipalID, ra.PrincipalID) && strings.EqualFold(c.RoleDefinitionID, ra.RoleDefinitionID) &&
			normScope(c.Scope) == scope
		switch {
		case c.ID == ra.ID && same:
			return cur, true, nil
		case c.ID == ra.ID:
			return nil, false, fmt.Errorf("%w: role assignment %q exists with another principal, role or scope", errExists, ra.ID)
		case same:
			return nil, false, fmt.Errorf("%w: the principal already has this role at this scope (assignment %q)", errExists, c.ID)
		}
	}
	return append(slices.Clone(cur), ra), false, nil
}

// DeleteRoleAssignment removes the assignment with id, reporting whether
// there was one.
func DeleteRoleAssignment(cur []authz.RoleAssignment, id string) ([]authz.RoleAssignment, bool) {
	i := slices.IndexFunc(cur, func(r authz.RoleAssignment) bool { return r.ID == id })
	if i < 0 {
		return cur, false
	}
	return slices.Delete(slices.Clone(cur), i, i+1), true
}

func normScope(s string) string {
	s = strings.ToLower(strings.TrimSuffix(s, "/"))
	return s
}
