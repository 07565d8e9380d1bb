// Package config is vaultwall's configuration contract: the YAML schema
// (vault properties in Azure Resource Manager's shape), strict loading, and
// validation that reports every problem at once with its file, line and
// field path.
//
// Parse reads four shapes of document, detected from their content (a pure
// function of the bytes and the file name): vaultwall's own YAML or JSON;
// the whole `az keyvault show` (or `az resource show`) document, JSON or
// YAML; an ARM template or `az group export` with exactly one
// Microsoft.KeyVault/vaults resource; and, under properties.roleAssignments,
// `az role assignment list` entries as printed. Fields that decide nothing
// (sku, vaultUri, createMode, role-assignment metadata, az's resourceGroup
// decorations, a template's other resources…) are set aside and listed by
// Config.Ignored; fields that would change a decision are used or refused,
// never dropped: a role assignment's condition and ARM template expressions
// are refused (ErrUnsupported) naming the field in the document's own path;
// privateEndpointConnections decide which network.privateEndpoints are
// approved. Assignments of roles without data actions (Owner, Contributor,
// Reader, …) grant nothing and are listed as ignored; assignments at the
// vault's resource group or subscription apply to the whole vault.
// SetProperties lays properties over any of these shapes (the control
// plane's overlay). Import writes an Azure document as a commented
// vaultwall file, with what it cannot know marked ImportMarker.
//
// Config composes the sections. Those a stage compiles are declared by
// that stage, with their defaults and Validate: network (networkAcls,
// privateEndpointConnections, network), token (identity) and peer
// (trustedServices); config names them too (NetworkAcls, Issuer, …, as
// aliases), and keeps the sections no stage owns and the rules across
// sections (limits, a rule's subnet, the vault's tenant, an Azure
// document's leniency). Validation reports section.Error values (alias
// FieldError), which Annotate gives a file and line. Exported fields hold
// what the user wrote; parsed forms (prefixes, ids, durations) are computed
// once by Load and read through methods. Stages compile their runtime
// structures from the sections of a loaded *Config (FirewallConfig,
// Identity, TrustedServices).
//
// Imports: authz and its packages (the stages, for their sections;
// authz/section), sigs.k8s.io/yaml and go.yaml.in/yaml/v3 (for line
// numbers).
package config
