package controlplane

import (
	"strings"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// vaultOf renders the effective configuration and the stored state's
// revision as the API's Vault.
func vaultOf(cfg *config.Config, snap store.Snapshot) *v1.Vault {
	p := &cfg.Properties
	props := &v1.VaultProperties{
		PublicNetworkAccess:     v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_ENABLED,
		EnableRbacAuthorization: p.EnableRbacAuthorization,
		ControlPlaneProperties:  ownedProperties(snap.State),
	}
	if p.PublicAccessDisabled() {
		props.PublicNetworkAccess = v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED
	}
	if p.NetworkAcls != nil {
		props.NetworkAcls = aclsToProto(p.NetworkAcls)
	}
	for _, ap := range p.AccessPolicies {
		props.AccessPolicies = append(props.AccessPolicies, policyToProto(ap))
	}
	for _, ra := range p.RoleAssignments {
		props.RoleAssignments = append(props.RoleAssignments, assignmentToProto(ra))
	}
	for _, rd := range p.RoleDefinitions {
		props.RoleDefinitions = append(props.RoleDefinitions, &v1.RoleDefinition{
			Id: rd.ID, RoleName: rd.RoleName, DataActions: rd.DataActions, NotDataActions: rd.NotDataActions})
	}
	return &v1.Vault{
		Name: cfg.Vault.Name, TenantId: cfg.Vault.TenantID, Location: cfg.Vault.Location,
		ResourceId: cfg.Vault.ResourceID, Properties: props, Etag: etagOf(cfg, snap),
	}
}

func aclsToProto(a *config.NetworkAcls) *v1.NetworkAcls {
	out := &v1.NetworkAcls{DefaultAction: v1.DefaultAction_DEFAULT_ACTION_ALLOW, Bypass: v1.Bypass_BYPASS_AZURE_SERVICES}
	if a.DefaultDeny() || strings.EqualFold(a.DefaultAction, "Deny") {
		out.DefaultAction = v1.DefaultAction_DEFAULT_ACTION_DENY
	}
	if strings.EqualFold(a.Bypass, "None") {
		out.Bypass = v1.Bypass_BYPASS_NONE
	}
	for _, r := range a.IPRules {
		out.IpRules = append(out.IpRules, &v1.IpRule{Value: r.Value})
	}
	for _, r := range a.VirtualNetworkRules {
		out.VirtualNetworkRules = append(out.VirtualNetworkRules, &v1.VirtualNetworkRule{
			Id: r.ID, IgnoreMissingVnetServiceEndpoint: r.IgnoreMissingVnetServiceEndpoint})
	}
	return out
}

// aclsFromProto maps the API's rule set to the configuration's; an
// unspecified enum becomes "" (the caller decides what that means).
func aclsFromProto(a *v1.NetworkAcls) *config.NetworkAcls {
	if a == nil {
		return nil
	}
	out := &config.NetworkAcls{}
	switch a.GetDefaultAction() {
	case v1.DefaultAction_DEFAULT_ACTION_ALLOW:
		out.DefaultAction = "Allow"
	case v1.DefaultAction_DEFAULT_ACTION_DENY:
		out.DefaultAction = "Deny"
	}
	switch a.GetBypass() {
	case v1.Bypass_BYPASS_AZURE_SERVICES:
		out.Bypass = "AzureServices"
	case v1.Bypass_BYPASS_NONE:
		out.Bypass = "None"
	}
	for _, r := range a.GetIpRules() {
		out.IPRules = append(out.IPRules, config.IPRule{Value: r.GetValue()})
	}
	for _, r := range a.GetVirtualNetworkRules() {
		out.VirtualNetworkRules = append(out.VirtualNetworkRules, config.VirtualNetworkRule{
			ID: r.GetId(), IgnoreMissingVnetServiceEndpoint: r.GetIgnoreMissingVnetServiceEndpoint()})
	}
	return out
}

func publicAccessFromProto(p v1.PublicNetworkAccess) string {
	switch p {
	case v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_ENABLED:
		return "Enabled"
	case v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED:
		return "Disabled"
	}
	return ""
}

func policyToProto(ap authz.AccessPolicy) *v1.AccessPolicy {
	return &v1.AccessPolicy{TenantId: ap.TenantID, ObjectId: ap.ObjectID, ApplicationId: ap.ApplicationID,
		Permissions: permsToProto(ap.Permissions)}
}

func permsToProto(p authz.Permissions) *v1.Permissions {
	return &v1.Permissions{Keys: p.Keys, Secrets: p.Secrets, Certificates: p.Certificates, Storage: p.Storage}
}

func policyFromProto(ap *v1.AccessPolicy, tenant string) authz.AccessPolicy {
	t := ap.GetTenantId()
	if t == "" {
		t = tenant
	}
	p := ap.GetPermissions()
	return authz.AccessPolicy{TenantID: t, ObjectID: ap.GetObjectId(), ApplicationID: ap.GetApplicationId(),
		Permissions: authz.Permissions{Keys: p.GetKeys(), Secrets: p.GetSecrets(), Certificates: p.GetCertificates(), Storage: p.GetStorage()}}
}

func assignmentToProto(ra authz.RoleAssignment) *v1.RoleAssignment {
	scope := ra.Scope
	if scope == "" {
		scope = "/"
	}
	return &v1.RoleAssignment{Id: ra.ID, PrincipalId: ra.PrincipalID, RoleDefinitionId: ra.RoleDefinitionID, Scope: scope}
}
