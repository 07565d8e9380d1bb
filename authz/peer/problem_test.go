package peer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
)

// TestUnrecognizedSaysWhy: a certificate that names a trusted service but
// is refused — no clientAuth extended key usage, no chain to the caFile —
// is not recognised, and the Matcher says why (for explain and the audit
// record) and logs it once per certificate. Anything else has nothing to
// say.
func TestUnrecognizedSaysWhy(t *testing.T) {
	ca := authztest.NewTestCA(t)
	other := authztest.NewTestCA(t)
	var logs bytes.Buffer
	m := mustMatcher(t, TrustedServices{
		CAFile:   ca.WriteBundle(),
		Services: []TrustedService{svc("Backup", "spiffe://trusted.example/azure-backup")},
	}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	id := []string{"spiffe://trusted.example/azure-backup"}
	const noEKU = "the certificate names trusted service Backup, but its client certificate lacks the clientAuth extended key usage"
	tests := []struct {
		name string
		req  *authz.Request
		want string
		logs bool
	}{
		{"server auth only", certReq(ca.Issue(authztest.CertOptions{URIs: id, Server: true})), noEKU, true},
		{"no EKU extension", certReq(ca.Issue(authztest.CertOptions{URIs: id, NoExtKeyUsage: true})), noEKU, true},
		{"other CA", certReq(other.Issue(authztest.CertOptions{URIs: id})),
			"the certificate names trusted service Backup, but its client certificate does not verify against trustedServices.caFile: x509:", true},
		{"recognised", certReq(ca.Issue(authztest.CertOptions{URIs: id})), "", false},
		{"names no trusted service", certReq(ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://apps.example/web"}, Server: true})), "", false},
		{"no certificate", &authz.Request{Principal: "spiffe://trusted.example/azure-backup"}, "", false},
		{"no request", nil, "", false},
	}
	for _, tt := range tests {
		logs.Reset()
		for range 2 { // the second time from the cache: same answer, no second log line
			name, _ := m.Recognize(tt.req, nil, opKeyGet)
			got := m.Unrecognized(tt.req)
			if (tt.want == "" && got != "") || !strings.HasPrefix(got, tt.want) {
				t.Errorf("%s: Unrecognized = %q, want %q", tt.name, got, tt.want)
			}
			if got != "" && name != "" {
				t.Errorf("%s: recognised as %q yet a problem is reported", tt.name, name)
			}
		}
		lines := strings.Count(logs.String(), "trusted-service certificate refused")
		if tt.logs && (lines != 1 || !strings.Contains(logs.String(), "trustedService=Backup")) {
			t.Errorf("%s: %d log lines, want one naming Backup:\n%s", tt.name, lines, logs.String())
		}
		if !tt.logs && lines != 0 {
			t.Errorf("%s: logged %q", tt.name, logs.String())
		}
	}
}
