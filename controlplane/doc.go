// Package controlplane is vaultwall's management API: the VaultAdminService
// of proto/vaultwall/v1, served on its own gRPC listener, through which the
// vault's publicNetworkAccess, networkAcls, access policies and role
// assignments change while vaultwall runs.
//
// It owns:
//   - the service: PATCH of the network properties with a field mask, ARM's
//     accessPolicies add / replace / remove, role assignments, the
//     trusted-service catalog, Explain;
//   - optimistic concurrency: every write names the etag it was computed
//     from — the store's revision and a digest of the effective properties,
//     so that an edit of the configuration file counts as a change; a stale
//     or malformed one fails with ABORTED and an ErrorInfo (ETAG_MISMATCH,
//     requestEtag as sent, currentEtag); "*" is retried internally until
//     the write is applied;
//   - validation before acceptance: the stored state laid over the
//     configuration file is validated as a whole (config.Parse) and built
//     (engine's BuildFunc: every stage, the Rego policy included); a change
//     that fails is refused with each field path, and nothing is stored;
//   - the overlay (engine.Overlay): the configuration file stays the base
//     (vault identity, issuers, network inventory, server), and each
//     property the control plane has written replaces the file's, where
//     the file's format keeps properties (config.SetProperties: a
//     vaultwall file, an az keyvault show document, an ARM template's vault
//     resource);
//   - propagation: a write is applied to the local engine before the RPC
//     answers, and every replica follows the store's Watch and reloads;
//   - its own authorization, never the firewall (Key Vault's firewall never
//     applies to its control plane): a JWT from the configured issuers for
//     a management audience (controlPlane.audiences), or a client
//     certificate the handshake verified (never one merely received)
//     matching controlPlane.adminPrincipals through the trusted-service
//     matcher (peer.Principals: raw SANs, one URI SAN, each pattern kind
//     against its own name type), then the control-plane Rego policy
//     (rego.ControlPolicy, whose input is a rego.ControlInput);
//   - Key Vault's rules for what a write may name: GUID object,
//     application, principal and assignment ids; the vault's tenant in
//     access-policy entries (part of an entry's identity); role-assignment
//     scopes by the configuration file's rule (config.VaultScope: the
//     vault, its objects, or its resource group or subscription, meaning
//     the whole vault); IP rule values stored as config reads them;
//     access-policy requests within limits.maxAccessPolicies, merged in
//     linear time;
//   - several vaults (vaults.dir): each vault has its own state, store
//     (file vaultwall-state.<vault>.json, etcd key <keyPrefix><vault>/state),
//     revision and etag, opened when the fleet first loads the vault
//     (Server.OverlayFor, an engine.VaultOverlays); its overlay lays that
//     state over the vault's composed configuration (MergeWith with
//     config.ParseVault), so a write rebuilds that vault alone. Requests
//     name their vault (empty: the only one; several: INVALID_ARGUMENT;
//     unknown: NOT_FOUND); Explain selects by host through the engine.Set
//     (SwapSet); tokens are verified for the named vault's tenant; the
//     control-plane policy's input carries the vault;
//   - vaults created through the API (vaults.dir only): CreateVault stores a
//     whole vault document (store.Documents: file store
//     <store.path stem>.<vault>.vault.yaml, etcd <keyPrefix><vault>/document)
//     after validating it as a vault file (config.ParseVault onto the main
//     file, then BuildFunc), refusing a name in use (ALREADY_EXISTS) or
//     another vault's hostname; DeleteVault removes only those
//     (FAILED_PRECONDITION for a file's vault); ListVaults lists every vault
//     with its source. The Server is the fleet's engine.VaultSource
//     (StoredVaults, the documents as last read): each becomes a vault at
//     engine.StoredPath(name), with its per-vault state laid over it as a
//     file's; replicas follow the documents (etcd prefix watch, or a poll
//     of the file store) and reload;
//   - the audit trail of every change attempt and of every call refused
//     before its handler ran, once each (Auditor; SlogAuditor by default).
//
// Imports: authz and its stage packages, engine, envoy (Explain decides
// through envoy.Decide, Check's guarded path), go-control-plane's
// CheckRequest (Explain's input), rego, controlplane/store (and etcdstore,
// etcd's client), controlplane/api/vaultwall/v1 (the generated Go of
// proto/vaultwall/v1), config, gRPC, protobuf.
package controlplane
