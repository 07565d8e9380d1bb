package main

import (
	"net/netip"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// The admin verbs print what az prints for the same verb: a vault as
// `az keyvault show` (Microsoft.KeyVault/vaults in ARM's shape, enum values
// in ARM's spelling), network rules as `az keyvault network-rule list`,
// role assignments as `az role assignment list`. Objects are maps, so JSON
// keys come out sorted, as az sorts them.

const vaultResourceType = "Microsoft.KeyVault/vaults"

// armPublicNetworkAccess, armDefaultAction and armBypass spell the enums as
// ARM does; unspecified is ARM's default.
func armPublicNetworkAccess(a v1.PublicNetworkAccess) string {
	if a == v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED {
		return "Disabled"
	}
	return "Enabled"
}

func armDefaultAction(a v1.DefaultAction) string {
	if a == v1.DefaultAction_DEFAULT_ACTION_DENY {
		return "Deny"
	}
	return "Allow"
}

func armBypass(b v1.Bypass) string {
	if b == v1.Bypass_BYPASS_NONE {
		return "None"
	}
	return "AzureServices"
}

// armIPRule writes a single address as ARM echoes it, a full-length prefix
// (198.51.100.7/32).
func armIPRule(value string) string {
	if strings.Contains(value, "/") {
		return value
	}
	a, err := netip.ParseAddr(strings.TrimSpace(value))
	if err != nil {
		return value
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String()
}

// resourceSegment returns the value after key in an ARM id
// (".../resourceGroups/<rg>/..."), case-insensitively; nil when absent.
func resourceSegment(id, key string) any {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], key) {
			return parts[i+1]
		}
	}
	return nil
}

