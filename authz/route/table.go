package route

import (
	"strings"

	"github.com/vaultwall/vaultwall/authz"
)

// Route is one row of Key Vault's data-plane REST table (keyvault-spec §6,
// §8): a method and a path pattern, and what a request matching them is.
//
// Pattern placeholders use the REST specification's names. A "-version"
// placeholder is 32 hexadecimal characters or empty (a trailing slash or a
// double slash); "storage-account-name" and "sas-definition-name" are
// letters and digits; every other "-name" is 1–127 letters, digits and '-'.
type Route struct {
	Method  string // GET, PUT, PATCH, DELETE or POST
	Pattern string // e.g. "/keys/{key-name}/{key-version}/wrapkey"

	Resource   string // access-policy family: secrets, keys, certificates, storage; "" when anonymous
	Permission string // access-policy permission, spec casing: "wrapKey"
	DataAction string // full RBAC data action: "Microsoft.KeyVault/vaults/keys/wrap/action"
	Name       string // AuditEvent operationName: "KeyWrap"
	// Scope is the RBAC scope suffix template, "/keys/{key-name}", for
	// operations on one secret, key or certificate; "" for vault-level ones.
	Scope string
	// Anonymous marks operations Key Vault serves without a token.
	Anonymous bool
}

// Table returns every operation the router knows, in table order. The slice
// is a copy: callers may keep or change it.
func Table() []Route {
	out := make([]Route, len(table))
	copy(out, table)
	return out
}

// Example is a concrete path for the route, with sample names and versions
// in place of its placeholders: "/keys/my-key/0123456789abcdef0123456789abcdef/wrapkey".
func (r Route) Example() string {
	return exampleReplacer.Replace(r.Pattern)
}

// ExampleVersion is the object version Example uses.
const ExampleVersion = "0123456789abcdef0123456789abcdef"

var exampleReplacer = strings.NewReplacer(
	"{secret-name}", "my-secret",
	"{key-name}", "my-key",
	"{certificate-name}", "my-cert",
	"{issuer-name}", "my-issuer",
	"{storage-account-name}", "mystorageacct",
	"{sas-definition-name}", "mysasdef",
	"{secret-version}", ExampleVersion,
	"{key-version}", ExampleVersion,
	"{certificate-version}", ExampleVersion,
)

const (
	secrets = authz.FamilySecrets
	keys    = authz.FamilyKeys
	certs   = authz.FamilyCertificates
	storage = authz.FamilyStorage
	da      = authz.DataActionPrefix
)

// row builds a Route; Resource and Scope follow from the pattern.
func row(method, pattern, perm, dataAction, name string) Route {
	r := Route{Method: method, Pattern: pattern, Permission: perm, DataAction: da + dataAction, Name: name}
	segs := strings.Split(pattern[1:], "/")
	switch segs[0] {
	case "secrets", "deletedsecrets":
		r.Resource = secrets
	case "keys", "deletedkeys":
		r.Resource = keys
	case "certificates", "deletedcertificates":
		r.Resource = certs
	case "storage", "deletedstorage":
		r.Resource = storage
	}
	// Object-scoped role assignments apply to live objects: /secrets/<n>,
	// /keys/<n>, /certificates/<n> and everything below them. Deleted
	// objects, collections, restore, contacts, issuers and storage are
	// vault-level.
	if len(segs) > 1 && (segs[0] == secrets || segs[0] == keys || segs[0] == certs) &&
		strings.HasPrefix(segs[1], "{") {
		r.Scope = "/" + segs[0] + "/" + segs[1]
	}
	return r
}

// keyOps are the cryptographic key operations, each reachable as
// /keys/{n}/{v}/op (v possibly empty: /keys/{n}//op) and, as the Azure SDK
// for Go sends them for the latest version, /keys/{n}/op.
var keyOps = []struct{ seg, perm, action, name string }{
	{"encrypt", "encrypt", "keys/encrypt/action", "KeyEncrypt"},
	{"decrypt", "decrypt", "keys/decrypt/action", "KeyDecrypt"},
	{"wrapkey", "wrapKey", "keys/wrap/action", "KeyWrap"},
	{"unwrapkey", "unwrapKey", "keys/unwrap/action", "KeyUnwrap"},
	{"sign", "sign", "keys/sign/action", "KeySign"},
	{"verify", "verify", "keys/verify/action", "KeyVerify"},
	// Release has no audit name in the spec; KeyRelease follows the
	// ObjectVerb pattern. Its version-less form comes from the same SDK
	// path joining as the others (path.Join drops the empty segment).
	{"release", "release", "keys/release/action", "KeyRelease"},
}

var table = buildTable()

