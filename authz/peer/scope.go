package peer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
)

// families indexes scope bit sets; bit i of a family is
// authz.KnownPermissions[family][i].
var families = [...]string{authz.FamilyKeys, authz.FamilySecrets, authz.FamilyCertificates, authz.FamilyStorage}

// scope is a compiled set of access-policy permissions, one bit set per
// family. Bit 0 of every family is "all", which no scope ever holds.
type scope [len(families)]uint32

func familyIndex(f string) int {
	switch f {
	case authz.FamilyKeys:
		return 0
	case authz.FamilySecrets:
		return 1
	case authz.FamilyCertificates:
		return 2
	case authz.FamilyStorage:
		return 3
	}
	return -1
}

// permIndex is the bit of perm in family fi, matched case-insensitively as
// Key Vault compares permissions; -1 when unknown.
func permIndex(fi int, perm string) int {
	for i, p := range authz.KnownPermissions[families[fi]] {
		if p == perm || strings.EqualFold(p, perm) {
			return i
		}
	}
	return -1
}

// allows reports whether an operation of family/perm lies in the scope. An
// operation is never "all", and an unknown family or permission is never in
// scope.
func (s *scope) allows(family, perm string) bool {
	fi := familyIndex(family)
	if fi < 0 {
		return false
	}
	pi := permIndex(fi, perm)
	return pi > 0 && s[fi]&(1<<pi) != 0
}

func (s *scope) empty() bool { return *s == scope{} }

// list renders family fi's permissions in the spec's order.
func (s *scope) list(fi int) []string {
	var out []string
	for i, p := range authz.KnownPermissions[families[fi]] {
		if s[fi]&(1<<i) != 0 {
			out = append(out, p)
		}
	}
	return out
}

// compileScope compiles a catalog scope. The catalog is data under test, so
// a bad entry is a programming error.
func compileScope(p authz.Permissions) scope {
	var s scope
	for fi, perms := range [...][]string{p.Keys, p.Secrets, p.Certificates, p.Storage} {
		for _, perm := range perms {
			pi := permIndex(fi, perm)
			if pi <= 0 {
				panic(fmt.Sprintf("peer: catalog permission %s/%s is unknown or all", families[fi], perm))
			}
			s[fi] |= 1 << pi
		}
	}
	return s
}

// narrow compiles a binding's scope (family → permissions, as written in
// config) inside the catalog's. It reports each problem with its field
// path under base; families not named are dropped from the result.
func narrow(base string, catalog scope, written map[string][]string, report func(field string, sentinel error, format string, args ...any)) scope {
	var s scope
	fams := make([]string, 0, len(written))
	for f := range written {
		fams = append(fams, f)
	}
	slices.Sort(fams) // deterministic error order
	for _, f := range fams {
		field := base + "." + f
		fi := familyIndex(strings.ToLower(f))
		if fi < 0 {
			report(field, ErrScope, "%q is not a permission family: want keys, secrets, certificates or storage", f)
			continue
		}
		for j, perm := range written[f] {
			pfield := fmt.Sprintf("%s[%d]", field, j)
			pi := permIndex(fi, perm)
			switch {
			case pi < 0:
				report(pfield, ErrScope, "%q is not a %s permission", perm, families[fi])
			case pi == 0:
				report(pfield, ErrWidens, "%q would grant every %s permission; list the ones wanted from the catalog's (%s)",
					perm, families[fi], strings.Join(catalog.list(fi), ", "))
			case catalog[fi]&(1<<pi) == 0:
				report(pfield, ErrWidens, "%s %s is outside the catalog's scope (%s)", families[fi], perm, listOrNone(catalog.list(fi)))
			default:
				s[fi] |= 1 << pi
			}
		}
	}
	return s
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none of this family"
	}
	return strings.Join(l, ", ")
}