func mapList[T any](in []T, f func(T) any) []any {
	out := make([]any, 0, len(in))
	for _, e := range in {
		out = append(out, f(e))
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func armNetworkAcls(a *v1.NetworkAcls) any {
	if a == nil {
		return nil
	}
	return map[string]any{
		"bypass":        armBypass(a.GetBypass()),
		"defaultAction": armDefaultAction(a.GetDefaultAction()),
		"ipRules": mapList(a.GetIpRules(), func(r *v1.IpRule) any {
			return map[string]any{"value": armIPRule(r.GetValue())}
		}),
		"virtualNetworkRules": mapList(a.GetVirtualNetworkRules(), func(r *v1.VirtualNetworkRule) any {
			return map[string]any{"id": r.GetId(), "ignoreMissingVnetServiceEndpoint": false}
		}),
	}
}

func armAccessPolicy(p *v1.AccessPolicy, tenant string) any {
	perm := p.GetPermissions()
	t := p.GetTenantId()
	if t == "" {
		t = tenant
	}
	return map[string]any{
		"applicationId": nullable(p.GetApplicationId()),
		"objectId":      p.GetObjectId(),
		"permissions": map[string]any{
			"certificates": orEmpty(perm.GetCertificates()),
			"keys":         orEmpty(perm.GetKeys()),
			"secrets":      orEmpty(perm.GetSecrets()),
			"storage":      orEmpty(perm.GetStorage()),
		},
		"tenantId": t,
	}
}

// armVault is the vault as `az keyvault show` prints it, with the etag
// every write sends and the properties the control plane holds.
func armVault(v *v1.Vault) map[string]any {
	p := v.GetProperties()
	return map[string]any{
		"id":            v.GetResourceId(),
		"name":          v.GetName(),
		"location":      v.GetLocation(),
		"resourceGroup": resourceSegment(v.GetResourceId(), "resourceGroups"),
		"type":          vaultResourceType,
		"tags":          map[string]any{},
		"etag":          v.GetEtag(),
		"properties": map[string]any{
			"tenantId":                v.GetTenantId(),
			"publicNetworkAccess":     armPublicNetworkAccess(p.GetPublicNetworkAccess()),
			"enableRbacAuthorization": p.GetEnableRbacAuthorization(),
			"networkAcls":             armNetworkAcls(p.GetNetworkAcls()),
			"accessPolicies": mapList(p.GetAccessPolicies(), func(a *v1.AccessPolicy) any {
				return armAccessPolicy(a, v.GetTenantId())
			}),
		},
		// vaultwall's own: which properties the control plane's store sets.
		"controlPlaneProperties": orEmpty(p.GetControlPlaneProperties()),
	}
}

// armNetworkRules is `az keyvault network-rule list`: the rules alone.
func armNetworkRules(v *v1.Vault) map[string]any {
	acls, _ := armNetworkAcls(v.GetProperties().GetNetworkAcls()).(map[string]any)
	if acls == nil {
		return map[string]any{"ipRules": []any{}, "virtualNetworkRules": []any{}}
	}
	return map[string]any{"ipRules": acls["ipRules"], "virtualNetworkRules": acls["virtualNetworkRules"]}
}

// armRoleAssignment is an assignment as `az role assignment list` prints
// it: full ARM scope, role id and assignment id; what vaultwall does not
// know (principal type and name, creation metadata) is null.
func armRoleAssignment(ra *v1.RoleAssignment, v *v1.Vault) map[string]any {
	vaultID := v.GetResourceId()
	sub := resourceSegment(vaultID, "subscriptions")
	scope := ra.GetScope()
	switch {
	case scope == "" || scope == "/":
		scope = vaultID
	case !strings.HasPrefix(strings.ToLower(scope), "/subscriptions/") && !strings.HasPrefix(strings.ToLower(scope), "/providers/"):
		scope = vaultID + scope
	}
	id := ra.GetId()
	if !strings.HasPrefix(id, "/") {
		id = scope + "/providers/Microsoft.Authorization/roleAssignments/" + id
	}
	var custom []authz.RoleDefinition
	for _, d := range v.GetProperties().GetRoleDefinitions() {
		custom = append(custom, authz.RoleDefinition{ID: d.GetId(), RoleName: d.GetRoleName()})
	}
	roleID, roleName := ra.GetRoleDefinitionId(), any(nil)
	key := roleID
	if i := strings.LastIndex(key, "/"); i >= 0 {
		key = key[i+1:]
	}
	if r, ok := authz.LookupRole(key, custom); ok {
		roleName = r.RoleName
		if !strings.HasPrefix(roleID, "/") && sub != nil {
			roleID = "/subscriptions/" + sub.(string) + "/providers/Microsoft.Authorization/roleDefinitions/" + r.ID
		}
	}
	return map[string]any{
		"condition":                          nil,
		"conditionVersion":                   nil,
		"createdBy":                          nil,
		"createdOn":                          nil,
		"delegatedManagedIdentityResourceId": nil,
		"description":                        nil,
		"id":                                 id,
		"name":                               id[strings.LastIndex(id, "/")+1:],
		"principalId":                        ra.GetPrincipalId(),
		"principalName":                      nil,
		"principalType":                      nil,
		"resourceGroup":                      resourceSegment(scope, "resourceGroups"),
		"roleDefinitionId":                   roleID,
		"roleDefinitionName":                 roleName,
		"scope":                              scope,
		"type":                               "Microsoft.Authorization/roleAssignments",
		"updatedBy":                          nil,
		"updatedOn":                          nil,
	}
}

// Table views of -o table, as az's table transformers show these results.

func vaultTable(v *v1.Vault) func() tableView {
	return func() tableView {
		return tableView{cols: []string{"Location", "Name", "ResourceGroup"},
			rows: [][]string{{v.GetLocation(), v.GetName(), str(resourceSegment(v.GetResourceId(), "resourceGroups"))}}}
	}
}

func networkRulesTable(v *v1.Vault) func() tableView {
	return func() tableView {
		tv := tableView{cols: []string{"Rule", "Value"}}
		acls := v.GetProperties().GetNetworkAcls()
		for _, r := range acls.GetIpRules() {
			tv.rows = append(tv.rows, []string{"ipRule", armIPRule(r.GetValue())})
		}
		for _, r := range acls.GetVirtualNetworkRules() {
			tv.rows = append(tv.rows, []string{"virtualNetworkRule", r.GetId()})
		}
		return tv
	}
}

// roleAssignmentsTable is az's: Principal (its name, else its id), Role,
// Scope.
func roleAssignmentsTable(list []any) func() tableView {
	return func() tableView {
		tv := tableView{cols: []string{"Principal", "Role", "Scope"}}
		for _, e := range list {
			m := e.(map[string]any)
			principal := str(m["principalName"])
			if principal == "" {
				principal = str(m["principalId"])
			}
			tv.rows = append(tv.rows, []string{principal, str(m["roleDefinitionName"]), str(m["scope"])})
		}
		return tv
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
