package route_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/route"
)

// FuzzClassify asserts, for any method, path and X-HTTP-METHOD: Classify
// never panics; a refusal is a well-formed denial with no operation; a
// classification is a row of the table with a valid object and version,
// taken from a canonical path.
func FuzzClassify(f *testing.F) {
	v := route.ExampleVersion
	// Requests as the Azure SDKs send them (keyvault-spec §8), then edges.
	for _, s := range []struct{ method, path string }{
		{"GET", "/secrets/db-password?api-version=2026-04-01"},
		{"GET", "/secrets/db-password/?api-version=2026-04-01"},
		{"PUT", "/secrets/db-password?api-version=2026-04-01"},
		{"PATCH", "/secrets/db-password/" + v + "?api-version=2026-04-01"},
		{"GET", "/secrets?api-version=2026-04-01&maxresults=25"},
		{"GET", "/secrets/db-password/versions?api-version=2026-04-01"},
		{"DELETE", "/secrets/db-password?api-version=2026-04-01"},
		{"GET", "/deletedsecrets/db-password?api-version=2026-04-01"},
		{"DELETE", "/deletedsecrets/db-password?api-version=2026-04-01"},
		{"POST", "/deletedsecrets/db-password/recover?api-version=2026-04-01"},
		{"POST", "/secrets/db-password/backup?api-version=2026-04-01"},
		{"POST", "/secrets/restore?api-version=2026-04-01"},
		{"POST", "/keys/cmk/create?api-version=2025-07-01"},
		{"GET", "/keys/cmk/?api-version=2025-07-01"},
		{"POST", "/keys/cmk/wrapkey?api-version=2025-07-01"},
		{"POST", "/keys/cmk/unwrapkey?api-version=2025-07-01"},
		{"POST", "/keys/cmk/sign?api-version=2025-07-01"},
		{"POST", "/keys/cmk/verify?api-version=2025-07-01"},
		{"POST", "/keys/cmk/encrypt?api-version=2025-07-01"},
		{"POST", "/keys/cmk/decrypt?api-version=2025-07-01"},
		{"POST", "/keys/cmk/" + v + "/wrapkey?api-version=7.5"},
		{"POST", "/keys/cmk//sign?api-version=7.5"},
		{"POST", "/keys/cmk/release?api-version=2025-07-01"},
		{"GET", "/keys/cmk/rotationpolicy?api-version=2025-07-01"},
		{"PUT", "/keys/cmk/rotationpolicy?api-version=2025-07-01"},
		{"POST", "/keys/cmk/rotate?api-version=2025-07-01"},
		{"GET", "/keys/cmk/" + v + "/attestation?api-version=7.6"},
		{"POST", "/certificates/web/create?api-version=7.5"},
		{"GET", "/certificates/web/pending?api-version=7.5"},
		{"POST", "/certificates/web/pending/merge?api-version=7.5"},
		{"GET", "/certificates/contacts?api-version=7.5"},
		{"GET", "/certificates/issuers/digicert?api-version=7.5"},
		{"GET", "/storage/acct1/sas/sas1?api-version=7.5"},
		{"POST", "/deletedstorage/acct1/sas/sas1/recover?api-version=7.5"},
		{"GET", "/healthstatus"},
		{"GET", "/secrets/a%2Fb"},
		{"GET", "/secrets/../keys/k"},
		{"GET", "/secrets/./db"},
		{"GET", "/secrets\\db"},
		{"GET", "/secrets/db\x00"},
		{"GET", "/certificates/Contacts"},
		{"GET", "//secrets"},
		{"GET", "/secrets?api-version=1&api-version=2"},
	} {
		f.Add(s.method, s.path, "", false)
	}
	f.Add("POST", "/secrets/db/", "PATCH", true)
	f.Add("POST", "/secrets/restore", "DELETE", true)
	f.Add("GET", "/keys/k", "DELETE", true)

	r := route.New()
	rows := map[string]bool{}
	for _, row := range route.Table() {
		rows[row.Method+"|"+row.Name+"|"+row.Resource+"|"+row.Permission+"|"+row.DataAction] = true
	}
	f.Fuzz(func(t *testing.T, method, path, override string, hasOverride bool) {
		req := &authz.Request{Method: method, Path: path}
		if hasOverride {
			req.Headers = map[string]string{"x-http-method": override}
		}
		op, den := r.Classify(req)
		if den != nil {
			if (den.Status != 400 && den.Status != 405) || den.Code == "" || den.Message == "" || den.Challenge {
				t.Fatalf("malformed denial %+v", den)
			}
			if op != (authz.Operation{}) {
				t.Fatalf("refusal with an operation %+v", op)
			}
			return
		}

		p, _, _ := strings.Cut(path, "?")
		if strings.ContainsAny(p, `%\`) || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
			strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
			t.Fatalf("non-canonical path classified: %q → %+v", path, op)
		}
		for i := 0; i < len(path); i++ {
			if path[i] < 0x20 || path[i] == 0x7f {
				t.Fatalf("control byte classified: %q", path)
			}
		}
		if op.Name == "" || op.Plane != authz.PlaneData {
			t.Fatalf("operation without a name or off the data plane: %+v", op)
		}
		wantMethod := method
		if hasOverride {
			if method != "POST" {
				t.Fatalf("override on %s accepted", method)
			}
			wantMethod = override
		}
		if op.Method != wantMethod {
			t.Fatalf("method %q, want %q", op.Method, wantMethod)
		}
		if !rows[op.Method+"|"+op.Name+"|"+op.Resource+"|"+op.Permission+"|"+op.DataAction] {
			t.Fatalf("operation is no row of the table: %+v", op)
		}
		if op.Anonymous {
			if op.Name != "HealthStatus" || op.Object != "" {
				t.Fatalf("unexpected anonymous operation %+v", op)
			}
			return
		}
		if !strings.HasPrefix(op.DataAction, authz.DataActionPrefix) {
			t.Fatalf("data action %q", op.DataAction)
		}
		if c, ok := authz.CanonicalPermission(op.Resource, op.Permission); !ok || c != op.Permission {
			t.Fatalf("unknown permission %s/%s", op.Resource, op.Permission)
		}
		if op.Object != "" && !validObject(op.Object, op.Resource == authz.FamilyStorage) {
			t.Fatalf("invalid object %q", op.Object)
		}
		// The object is the canonical (lower-case) name of what was sent,
		// which ObjectRaw keeps as spelt.
		if op.Object != "" && (!strings.Contains(p, "/"+op.ObjectRaw) || op.Object != strings.ToLower(op.ObjectRaw)) {
			t.Fatalf("object %q (sent as %q) is not the lower-case name sent in %q", op.Object, op.ObjectRaw, p)
		}
		if op.Version != "" && (len(op.Version) != 32 || strings.Trim(op.Version, "0123456789abcdefABCDEF") != "") {
			t.Fatalf("invalid version %q", op.Version)
		}
		if op.Scope != "" && (op.Object == "" || op.Scope != "/"+op.Resource+"/"+op.Object) {
			t.Fatalf("scope %q for %s object %q", op.Scope, op.Resource, op.Object)
		}
		if q, ok := strings.CutPrefix(path[len(p):], "?"); ok && op.APIVersion != "" && !strings.Contains(q, op.APIVersion) {
			t.Fatalf("api-version %q not from query %q", op.APIVersion, q)
		}
	})
}

func validObject(s string, storage bool) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for _, c := range []byte(s) {
		ok := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || (!storage && c == '-')
		if !ok {
			return false
		}
	}
	return true
}