func buildTable() []Route {
	t := []Route{
		{Method: "GET", Pattern: "/healthstatus", Name: "HealthStatus", Anonymous: true},

		// Secrets.
		row("GET", "/secrets", "list", "secrets/readMetadata/action", "SecretList"),
		row("GET", "/secrets/{secret-name}/versions", "list", "secrets/readMetadata/action", "SecretListVersions"),
		row("GET", "/secrets/{secret-name}", "get", "secrets/getSecret/action", "SecretGet"),
		row("GET", "/secrets/{secret-name}/{secret-version}", "get", "secrets/getSecret/action", "SecretGet"),
		row("PUT", "/secrets/{secret-name}", "set", "secrets/setSecret/action", "SecretSet"),
		row("PATCH", "/secrets/{secret-name}/{secret-version}", "set", "secrets/update/action", "SecretUpdate"),
		row("DELETE", "/secrets/{secret-name}", "delete", "secrets/delete", "SecretDelete"),
		row("POST", "/secrets/{secret-name}/backup", "backup", "secrets/backup/action", "SecretBackup"),
		row("POST", "/secrets/restore", "restore", "secrets/restore/action", "SecretRestore"),
		row("GET", "/deletedsecrets", "list", "secrets/readMetadata/action", "SecretListDeleted"),
		row("GET", "/deletedsecrets/{secret-name}", "get", "secrets/readMetadata/action", "SecretGetDeleted"),
		row("DELETE", "/deletedsecrets/{secret-name}", "purge", "secrets/purge/action", "SecretPurge"),
		row("POST", "/deletedsecrets/{secret-name}/recover", "recover", "secrets/recover/action", "SecretRecover"),

		// Keys.
		row("GET", "/keys", "list", "keys/read", "KeyList"),
		row("GET", "/keys/{key-name}/versions", "list", "keys/read", "KeyListVersions"),
		row("GET", "/keys/{key-name}", "get", "keys/read", "KeyGet"),
		row("GET", "/keys/{key-name}/{key-version}", "get", "keys/read", "KeyGet"),
		row("PATCH", "/keys/{key-name}/{key-version}", "update", "keys/update/action", "KeyUpdate"),
		row("POST", "/keys/{key-name}/create", "create", "keys/create/action", "KeyCreate"),
		row("PUT", "/keys/{key-name}", "import", "keys/import/action", "KeyImport"),
		row("DELETE", "/keys/{key-name}", "delete", "keys/delete", "KeyDelete"),
		row("POST", "/keys/{key-name}/backup", "backup", "keys/backup/action", "KeyBackup"),
		row("POST", "/keys/restore", "restore", "keys/restore/action", "KeyRestore"),
	}
	for _, o := range keyOps {
		t = append(t,
			row("POST", "/keys/{key-name}/{key-version}/"+o.seg, o.perm, o.action, o.name),
			row("POST", "/keys/{key-name}/"+o.seg, o.perm, o.action, o.name))
	}
	t = append(t,
		// Attestation (7.6): the spec gives "get [unv]" and no audit name.
		row("GET", "/keys/{key-name}/{key-version}/attestation", "get", "keys/read", "KeyAttestationGet"),
		row("GET", "/keys/{key-name}/attestation", "get", "keys/read", "KeyAttestationGet"),
		row("POST", "/keys/{key-name}/rotate", "rotate", "keys/rotate/action", "KeyRotate"),
		row("GET", "/keys/{key-name}/rotationpolicy", "getrotationpolicy", "keyrotationpolicies/read", "KeyRotationPolicyGet"),
		row("PUT", "/keys/{key-name}/rotationpolicy", "setrotationpolicy", "keyrotationpolicies/write", "KeyRotationPolicySet"),
		row("GET", "/deletedkeys", "list", "keys/read", "KeyListDeleted"),
		row("GET", "/deletedkeys/{key-name}", "get", "keys/read", "KeyGetDeleted"),
		row("DELETE", "/deletedkeys/{key-name}", "purge", "keys/purge/action", "KeyPurge"),
		row("POST", "/deletedkeys/{key-name}/recover", "recover", "keys/recover/action", "KeyRecover"),

		// Certificates.
		row("GET", "/certificates", "list", "certificates/read", "CertificateList"),
		row("GET", "/certificates/{certificate-name}/versions", "list", "certificates/read", "CertificateListVersions"),
		row("GET", "/certificates/{certificate-name}", "get", "certificates/read", "CertificateGet"),
		row("GET", "/certificates/{certificate-name}/{certificate-version}", "get", "certificates/read", "CertificateGet"),
		row("PATCH", "/certificates/{certificate-name}/{certificate-version}", "update", "certificates/update/action", "CertificateUpdate"),
		row("DELETE", "/certificates/{certificate-name}", "delete", "certificates/delete", "CertificateDelete"),
		row("POST", "/certificates/{certificate-name}/create", "create", "certificates/create/action", "CertificateCreate"),
		row("POST", "/certificates/{certificate-name}/import", "import", "certificates/import/action", "CertificateImport"),
		row("POST", "/certificates/{certificate-name}/backup", "backup", "certificates/backup/action", "CertificateBackup"),
		row("POST", "/certificates/restore", "restore", "certificates/restore/action", "CertificateRestore"),
		row("GET", "/certificates/{certificate-name}/policy", "get", "certificates/read", "CertificatePolicyGet"),
		row("PATCH", "/certificates/{certificate-name}/policy", "update", "certificates/update/action", "CertificatePolicyUpdate"),
		row("GET", "/certificates/{certificate-name}/pending", "get", "certificates/read", "CertificatePendingGet"),
		row("PATCH", "/certificates/{certificate-name}/pending", "update", "certificates/update/action", "CertificatePendingUpdate"),
		row("DELETE", "/certificates/{certificate-name}/pending", "update", "certificates/update/action", "CertificatePendingDelete"),
		row("POST", "/certificates/{certificate-name}/pending/merge", "create", "certificates/create/action", "CertificatePendingMerge"),
		// Contacts have no read data action: GET needs write too (spec ²).
		row("GET", "/certificates/contacts", "managecontacts", "certificatecontacts/write", "CertificateContactsGet"),
		row("PUT", "/certificates/contacts", "managecontacts", "certificatecontacts/write", "CertificateContactsSet"),
		row("DELETE", "/certificates/contacts", "managecontacts", "certificatecontacts/write", "CertificateContactsDelete"),
		row("GET", "/certificates/issuers", "listissuers", "certificatecas/read", "CertificateIssuersList"),
		row("GET", "/certificates/issuers/{issuer-name}", "getissuers", "certificatecas/read", "CertificateIssuerGet"),
		row("PUT", "/certificates/issuers/{issuer-name}", "setissuers", "certificatecas/write", "CertificateIssuerSet"),
		row("PATCH", "/certificates/issuers/{issuer-name}", "setissuers", "certificatecas/write", "CertificateIssuerUpdate"),
		row("DELETE", "/certificates/issuers/{issuer-name}", "deleteissuers", "certificatecas/delete", "CertificateIssuerDelete"),
		row("GET", "/deletedcertificates", "list", "certificates/read", "CertificateListDeleted"),
		row("GET", "/deletedcertificates/{certificate-name}", "get", "certificates/read", "CertificateGetDeleted"),
		row("DELETE", "/deletedcertificates/{certificate-name}", "purge", "certificates/purge/action", "CertificatePurge"),
		row("POST", "/deletedcertificates/{certificate-name}/recover", "recover", "certificates/recover/action", "CertificateRecover"),

		// Managed storage accounts and SAS definitions (legacy). The spec
		// lists no audit names for them; these follow the ObjectVerb pattern.
		row("GET", "/storage", "list", "storageaccounts/read", "StorageAccountList"),
		row("GET", "/storage/{storage-account-name}", "get", "storageaccounts/read", "StorageAccountGet"),
		row("PUT", "/storage/{storage-account-name}", "set", "storageaccounts/set/action", "StorageAccountSet"),
		row("PATCH", "/storage/{storage-account-name}", "update", "storageaccounts/set/action", "StorageAccountUpdate"),
		row("DELETE", "/storage/{storage-account-name}", "delete", "storageaccounts/delete", "StorageAccountDelete"),
		row("POST", "/storage/{storage-account-name}/regeneratekey", "regeneratekey", "storageaccounts/regeneratekey/action", "StorageAccountRegenerateKey"),
		row("POST", "/storage/{storage-account-name}/backup", "backup", "storageaccounts/backup/action", "StorageAccountBackup"),
		row("POST", "/storage/restore", "restore", "storageaccounts/restore/action", "StorageAccountRestore"),
		row("GET", "/deletedstorage", "list", "storageaccounts/read", "StorageAccountListDeleted"),
		row("GET", "/deletedstorage/{storage-account-name}", "get", "storageaccounts/read", "StorageAccountGetDeleted"),
		row("DELETE", "/deletedstorage/{storage-account-name}", "purge", "storageaccounts/purge/action", "StorageAccountPurge"),
		row("POST", "/deletedstorage/{storage-account-name}/recover", "recover", "storageaccounts/recover/action", "StorageAccountRecover"),
		row("GET", "/storage/{storage-account-name}/sas", "listsas", "storageaccounts/sas/read", "StorageSasDefinitionList"),
		row("GET", "/deletedstorage/{storage-account-name}/sas", "listsas", "storageaccounts/sas/read", "StorageSasDefinitionListDeleted"),
		row("GET", "/storage/{storage-account-name}/sas/{sas-definition-name}", "getsas", "storageaccounts/sas/read", "StorageSasDefinitionGet"),
		row("GET", "/deletedstorage/{storage-account-name}/sas/{sas-definition-name}", "getsas", "storageaccounts/sas/read", "StorageSasDefinitionGetDeleted"),
		row("PUT", "/storage/{storage-account-name}/sas/{sas-definition-name}", "setsas", "storageaccounts/sas/set/action", "StorageSasDefinitionSet"),
		row("PATCH", "/storage/{storage-account-name}/sas/{sas-definition-name}", "setsas", "storageaccounts/sas/set/action", "StorageSasDefinitionUpdate"),
		row("DELETE", "/storage/{storage-account-name}/sas/{sas-definition-name}", "deletesas", "storageaccounts/sas/delete", "StorageSasDefinitionDelete"),
		row("POST", "/deletedstorage/{storage-account-name}/sas/{sas-definition-name}/recover", "recover", "storageaccounts/recover/action", "StorageSasDefinitionRecover"),
	)
	return t
}
