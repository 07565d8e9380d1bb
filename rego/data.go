package rego

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// buildData turns the configuration into the policy's data document,
// data.vaultwall, described in README.md. Everything the policy compares is
// lower-cased here and indexed by principal, so the per-request cost does not
// grow with the number of entries. The values are built as AST directly: the
// store hands them to the evaluator without conversion.
func buildData(cfg *config.Config) (ast.Object, error) {
	p := &cfg.Properties
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FileError{File: cfg.Path, Field: field, Err: fmt.Errorf("%w: %s", ErrData, fmt.Sprintf(format, args...))})
	}

	// Access policies.
	entries := make([]*ast.Term, len(p.AccessPolicies))
	byObject := map[string][]*ast.Term{}
	for i := range p.AccessPolicies {
		ap := &p.AccessPolicies[i]
		if ap.ObjectID == "" {
			fail(fmt.Sprintf("properties.accessPolicies[%d].objectId", i), "required")
		}
		e := ast.ObjectTerm(
			item("index", ast.InternedTerm(i)),
			item("name", ast.StringTerm(fmt.Sprintf("accessPolicies[%d]", i))),
			item("object_id", ast.StringTerm(ap.ObjectID)),
			item("application_id", ast.StringTerm(strings.ToLower(ap.ApplicationID))),
			item("tenant_id", ast.StringTerm(strings.ToLower(ap.TenantID))),
			item("permissions", ast.ObjectTerm(
				item(authz.FamilyKeys, lowerSet(ap.Permissions.Keys)),
				item(authz.FamilySecrets, lowerSet(ap.Permissions.Secrets)),
				item(authz.FamilyCertificates, lowerSet(ap.Permissions.Certificates)),
				item(authz.FamilyStorage, lowerSet(ap.Permissions.Storage)),
			)),
		)
		entries[i] = e
		k := strings.ToLower(ap.ObjectID)
		byObject[k] = append(byObject[k], e)
	}

	// Role definitions: the built-in roles, then the custom ones.
	roles := ast.NewObject()
	addRole := func(field string, r authz.RoleDefinition) {
		actions := func(list []string, name string) *ast.Term {
			terms := make([]*ast.Term, 0, len(list))
			for j, a := range list {
				norm, err := normalizeAction(a)
				if err != nil {
					fail(fmt.Sprintf("%s.%s[%d]", field, name, j), "%v", err)
					continue
				}
				terms = append(terms, ast.StringTerm(norm))
			}
			return ast.ArrayTerm(terms...)
		}
		roles.Insert(ast.StringTerm(strings.ToLower(r.ID)), ast.ObjectTerm(
			item("id", ast.StringTerm(r.ID)),
			item("name", ast.StringTerm(r.RoleName)),
			item("data_actions", actions(r.DataActions, "dataActions")),
			item("not_data_actions", actions(r.NotDataActions, "notDataActions")),
		))
	}
	for i, r := range authz.BuiltinRoles {
		addRole(fmt.Sprintf("builtinRoles[%d]", i), r)
	}
	for i, r := range p.RoleDefinitions {
		field := fmt.Sprintf("properties.roleDefinitions[%d]", i)
		if r.ID == "" || r.RoleName == "" {
			fail(field, "a role definition needs an id and a roleName")
			continue
		}
		if roles.Get(ast.StringTerm(strings.ToLower(r.ID))) != nil {
			fail(field+".id", "%q is already defined", r.ID)
			continue
		}
		addRole(field, r)
	}

	// Role assignments.
	assignments := make([]*ast.Term, len(p.RoleAssignments))
	byPrincipal := map[string][]*ast.Term{}
	for i := range p.RoleAssignments {
		ra := &p.RoleAssignments[i]
		field := fmt.Sprintf("properties.roleAssignments[%d]", i)
		role, ok := authz.LookupRole(lastSegment(ra.RoleDefinitionID), p.RoleDefinitions)
		if !ok {
			fail(field+".roleDefinitionId", "%q is neither a built-in role nor in properties.roleDefinitions", ra.RoleDefinitionID)
		}
		scope, err := normalizeScope(ra.Scope, cfg.Vault.ResourceID)
		if err != nil {
			fail(field+".scope", "%v", err)
		}
		if ra.PrincipalID == "" {
			fail(field+".principalId", "required")
		}
		name := fmt.Sprintf("roleAssignments[%d]", i)
		id := ra.ID
		if id == "" {
			id = name
		}
		assignments[i] = ast.ObjectTerm(
			item("index", ast.InternedTerm(i)),
			item("name", ast.StringTerm(name)),
			item("id", ast.StringTerm(id)),
			item("principal_id", ast.StringTerm(ra.PrincipalID)),
			item("role", ast.StringTerm(strings.ToLower(role.ID))),
			item("scope", ast.StringTerm(scope)),
		)
		k := strings.ToLower(ra.PrincipalID)
		byPrincipal[k] = append(byPrincipal[k], ast.InternedTerm(i))
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}

	return ast.NewObject(item("vaultwall", ast.ObjectTerm(
		item("access_policies", ast.ObjectTerm(
			item("entries", ast.ArrayTerm(entries...)),
			item("by_object", indexTerm(byObject)),
		)),
		item("role_assignments", ast.ObjectTerm(
			item("entries", ast.ArrayTerm(assignments...)),
			item("by_principal", indexTerm(byPrincipal)),
		)),
		item("role_definitions", ast.NewTerm(roles)),
		item("settings", ast.ObjectTerm(
			item("allow_operator_grants", ast.InternedTerm(cfg.Policy.AllowOperatorGrants)),
		)),
	))), nil
}

func item(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{ast.InternedTerm(k), v} }

func lowerSet(list []string) *ast.Term {
	s := ast.NewSetWithCapacity(len(list))
	for _, v := range list {
		s.Add(ast.StringTerm(strings.ToLower(v)))
	}
	return ast.NewTerm(s)
}

func indexTerm(m map[string][]*ast.Term) *ast.Term {
	obj := ast.NewObjectWithCapacity(len(m))
	for k, list := range m {
		obj.Insert(ast.StringTerm(k), ast.ArrayTerm(list...))
	}
	return ast.NewTerm(obj)
}

// normalizeAction makes a data action lower-case and relative to
// Microsoft.KeyVault/vaults/. config.ValidateDataAction is the rule: "*" is
// the only wildcard and no other glob metacharacter passes, so that
// glob.match in the policy means exactly Azure's "* matches any run of
// characters".
func normalizeAction(a string) (string, error) {
	if err := config.ValidateDataAction(a); err != nil {
		return "", err
	}
	rel := a
	if strings.EqualFold(rel[:min(len(rel), len(authz.DataActionPrefix))], authz.DataActionPrefix) {
		rel = rel[len(authz.DataActionPrefix):]
	}
	return strings.ToLower(rel), nil
}

// normalizeScope turns an assignment scope into "" (the vault) or
// "/secrets|keys|certificates/<name>", lower-case, by config.VaultScope's
// rule. config.Load has already normalized it; this repeats the check for
// configurations built in code.
func normalizeScope(s, vaultID string) (string, error) {
	scope, err := config.VaultScope(vaultID, s)
	return strings.ToLower(scope), err
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}
