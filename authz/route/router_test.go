package route_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/route"
)

// TestRoutingRules covers the matching rules of doc.go on requests that
// classify: empty versions, case, literal precedence, X-HTTP-METHOD, the
// query.
func TestRoutingRules(t *testing.T) {
	r := route.New()
	hex := "0123456789ABCDEF0123456789abcdef"
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		want    authz.Operation // Plane and DataAction are not compared
	}{
		{"health status needs no token", "GET", "/healthstatus",
			nil, authz.Operation{Name: "HealthStatus", Method: "GET", Anonymous: true}},
		{"health status literal case", "GET", "/HealthStatus?api-version=7.5",
			nil, authz.Operation{Name: "HealthStatus", Method: "GET", Anonymous: true, APIVersion: "7.5"}},

		{"trailing slash is an empty version", "GET", "/secrets/db/",
			nil, op("secrets", "get", "SecretGet", "db", "", "/secrets/db", "GET")},
		{"PATCH with empty version (Go SDK update)", "PATCH", "/secrets/db/?api-version=2026-04-01",
			nil, withAPI(op("secrets", "set", "SecretUpdate", "db", "", "/secrets/db", "PATCH"), "2026-04-01")},
		{"double slash is an empty version", "POST", "/keys/k1//sign",
			nil, op("keys", "sign", "KeySign", "k1", "", "/keys/k1", "POST")},
		{"double slash before attestation", "GET", "/keys/k1//attestation",
			nil, op("keys", "get", "KeyAttestationGet", "k1", "", "/keys/k1", "GET")},
		{"version-less wrapkey (Go SDK)", "POST", "/keys/k1/wrapkey?api-version=2025-07-01",
			nil, withAPI(op("keys", "wrapKey", "KeyWrap", "k1", "", "/keys/k1", "POST"), "2025-07-01")},
		{"upper-case hex version", "POST", "/keys/k1/" + hex + "/unwrapkey",
			nil, op("keys", "unwrapKey", "KeyUnwrap", "k1", hex, "/keys/k1", "POST")},

		{"literal lower", "POST", "/keys/k1/wrapkey", nil, op("keys", "wrapKey", "KeyWrap", "k1", "", "/keys/k1", "POST")},
		{"literal camel", "POST", "/keys/k1/wrapKey", nil, op("keys", "wrapKey", "KeyWrap", "k1", "", "/keys/k1", "POST")},
		{"literal upper", "POST", "/keys/k1/" + hex + "/WRAPKEY", nil, op("keys", "wrapKey", "KeyWrap", "k1", hex, "/keys/k1", "POST")},
		{"collection literal case, scope canonical", "GET", "/SECRETS/Db/Versions",
			nil, op("secrets", "list", "SecretListVersions", "Db", "", "/secrets/Db", "GET")},
		{"object name kept as sent", "GET", "/secrets/My-Secret-01",
			nil, op("secrets", "get", "SecretGet", "My-Secret-01", "", "/secrets/My-Secret-01", "GET")},
		{"127-character name", "GET", "/secrets/" + strings.Repeat("a", 127),
			nil, op("secrets", "get", "SecretGet", strings.Repeat("a", 127), "", "/secrets/"+strings.Repeat("a", 127), "GET")},
		{"127-character storage account", "GET", "/storage/" + strings.Repeat("a", 127),
			nil, op("storage", "get", "StorageAccountGet", strings.Repeat("a", 127), "", "", "GET")},
		{"127-character SAS definition", "GET", "/storage/acct1/sas/" + strings.Repeat("S", 127),
			nil, op("storage", "getsas", "StorageSasDefinitionGet", "acct1", "", "", "GET")},

		{"contacts beats a certificate name", "GET", "/certificates/contacts",
			nil, op("certificates", "managecontacts", "CertificateContactsGet", "", "", "", "GET")},
		{"issuers beats a certificate name", "GET", "/certificates/issuers",
			nil, op("certificates", "listissuers", "CertificateIssuersList", "", "", "", "GET")},
		{"issuer named like a version beats certificate version", "GET", "/certificates/issuers/" + hex,
			nil, op("certificates", "getissuers", "CertificateIssuerGet", hex, "", "", "GET")},
		{"restore literal", "POST", "/secrets/restore", nil, op("secrets", "restore", "SecretRestore", "", "", "", "POST")},
		{"restore literal in another case", "POST", "/secrets/RESTORE", nil, op("secrets", "restore", "SecretRestore", "", "", "", "POST")},
		{"secret named restore: PUT", "PUT", "/secrets/restore",
			nil, op("secrets", "set", "SecretSet", "restore", "", "/secrets/restore", "PUT")},
		{"secret named restore: GET", "GET", "/secrets/restore",
			nil, op("secrets", "get", "SecretGet", "restore", "", "/secrets/restore", "GET")},
		{"certificate named contacts below the literal", "GET", "/certificates/contacts/versions",
			nil, op("certificates", "list", "CertificateListVersions", "contacts", "", "/certificates/contacts", "GET")},
		{"case variant with one reading only", "PUT", "/certificates/Contacts",
			nil, op("certificates", "managecontacts", "CertificateContactsSet", "", "", "", "PUT")},
		{"key named versions-like", "GET", "/keys/versions/versions",
			nil, op("keys", "list", "KeyListVersions", "versions", "", "/keys/versions", "GET")},

		{"X-HTTP-METHOD PATCH", "POST", "/secrets/db/" + hex, map[string]string{"x-http-method": "PATCH"},
			op("secrets", "set", "SecretUpdate", "db", hex, "/secrets/db", "PATCH")},
		{"X-HTTP-METHOD DELETE", "POST", "/keys/k1", map[string]string{"x-http-method": "DELETE"},
			op("keys", "delete", "KeyDelete", "k1", "", "/keys/k1", "DELETE")},
		{"X-HTTP-METHOD on storage", "POST", "/storage/acct1/sas/sas1", map[string]string{"x-http-method": "DELETE"},
			op("storage", "deletesas", "StorageSasDefinitionDelete", "acct1", "", "", "DELETE")},

		{"query captured", "GET", "/secrets?api-version=2026-04-01&maxresults=25&$skiptoken=eyJOZXh0%3D%3D",
			nil, withAPI(op("secrets", "list", "SecretList", "", "", "", "GET"), "2026-04-01")},
		{"api-version name in another case", "GET", "/secrets?API-Version=7.5",
			nil, withAPI(op("secrets", "list", "SecretList", "", "", "", "GET"), "7.5")},
		{"preview api-version", "GET", "/keys/k1/" + hex + "/attestation?api-version=7.6-preview.1",
			nil, withAPI(op("keys", "get", "KeyAttestationGet", "k1", hex, "/keys/k1", "GET"), "7.6-preview.1")},
		{"empty query", "GET", "/secrets?", nil, op("secrets", "list", "SecretList", "", "", "", "GET")},
		{"empty query pairs", "GET", "/secrets?&api-version=7.5&", nil, withAPI(op("secrets", "list", "SecretList", "", "", "", "GET"), "7.5")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, den := classify(t, r, tt.method, tt.path, tt.headers)
			if den != nil {
				t.Fatalf("refused: %d %s/%s: %s", den.Status, den.Code, den.Inner, den.Message)
			}
			if got.Plane != authz.PlaneData {
				t.Errorf("plane %v", got.Plane)
			}
			if !got.Anonymous && !strings.HasPrefix(got.DataAction, authz.DataActionPrefix) {
				t.Errorf("data action %q", got.DataAction)
			}
			got.Plane, got.DataAction = 0, ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// op is the expected Operation; object is the name as sent, so Object and
// Scope are its canonical lower case.
func op(resource, perm, name, object, version, scope, method string) authz.Operation {
	return authz.Operation{Resource: resource, Permission: perm, Name: name, Object: strings.ToLower(object), ObjectRaw: object,
		Version: version, Scope: strings.ToLower(scope), Method: method}
}

func withAPI(o authz.Operation, v string) authz.Operation { o.APIVersion = v; return o }

// TestRefusals: everything not canonical, valid and in the table is refused,
// with the documented status and codes, and nothing of it is passed on.
func TestRefusals(t *testing.T) {
	r := route.New()
	hex := "0123456789abcdef0123456789abcdef"
	const (
		uri     = route.InnerInvalidRequestURI
		name    = route.InnerInvalidName
		unknown = route.InnerUnknownOperation
		amb     = route.InnerAmbiguous
		ovr     = route.InnerInvalidMethodOverride
	)
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		inner   string
		msg     string // a substring of the message
	}{
		// Not the canonical form.
		{"encoded slash", "GET", "/secrets/a%2Fb", nil, 400, uri, "percent-encoded"},
		{"encoded dot", "GET", "/secrets/%2e%2e/keys", nil, 400, uri, "percent-encoded"},
		{"encoded letter", "GET", "/secrets/%41", nil, 400, uri, "percent-encoded"},
		{"dot segment", "GET", "/secrets/./db", nil, 400, uri, "dot segment ('.')"},
		{"dot-dot segment", "GET", "/keys/../secrets/db", nil, 400, uri, "dot segment ('..')"},
		{"trailing dot-dot", "GET", "/secrets/db/..", nil, 400, uri, "dot segment"},
		{"trailing dot", "GET", "/secrets/.", nil, 400, uri, "dot segment"},
		{"backslash", "GET", "/secrets\\db", nil, 400, uri, "backslash"},
		{"NUL", "GET", "/secrets/db\x00", nil, 400, uri, "0x00"},
		{"tab", "GET", "/secrets/\tdb", nil, 400, uri, "control"},
		{"newline in query", "GET", "/secrets?api-version=7.5\n", nil, 400, uri, "control"},
		{"space", "GET", "/secrets/a b", nil, 400, uri, "0x20"},
		{"DEL", "GET", "/secrets/db\x7f", nil, 400, uri, "0x7f"},
		{"non-ASCII", "GET", "/secrets/caf\xc3\xa9", nil, 400, uri, "non-ASCII"},
		{"path parameter", "GET", "/secrets/db;v=1", nil, 400, uri, "';' path parameter"},
		{"fragment", "GET", "/secrets/db#frag", nil, 400, uri, "fragment"},
		{"leading double slash", "GET", "//secrets/db", nil, 400, uri, "empty path segment"},
		{"double slash at a name", "GET", "/secrets//db", nil, 400, uri, "empty path segment"},
		{"triple slash", "POST", "/keys/k1///sign", nil, 400, uri, "empty path segment"},
		{"double slash after a version", "POST", "/keys/k1/" + hex + "//sign", nil, 400, uri, "empty path segment"},
		{"trailing double slash", "GET", "/secrets/db//", nil, 400, uri, "empty path segment"},
		{"trailing slash on a collection", "GET", "/secrets/", nil, 400, uri, "empty path segment"},
		{"trailing slash after a literal", "GET", "/secrets/db/versions/", nil, 400, uri, "empty path segment"},
		{"relative path", "GET", "secrets/db", nil, 400, uri, "must start with '/'"},
		{"empty path", "GET", "", nil, 400, uri, "must start with '/'"},
		{"asterisk", "OPTIONS", "*", nil, 400, uri, "must start with '/'"},
		{"absolute form", "GET", "https://v.vault.azure.net/secrets/db", nil, 400, uri, "must start with '/'"},
		{"path too long", "GET", "/secrets/" + strings.Repeat("a", route.MaxPathLen), nil, 400, uri, "longer than 2048"},
		{"query too long", "GET", "/secrets?x=" + strings.Repeat("a", route.MaxQueryLen), nil, 400, uri, "longer than 4096"},
		{"duplicate api-version", "GET", "/secrets?api-version=7.4&api-version=7.5", nil, 400, uri, "more than one api-version"},
		{"duplicate api-version, other case", "GET", "/secrets?api-version=7.4&API-VERSION=7.5", nil, 400, uri, "more than one api-version"},
		{"duplicate api-version, encoded name", "GET", "/secrets?api-version=7.4&api%2Dversion=7.5", nil, 400, uri, "more than one api-version"},
		{"bad escape in query", "GET", "/secrets?api-version=7.5&x=%zz", nil, 400, uri, "percent-encoding"},
		{"truncated escape in query", "GET", "/secrets?x=%4", nil, 400, uri, "percent-encoding"},
		{"escape with a bad second digit", "GET", "/secrets?x=%4g", nil, 400, uri, "percent-encoding"},
		{"escape with a bad first digit", "GET", "/secrets?x=%g4", nil, 400, uri, "percent-encoding"},
		{"semicolon in query", "GET", "/secrets?api-version=7.4;api-version=7.5", nil, 400, uri, "';'"},
		{"empty api-version", "GET", "/secrets?api-version=", nil, 400, uri, "api-version"},
		{"encoded api-version", "GET", "/secrets?api-version=7%2E5", nil, 400, uri, "api-version"},
		{"junk api-version", "GET", "/secrets?api-version=7.5'or'1", nil, 400, uri, "api-version"},

		// Names and versions.
		{"underscore in a name", "GET", "/secrets/my_secret", nil, 400, name, "invalid name: my_secret"},
		{"128-character name", "GET", "/secrets/" + strings.Repeat("a", 128), nil, 400, name, "1 to 127"},
		{"dot in a name", "GET", "/keys/a.b", nil, 400, name, "invalid name: a.b"},
		{"bad key name before an operation", "POST", "/keys/k_1/wrapkey", nil, 400, name, "key name"},
		{"bad issuer name", "GET", "/certificates/issuers/a_b", nil, 400, name, "issuer name"},
		{"dash in a storage account", "GET", "/storage/my-acct", nil, 400, name, "storage account name"},
		{"128-character storage account", "GET", "/storage/" + strings.Repeat("a", 128), nil, 400, name, "1 to 127 letters and digits"},
		{"128-character SAS definition", "GET", "/storage/acct/sas/" + strings.Repeat("a", 128), nil, 400, name, "1 to 127 letters and digits"},
		{"dash in a SAS definition", "GET", "/storage/acct/sas/my-sas", nil, 400, name, "SAS definition name"},
		{"31-character version", "GET", "/secrets/db/" + hex[:31], nil, 400, name, "secret version"},
		{"33-character version", "GET", "/keys/k1/" + hex + "0", nil, 400, name, "key version"},
		{"non-hex version", "POST", "/keys/k1/" + strings.Repeat("g", 32) + "/sign", nil, 400, name, "key version"},
		{"misspelt operation", "POST", "/keys/k1/wrap_key", nil, 400, name, "neither one of"},

		// Not in the table.
		{"unknown collection", "GET", "/foo", nil, 400, unknown, "GET /foo is not a Key Vault"},
		{"root", "GET", "/", nil, 400, uri, "empty path segment"},
		{"managed HSM rng", "POST", "/rng", nil, 400, unknown, "POST /rng"},
		{"segment past a version", "GET", "/secrets/db/" + hex + "/extra", nil, 400, unknown, "not a Key Vault"},
		{"too many segments", "GET", "/a/b/c/d/e/f/g/h/i/j", nil, 400, unknown, "not a Key Vault"},
		{"pending merge is POST only, and deeper", "POST", "/certificates/c1/pending/merge/x", nil, 400, unknown, "not a Key Vault"},

		// Method not allowed on a known path.
		{"PUT on versions", "PUT", "/keys/k1/versions", nil, 405, "", "Allowed: GET"},
		{"HEAD", "HEAD", "/secrets", nil, 405, "", `"HEAD"`},
		{"lower-case method", "get", "/secrets", nil, 405, "", "Allowed: GET"},
		{"OPTIONS", "OPTIONS", "/secrets/db", nil, 405, "", "Allowed: GET, PUT, DELETE"},
		{"GET on a POST-only operation", "GET", "/keys/k1/wrapkey", nil, 405, "", "Allowed: POST"},
		{"DELETE on backup via override", "POST", "/secrets/db/backup", map[string]string{"x-http-method": "DELETE"}, 405, "", "DELETE is not allowed"},
		{"anonymous path, other method", "POST", "/healthstatus", nil, 405, "", "Allowed: GET"},

		// Ambiguous.
		{"contacts in another case: GET", "GET", "/certificates/Contacts", nil, 400, amb, "'Contacts'"},
		{"contacts in another case: DELETE", "DELETE", "/certificates/CONTACTS", nil, 400, amb, "reserved segment 'contacts'"},
		{"issuers in another case", "GET", "/certificates/Issuers", nil, 400, amb, "ambiguous"},
		{"issuers in another case with a hex issuer", "PATCH", "/certificates/ISSUERS/" + hex, nil, 400, amb, "ambiguous"},
		{"override on a POST operation", "POST", "/secrets/restore", map[string]string{"x-http-method": "DELETE"}, 400, amb, "SecretRestore"},
		{"override on a POST operation (storage)", "POST", "/storage/restore", map[string]string{"x-http-method": "PATCH"}, 400, amb, "StorageAccountRestore"},

		// X-HTTP-METHOD misuse.
		{"override value lower case", "POST", "/keys/k1", map[string]string{"x-http-method": "delete"}, 400, ovr, `"delete"`},
		{"override to PUT", "POST", "/keys/k1", map[string]string{"x-http-method": "PUT"}, 400, ovr, "PATCH or DELETE"},
		{"override to GET", "POST", "/keys/k1", map[string]string{"x-http-method": "GET"}, 400, ovr, "PATCH or DELETE"},
		{"override empty", "POST", "/keys/k1", map[string]string{"x-http-method": ""}, 400, ovr, "PATCH or DELETE"},
		{"override duplicated", "POST", "/keys/k1", map[string]string{"x-http-method": "PATCH,DELETE"}, 400, ovr, "PATCH or DELETE"},
		{"override on GET", "GET", "/keys/k1", map[string]string{"x-http-method": "DELETE"}, 400, ovr, "not on GET"},
		{"override on PUT", "PUT", "/keys/k1", map[string]string{"x-http-method": "PATCH"}, 400, ovr, "not on PUT"},
		{"framework override header", "POST", "/secrets/db/backup", map[string]string{"x-http-method-override": "DELETE"}, 400, ovr, "x-http-method-override"},
		{"other framework override header", "GET", "/secrets/db", map[string]string{"x-method-override": "DELETE"}, 400, ovr, "x-method-override"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, den := classify(t, r, tt.method, tt.path, tt.headers)
			if den == nil {
				t.Fatalf("classified as %+v, want a refusal", got)
			}
			if got != (authz.Operation{}) {
				t.Errorf("a refusal carries an operation: %+v", got)
			}
			wantCode := route.CodeBadParameter
			if tt.status == 405 {
				wantCode = route.CodeMethodNotAllowed
			}
			if den.Status != tt.status || den.Code != wantCode || den.Inner != tt.inner {
				t.Errorf("got %d %s/%s, want %d %s/%s (%s)", den.Status, den.Code, den.Inner, tt.status, wantCode, tt.inner, den.Message)
			}
			if !strings.Contains(den.Message, tt.msg) {
				t.Errorf("message %q lacks %q", den.Message, tt.msg)
			}
			if den.Challenge {
				t.Error("a classification refusal asks for a token")
			}
		})
	}
}

