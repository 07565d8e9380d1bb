// Package fakevault is an in-memory Key Vault data plane behind
// httptest's HTTPS: the REST paths, JSON shapes, identifiers and headers
// of Azure Key Vault (secrets set/get/list/versions/delete, keys
// create/get/list/delete with real RSA wrapKey/unwrapKey/sign/verify/
// encrypt/decrypt, certificates get), enough for the unmodified Azure SDK
// for Go clients to parse every answer. It authorizes nothing — it is the
// upstream behind the front proxy and vaultwall — and it records the
// headers each request arrived with, so tests can assert which identity
// headers reached the vault.
//
// Test infrastructure only. Imports: the standard library, google/uuid.
package fakevault
