package route_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/route"
)

const v = route.ExampleVersion

// rowCase is one expected classification, written out by hand from
// keyvault-spec §6 and §8, independently of the table in table.go.
type rowCase struct {
	method, path                 string
	resource, perm, action, name string // action without "Microsoft.KeyVault/vaults/"
	object, version, scope       string
}

var rowCases = []rowCase{
	// Secrets.
	{"GET", "/secrets", "secrets", "list", "secrets/readMetadata/action", "SecretList", "", "", ""},
	{"GET", "/secrets/my-secret/versions", "secrets", "list", "secrets/readMetadata/action", "SecretListVersions", "my-secret", "", "/secrets/my-secret"},
	{"GET", "/secrets/my-secret", "secrets", "get", "secrets/getSecret/action", "SecretGet", "my-secret", "", "/secrets/my-secret"},
	{"GET", "/secrets/my-secret/" + v, "secrets", "get", "secrets/getSecret/action", "SecretGet", "my-secret", v, "/secrets/my-secret"},
	{"PUT", "/secrets/my-secret", "secrets", "set", "secrets/setSecret/action", "SecretSet", "my-secret", "", "/secrets/my-secret"},
	{"PATCH", "/secrets/my-secret/" + v, "secrets", "set", "secrets/update/action", "SecretUpdate", "my-secret", v, "/secrets/my-secret"},
	{"DELETE", "/secrets/my-secret", "secrets", "delete", "secrets/delete", "SecretDelete", "my-secret", "", "/secrets/my-secret"},
	{"POST", "/secrets/my-secret/backup", "secrets", "backup", "secrets/backup/action", "SecretBackup", "my-secret", "", "/secrets/my-secret"},
	{"POST", "/secrets/restore", "secrets", "restore", "secrets/restore/action", "SecretRestore", "", "", ""},
	{"GET", "/deletedsecrets", "secrets", "list", "secrets/readMetadata/action", "SecretListDeleted", "", "", ""},
	{"GET", "/deletedsecrets/my-secret", "secrets", "get", "secrets/readMetadata/action", "SecretGetDeleted", "my-secret", "", ""},
	{"DELETE", "/deletedsecrets/my-secret", "secrets", "purge", "secrets/purge/action", "SecretPurge", "my-secret", "", ""},
	{"POST", "/deletedsecrets/my-secret/recover", "secrets", "recover", "secrets/recover/action", "SecretRecover", "my-secret", "", ""},

	// Keys.
	{"GET", "/keys", "keys", "list", "keys/read", "KeyList", "", "", ""},
	{"GET", "/keys/my-key/versions", "keys", "list", "keys/read", "KeyListVersions", "my-key", "", "/keys/my-key"},
	{"GET", "/keys/my-key", "keys", "get", "keys/read", "KeyGet", "my-key", "", "/keys/my-key"},
	{"GET", "/keys/my-key/" + v, "keys", "get", "keys/read", "KeyGet", "my-key", v, "/keys/my-key"},
	{"PATCH", "/keys/my-key/" + v, "keys", "update", "keys/update/action", "KeyUpdate", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/create", "keys", "create", "keys/create/action", "KeyCreate", "my-key", "", "/keys/my-key"},
	{"PUT", "/keys/my-key", "keys", "import", "keys/import/action", "KeyImport", "my-key", "", "/keys/my-key"},
	{"DELETE", "/keys/my-key", "keys", "delete", "keys/delete", "KeyDelete", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/backup", "keys", "backup", "keys/backup/action", "KeyBackup", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/restore", "keys", "restore", "keys/restore/action", "KeyRestore", "", "", ""},
	{"POST", "/keys/my-key/" + v + "/encrypt", "keys", "encrypt", "keys/encrypt/action", "KeyEncrypt", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/encrypt", "keys", "encrypt", "keys/encrypt/action", "KeyEncrypt", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/decrypt", "keys", "decrypt", "keys/decrypt/action", "KeyDecrypt", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/decrypt", "keys", "decrypt", "keys/decrypt/action", "KeyDecrypt", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/wrapkey", "keys", "wrapKey", "keys/wrap/action", "KeyWrap", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/wrapkey", "keys", "wrapKey", "keys/wrap/action", "KeyWrap", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/unwrapkey", "keys", "unwrapKey", "keys/unwrap/action", "KeyUnwrap", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/unwrapkey", "keys", "unwrapKey", "keys/unwrap/action", "KeyUnwrap", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/sign", "keys", "sign", "keys/sign/action", "KeySign", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/sign", "keys", "sign", "keys/sign/action", "KeySign", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/verify", "keys", "verify", "keys/verify/action", "KeyVerify", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/verify", "keys", "verify", "keys/verify/action", "KeyVerify", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/" + v + "/release", "keys", "release", "keys/release/action", "KeyRelease", "my-key", v, "/keys/my-key"},
	{"POST", "/keys/my-key/release", "keys", "release", "keys/release/action", "KeyRelease", "my-key", "", "/keys/my-key"},
	{"GET", "/keys/my-key/" + v + "/attestation", "keys", "get", "keys/read", "KeyAttestationGet", "my-key", v, "/keys/my-key"},
	{"GET", "/keys/my-key/attestation", "keys", "get", "keys/read", "KeyAttestationGet", "my-key", "", "/keys/my-key"},
	{"POST", "/keys/my-key/rotate", "keys", "rotate", "keys/rotate/action", "KeyRotate", "my-key", "", "/keys/my-key"},
	{"GET", "/keys/my-key/rotationpolicy", "keys", "getrotationpolicy", "keyrotationpolicies/read", "KeyRotationPolicyGet", "my-key", "", "/keys/my-key"},
	{"PUT", "/keys/my-key/rotationpolicy", "keys", "setrotationpolicy", "keyrotationpolicies/write", "KeyRotationPolicySet", "my-key", "", "/keys/my-key"},
	{"GET", "/deletedkeys", "keys", "list", "keys/read", "KeyListDeleted", "", "", ""},
	{"GET", "/deletedkeys/my-key", "keys", "get", "keys/read", "KeyGetDeleted", "my-key", "", ""},
	{"DELETE", "/deletedkeys/my-key", "keys", "purge", "keys/purge/action", "KeyPurge", "my-key", "", ""},
	{"POST", "/deletedkeys/my-key/recover", "keys", "recover", "keys/recover/action", "KeyRecover", "my-key", "", ""},

	// Certificates.
	{"GET", "/certificates", "certificates", "list", "certificates/read", "CertificateList", "", "", ""},
	{"GET", "/certificates/my-cert/versions", "certificates", "list", "certificates/read", "CertificateListVersions", "my-cert", "", "/certificates/my-cert"},
	{"GET", "/certificates/my-cert", "certificates", "get", "certificates/read", "CertificateGet", "my-cert", "", "/certificates/my-cert"},
	{"GET", "/certificates/my-cert/" + v, "certificates", "get", "certificates/read", "CertificateGet", "my-cert", v, "/certificates/my-cert"},
	{"PATCH", "/certificates/my-cert/" + v, "certificates", "update", "certificates/update/action", "CertificateUpdate", "my-cert", v, "/certificates/my-cert"},
	{"DELETE", "/certificates/my-cert", "certificates", "delete", "certificates/delete", "CertificateDelete", "my-cert", "", "/certificates/my-cert"},
	{"POST", "/certificates/my-cert/create", "certificates", "create", "certificates/create/action", "CertificateCreate", "my-cert", "", "/certificates/my-cert"},
	{"POST", "/certificates/my-cert/import", "certificates", "import", "certificates/import/action", "CertificateImport", "my-cert", "", "/certificates/my-cert"},
	{"POST", "/certificates/my-cert/backup", "certificates", "backup", "certificates/backup/action", "CertificateBackup", "my-cert", "", "/certificates/my-cert"},
	{"POST", "/certificates/restore", "certificates", "restore", "certificates/restore/action", "CertificateRestore", "", "", ""},
	{"GET", "/certificates/my-cert/policy", "certificates", "get", "certificates/read", "CertificatePolicyGet", "my-cert", "", "/certificates/my-cert"},
	{"PATCH", "/certificates/my-cert/policy", "certificates", "update", "certificates/update/action", "CertificatePolicyUpdate", "my-cert", "", "/certificates/my-cert"},
	{"GET", "/certificates/my-cert/pending", "certificates", "get", "certificates/read", "CertificatePendingGet", "my-cert", "", "/certificates/my-cert"},
	{"PATCH", "/certificates/my-cert/pending", "certificates", "update", "certificates/update/action", "CertificatePendingUpdate", "my-cert", "", "/certificates/my-cert"},
	{"DELETE", "/certificates/my-cert/pending", "certificates", "update", "certificates/update/action", "CertificatePendingDelete", "my-cert", "", "/certificates/my-cert"},
	{"POST", "/certificates/my-cert/pending/merge", "certificates", "create", "certificates/create/action", "CertificatePendingMerge", "my-cert", "", "/certificates/my-cert"},
	{"GET", "/certificates/contacts", "certificates", "managecontacts", "certificatecontacts/write", "CertificateContactsGet", "", "", ""},
	{"PUT", "/certificates/contacts", "certificates", "managecontacts", "certificatecontacts/write", "CertificateContactsSet", "", "", ""},
	{"DELETE", "/certificates/contacts", "certificates", "managecontacts", "certificatecontacts/write", "CertificateContactsDelete", "", "", ""},
	{"GET", "/certificates/issuers", "certificates", "listissuers", "certificatecas/read", "CertificateIssuersList", "", "", ""},
	{"GET", "/certificates/issuers/my-issuer", "certificates", "getissuers", "certificatecas/read", "CertificateIssuerGet", "my-issuer", "", ""},
	{"PUT", "/certificates/issuers/my-issuer", "certificates", "setissuers", "certificatecas/write", "CertificateIssuerSet", "my-issuer", "", ""},
	{"PATCH", "/certificates/issuers/my-issuer", "certificates", "setissuers", "certificatecas/write", "CertificateIssuerUpdate", "my-issuer", "", ""},
	{"DELETE", "/certificates/issuers/my-issuer", "certificates", "deleteissuers", "certificatecas/delete", "CertificateIssuerDelete", "my-issuer", "", ""},
	{"GET", "/deletedcertificates", "certificates", "list", "certificates/read", "CertificateListDeleted", "", "", ""},
	{"GET", "/deletedcertificates/my-cert", "certificates", "get", "certificates/read", "CertificateGetDeleted", "my-cert", "", ""},
	{"DELETE", "/deletedcertificates/my-cert", "certificates", "purge", "certificates/purge/action", "CertificatePurge", "my-cert", "", ""},
	{"POST", "/deletedcertificates/my-cert/recover", "certificates", "recover", "certificates/recover/action", "CertificateRecover", "my-cert", "", ""},

	// Storage accounts and SAS definitions.
	{"GET", "/storage", "storage", "list", "storageaccounts/read", "StorageAccountList", "", "", ""},
	{"GET", "/storage/mystorageacct", "storage", "get", "storageaccounts/read", "StorageAccountGet", "mystorageacct", "", ""},
	{"PUT", "/storage/mystorageacct", "storage", "set", "storageaccounts/set/action", "StorageAccountSet", "mystorageacct", "", ""},
	{"PATCH", "/storage/mystorageacct", "storage", "update", "storageaccounts/set/action", "StorageAccountUpdate", "mystorageacct", "", ""},
	{"DELETE", "/storage/mystorageacct", "storage", "delete", "storageaccounts/delete", "StorageAccountDelete", "mystorageacct", "", ""},
	{"POST", "/storage/mystorageacct/regeneratekey", "storage", "regeneratekey", "storageaccounts/regeneratekey/action", "StorageAccountRegenerateKey", "mystorageacct", "", ""},
	{"POST", "/storage/mystorageacct/backup", "storage", "backup", "storageaccounts/backup/action", "StorageAccountBackup", "mystorageacct", "", ""},
	{"POST", "/storage/restore", "storage", "restore", "storageaccounts/restore/action", "StorageAccountRestore", "", "", ""},
	{"GET", "/deletedstorage", "storage", "list", "storageaccounts/read", "StorageAccountListDeleted", "", "", ""},
	{"GET", "/deletedstorage/mystorageacct", "storage", "get", "storageaccounts/read", "StorageAccountGetDeleted", "mystorageacct", "", ""},
	{"DELETE", "/deletedstorage/mystorageacct", "storage", "purge", "storageaccounts/purge/action", "StorageAccountPurge", "mystorageacct", "", ""},
	{"POST", "/deletedstorage/mystorageacct/recover", "storage", "recover", "storageaccounts/recover/action", "StorageAccountRecover", "mystorageacct", "", ""},
	{"GET", "/storage/mystorageacct/sas", "storage", "listsas", "storageaccounts/sas/read", "StorageSasDefinitionList", "mystorageacct", "", ""},
	{"GET", "/deletedstorage/mystorageacct/sas", "storage", "listsas", "storageaccounts/sas/read", "StorageSasDefinitionListDeleted", "mystorageacct", "", ""},
	{"GET", "/storage/mystorageacct/sas/mysasdef", "storage", "getsas", "storageaccounts/sas/read", "StorageSasDefinitionGet", "mystorageacct", "", ""},
	{"GET", "/deletedstorage/mystorageacct/sas/mysasdef", "storage", "getsas", "storageaccounts/sas/read", "StorageSasDefinitionGetDeleted", "mystorageacct", "", ""},
	{"PUT", "/storage/mystorageacct/sas/mysasdef", "storage", "setsas", "storageaccounts/sas/set/action", "StorageSasDefinitionSet", "mystorageacct", "", ""},
	{"PATCH", "/storage/mystorageacct/sas/mysasdef", "storage", "setsas", "storageaccounts/sas/set/action", "StorageSasDefinitionUpdate", "mystorageacct", "", ""},
	{"DELETE", "/storage/mystorageacct/sas/mysasdef", "storage", "deletesas", "storageaccounts/sas/delete", "StorageSasDefinitionDelete", "mystorageacct", "", ""},
	{"POST", "/deletedstorage/mystorageacct/sas/mysasdef/recover", "storage", "recover", "storageaccounts/recover/action", "StorageSasDefinitionRecover", "mystorageacct", "", ""},
}

func (c rowCase) operation(apiVersion string) authz.Operation {
	return authz.Operation{
		Plane: authz.PlaneData, Resource: c.resource, Permission: c.perm,
		DataAction: "Microsoft.KeyVault/vaults/" + c.action, Name: c.name,
		Object: c.object, ObjectRaw: c.object, Version: c.version, Scope: c.scope,
		Method: c.method, APIVersion: apiVersion,
	}
}

func classify(t testing.TB, r *route.Router, method, path string, headers map[string]string) (authz.Operation, *authz.Denial) {
	t.Helper()
	return r.Classify(&authz.Request{Method: method, Path: path, Headers: headers})
}

// TestEveryRow classifies every hand-written case (one per table row) and
// compares every field of the Operation.
func TestEveryRow(t *testing.T) {
	r := route.New()
	for _, c := range rowCases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			got, den := classify(t, r, c.method, c.path+"?api-version=7.5", nil)
			if den != nil {
				t.Fatalf("refused: %d %s/%s: %s", den.Status, den.Code, den.Inner, den.Message)
			}
			if want := c.operation("7.5"); got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestTableCoverage proves rowCases and Table() describe the same set of
// operations: every row has a hand-written case at its Example path, and
// every case's row agrees with it.
func TestTableCoverage(t *testing.T) {
	cases := map[string]rowCase{}
	for _, c := range rowCases {
		k := c.method + " " + c.path
		if _, dup := cases[k]; dup {
			t.Errorf("duplicate case %s", k)
		}
		cases[k] = c
	}
	rows := route.Table()
	if len(rows) != len(rowCases)+1 { // + GET /healthstatus
		t.Errorf("Table has %d rows, rowCases %d (+1 for /healthstatus)", len(rows), len(rowCases))
	}
	for _, row := range rows {
		if row.Anonymous {
			continue
		}
		k := row.Method + " " + row.Example()
		c, ok := cases[k]
		if !ok {
			t.Errorf("row %s %s has no hand-written case at %s", row.Method, row.Pattern, k)
			continue
		}
		scope := strings.NewReplacer("{secret-name}", "my-secret", "{key-name}", "my-key", "{certificate-name}", "my-cert").Replace(row.Scope)
		if row.Resource != c.resource || row.Permission != c.perm || row.DataAction != "Microsoft.KeyVault/vaults/"+c.action ||
			row.Name != c.name || scope != c.scope {
			t.Errorf("row %s %s = %+v, case says %+v", row.Method, row.Pattern, row, c)
		}
	}
}

// TestTableWellFormed checks what other packages rely on: every permission
// is one authz knows, in the spec's casing; every data action has the
// vault prefix; every row compiles.
func TestTableWellFormed(t *testing.T) {
	_ = route.New() // panics on an inconsistent table
	seen := map[string]bool{}
	for _, row := range route.Table() {
		if seen[row.Method+" "+row.Pattern] {
			t.Errorf("duplicate row %s %s", row.Method, row.Pattern)
		}
		seen[row.Method+" "+row.Pattern] = true
		if row.Name == "" {
			t.Errorf("%s %s: no audit name", row.Method, row.Pattern)
		}
		if row.Anonymous {
			if row.Resource != "" || row.Permission != "" || row.DataAction != "" {
				t.Errorf("%s %s: anonymous row carries a permission", row.Method, row.Pattern)
			}
			continue
		}
		if p, ok := authz.CanonicalPermission(row.Resource, row.Permission); !ok || p != row.Permission {
			t.Errorf("%s %s: permission %s/%s is not known in that casing", row.Method, row.Pattern, row.Resource, row.Permission)
		}
		if !strings.HasPrefix(row.DataAction, authz.DataActionPrefix) {
			t.Errorf("%s %s: data action %q lacks the prefix", row.Method, row.Pattern, row.DataAction)
		}
	}
}

func TestTableIsACopy(t *testing.T) {
	a := route.Table()
	a[0].Name = "Changed"
	if route.Table()[0].Name == "Changed" {
		t.Fatal("Table exposes the router's own rows")
	}
}