func TestNilRequest(t *testing.T) {
	if _, den := route.New().Classify(nil); den == nil || den.Status != 400 {
		t.Fatalf("nil request: %+v", den)
	}
}

// TestExamplesClassify: each row's Example path classifies to that row,
// so generators built on Table() produce requests the router accepts.
func TestExamplesClassify(t *testing.T) {
	r := route.New()
	for _, row := range route.Table() {
		got, den := classify(t, r, row.Method, row.Example(), nil)
		if den != nil {
			t.Errorf("%s %s: refused: %s", row.Method, row.Example(), den.Message)
			continue
		}
		if got.Name != row.Name || got.Permission != row.Permission || got.DataAction != row.DataAction ||
			got.Resource != row.Resource || got.Anonymous != row.Anonymous {
			t.Errorf("%s %s: got %+v, row %+v", row.Method, row.Example(), got, row)
		}
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	r := route.New()
	reqs := []*authz.Request{
		{Method: "GET", Path: "/secrets/db/" + route.ExampleVersion + "?api-version=2026-04-01"},
		{Method: "POST", Path: "/keys/k1/wrapkey?api-version=2025-07-01"},
		{Method: "POST", Path: "/keys/k1//unwrapkey?api-version=7.5", Headers: map[string]string{"content-type": "application/json"}},
		{Method: "GET", Path: "/certificates/contacts?api-version=7.5"},
		{Method: "POST", Path: "/secrets/db/", Headers: map[string]string{"x-http-method": "PATCH"}},
	}
	for _, req := range reqs {
		if n := testing.AllocsPerRun(100, func() { _, _ = r.Classify(req) }); n != 0 {
			t.Errorf("%s %s: %v allocations per Classify", req.Method, req.Path, n)
		}
	}
}

// TestObjectNamesAreCanonical: Key Vault's object names are
// case-insensitive (/secrets/PROD-ROOT is the secret prod-root), so every
// spelling classifies to one lower-case Object and Scope — what rules
// compare — and ObjectRaw keeps the spelling sent.
func TestObjectNamesAreCanonical(t *testing.T) {
	r := route.New()
	for _, c := range []struct{ method, path, raw, object, scope string }{
		{"GET", "/secrets/prod-root", "prod-root", "prod-root", "/secrets/prod-root"},
		{"GET", "/secrets/PROD-ROOT", "PROD-ROOT", "prod-root", "/secrets/prod-root"},
		{"GET", "/SECRETS/Prod-Root", "Prod-Root", "prod-root", "/secrets/prod-root"},
		{"POST", "/keys/Signing-Key//wrapkey", "Signing-Key", "signing-key", "/keys/signing-key"},
		{"GET", "/Certificates/WEB/policy", "WEB", "web", "/certificates/web"},
		{"GET", "/certificates/issuers/DigiCert", "DigiCert", "digicert", ""},
		{"DELETE", "/deletedsecrets/OLD", "OLD", "old", ""},
	} {
		got, den := classify(t, r, c.method, c.path, nil)
		if den != nil {
			t.Errorf("%s %s refused: %s", c.method, c.path, den.Message)
			continue
		}
		if got.Object != c.object || got.Scope != c.scope || got.ObjectRaw != c.raw {
			t.Errorf("%s %s: object %q scope %q raw %q; want %q %q %q", c.method, c.path, got.Object, got.Scope, got.ObjectRaw, c.object, c.scope, c.raw)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = classify(t, r, "GET", "/secrets/prod-root", nil) }); n != 0 {
		t.Errorf("classifying a lower-case name allocates %v times, want 0", n)
	}
}
