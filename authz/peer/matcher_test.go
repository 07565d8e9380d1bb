package peer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/section"
)

func svc(name string, principals ...string) TrustedService {
	return TrustedService{Name: name, Principals: principals}
}

func TestNewReportsEveryProblem(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	type want struct {
		field    string
		sentinel error
		text     string
	}
	tests := []struct {
		name string
		cfg  TrustedServices
		want []want
	}{
		{"unknown service", TrustedServices{Services: []TrustedService{
			svc("Backup", "spiffe://td/a"), svc("AzureBackup", "spiffe://td/b"), svc("backup", "spiffe://td/c")}},
			[]want{
				{"trustedServices.services[1].name", ErrUnknownService, `"AzureBackup"`},
				{"trustedServices.services[2].name", ErrUnknownService, "did you mean Backup?"},
			}},
		{"bad principals", TrustedServices{Services: []TrustedService{
			svc("Backup", "spiffe://td/a", "spiffe://TD/b", "dns:x.example."), svc("Storage")}},
			[]want{
				{"trustedServices.services[0].principals[1]", ErrPrincipal, "lower case"},
				{"trustedServices.services[0].principals[2]", ErrPrincipal, "trailing dot"},
				{"trustedServices.services[1].principals", section.ErrRequired, ""},
			}},
		{"duplicates and overlaps", TrustedServices{Services: []TrustedService{
			svc("Backup", "spiffe://td/backup", "spiffe://td/ns/*", "dns:b.example", "subject:CN=b,O=x"),
			svc("Storage", "spiffe://td/backup", "spiffe://td/ns/storage", "dns:B.Example", "subject:cn=b,o=x", "spiffe://td/*"),
			svc("Backup", "spiffe://td/ns/*")}},
			[]want{
				{"trustedServices.services[1].principals[0]", ErrDuplicatePrincipal, "already bound at trustedServices.services[0].principals[0] (Backup)"},
				{"trustedServices.services[1].principals[1]", ErrDuplicatePrincipal, "covered by trustedServices.services[0].principals[1] (Backup)"},
				{"trustedServices.services[1].principals[2]", ErrDuplicatePrincipal, "already bound"},
				{"trustedServices.services[1].principals[3]", ErrDuplicatePrincipal, "already bound"},
				{"trustedServices.services[1].principals[4]", ErrDuplicatePrincipal, "covers trustedServices.services[0].principals[0]"},
				{"trustedServices.services[2].principals[0]", ErrDuplicatePrincipal, "already bound"},
			}},
		{"a refused principal binds nothing", TrustedServices{Services: []TrustedService{
			svc("Backup", "spiffe://td/a/b/*"),
			svc("Storage", "spiffe://td/a/*", "spiffe://td/a/c")}},
			[]want{
				// td/a/c overlaps only the refused td/a/*: no second error.
				{"trustedServices.services[1].principals[0]", ErrDuplicatePrincipal, "covers trustedServices.services[0].principals[0]"},
			}},
		{"scope widening", TrustedServices{Services: []TrustedService{
			{Name: "AppService", Principals: []string{"dns:a.example"}, Scope: map[string][]string{
				"certificates": {"get", "list"}, "secrets": {"all"}, "keys": {"get"}, "blobs": {"get"}}},
			{Name: "Storage", Principals: []string{"dns:b.example"}, Scope: map[string][]string{"keys": {"get", "sing"}}},
			{Name: "Backup", Principals: []string{"dns:c.example"}, Scope: map[string][]string{"keys": {}}},
		}},
			[]want{
				{"trustedServices.services[0].scope.blobs", ErrScope, "not a permission family"},
				{"trustedServices.services[0].scope.certificates[1]", ErrWidens, "certificates list is outside the catalog's scope (get)"},
				{"trustedServices.services[0].scope.keys[0]", ErrWidens, "outside the catalog's scope (none of this family)"},
				{"trustedServices.services[0].scope.secrets[0]", ErrWidens, `"all" would grant every secrets permission`},
				{"trustedServices.services[1].scope.keys[1]", ErrScope, `"sing" is not a keys permission`},
				{"trustedServices.services[2].scope", ErrScope, "grants nothing"},
			}},
		{"application ids and CA", TrustedServices{CAFile: garbage, Services: []TrustedService{
			{Name: "Backup", Principals: []string{"dns:a.example"}, ApplicationIDs: []string{"262044b1-e2ce-469f-a196-69ab7ada62d3", "backup"}}}},
			[]want{
				{"trustedServices.caFile", ErrCAFile, "no PEM certificate"},
				{"trustedServices.services[0].applicationIds[1]", ErrApplicationID, `"backup"`},
			}},
		{"missing CA", TrustedServices{CAFile: filepath.Join(t.TempDir(), "absent.pem")},
			[]want{{"trustedServices.caFile", ErrCAFile, "no such file"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New accepted it: %+v", m)
			}
			var list []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				list = j.Unwrap()
			} else {
				list = []error{err}
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				var fe *section.Error
				if !errors.As(list[i], &fe) {
					t.Fatalf("error %d is not a *section.Error: %v", i, list[i])
				}
				if fe.Field != w.field || !errors.Is(fe, w.sentinel) || !strings.Contains(fe.Error(), w.text) {
					t.Errorf("error %d = %v\n want field %s, %v, containing %q", i, fe, w.field, w.sentinel, w.text)
				}
			}
		})
	}
}

func TestSentinelsWrapConfigKinds(t *testing.T) {
	for sentinel, kind := range map[error]error{
		ErrUnknownService: section.ErrUnresolved, ErrPrincipal: section.ErrInvalidValue,
		ErrDuplicatePrincipal: section.ErrDuplicate, ErrWidens: section.ErrConflict,
		ErrScope: section.ErrInvalidValue, ErrApplicationID: section.ErrInvalidValue, ErrCAFile: section.ErrInvalidValue,
	} {
		if !errors.Is(sentinel, kind) {
			t.Errorf("%v does not wrap %v", sentinel, kind)
		}
	}
}

// Operations used below, as the classify stage produces them.
var (
	opSecretGet   = &authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get"}
	opSecretList  = &authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "list"}
	opSecretSet   = &authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "set"}
	opCertGet     = &authz.Operation{Plane: authz.PlaneData, Resource: "certificates", Permission: "get"}
	opCertList    = &authz.Operation{Plane: authz.PlaneData, Resource: "certificates", Permission: "list"}
	opKeyGet      = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "get"}
	opKeyWrap     = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "wrapKey"}
	opKeyUnwrap   = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "unwrapKey"}
	opKeyDecrypt  = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "decrypt"}
	opKeyBackup   = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "backup"}
	opKeyRestore  = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "restore"}
	opKeyDelete   = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "delete"}
	opKeyPurge    = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "purge"}
	opSecretBkup  = &authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "backup"}
	opStorageGet  = &authz.Operation{Plane: authz.PlaneData, Resource: "storage", Permission: "get"}
	opKeyAll      = &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "all"}
	opHealth      = &authz.Operation{Plane: authz.PlaneData, Anonymous: true}
	opControlKeys = &authz.Operation{Plane: authz.PlaneControl, Resource: "keys", Permission: "get"}
)

func TestRecognizeScope(t *testing.T) {
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{
		svc("AppService", "spiffe://trusted.example/app-service"),
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("DiskEncryption", "spiffe://trusted.example/disk-encryption"),
		svc("Storage", "spiffe://trusted.example/storage/*"),
		{Name: "DiskEncryption", Principals: []string{"spiffe://trusted.example/disk-encryption-keys-only"},
			Scope: map[string][]string{"Keys": {"WRAPKEY", "unwrapKey"}}},
	}})
	tests := []struct {
		principal string
		op        *authz.Operation
		name      string
		inScope   bool
	}{
		{"spiffe://trusted.example/app-service", opCertGet, "AppService", true},
		{"spiffe://trusted.example/app-service", opSecretGet, "AppService", true},
		{"spiffe://trusted.example/app-service", opSecretList, "AppService", false},
		{"spiffe://trusted.example/app-service", opCertList, "AppService", false},
		{"spiffe://trusted.example/app-service", opKeyGet, "AppService", false},
		{"spiffe://trusted.example/azure-backup", opKeyBackup, "Backup", true},
		{"spiffe://trusted.example/azure-backup", opKeyRestore, "Backup", true},
		{"spiffe://trusted.example/azure-backup", opSecretBkup, "Backup", true},
		{"spiffe://trusted.example/azure-backup", opSecretList, "Backup", true},
		{"spiffe://trusted.example/azure-backup", opKeyDelete, "Backup", false},
		{"spiffe://trusted.example/azure-backup", opKeyPurge, "Backup", false},
		{"spiffe://trusted.example/azure-backup", opKeyWrap, "Backup", false},
		{"spiffe://trusted.example/disk-encryption", opSecretGet, "DiskEncryption", true},
		{"spiffe://trusted.example/disk-encryption", opSecretSet, "DiskEncryption", true},
		{"spiffe://trusted.example/disk-encryption", opKeyWrap, "DiskEncryption", true},
		{"spiffe://trusted.example/disk-encryption", opKeyUnwrap, "DiskEncryption", true},
		{"spiffe://trusted.example/disk-encryption", opKeyDecrypt, "DiskEncryption", false},
		{"spiffe://trusted.example/disk-encryption", opSecretList, "DiskEncryption", false},
		{"spiffe://trusted.example/disk-encryption-keys-only", opKeyWrap, "DiskEncryption", true},
		{"spiffe://trusted.example/disk-encryption-keys-only", opKeyGet, "DiskEncryption", false},
		{"spiffe://trusted.example/disk-encryption-keys-only", opSecretGet, "DiskEncryption", false},
		{"spiffe://trusted.example/storage/westeurope", opKeyGet, "Storage", true},
		{"spiffe://trusted.example/storage/westeurope", opKeyWrap, "Storage", true},
		{"spiffe://trusted.example/storage/westeurope", opKeyUnwrap, "Storage", true},
		{"spiffe://trusted.example/storage/westeurope", opKeyDecrypt, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", opSecretGet, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", opStorageGet, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", opKeyAll, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", opHealth, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", opControlKeys, "Storage", false},
		{"spiffe://trusted.example/storage/westeurope", nil, "Storage", false},
		{"spiffe://trusted.example/storage", opKeyGet, "", false},
		{"spiffe://trusted.example/unbound", opKeyGet, "", false},
	}
	for _, tt := range tests {
		name, in := m.Recognize(&authz.Request{Principal: tt.principal}, &authz.Caller{}, tt.op)
		if name != tt.name || in != tt.inScope {
			t.Errorf("%s %+v: got (%q, %v), want (%q, %v)", tt.principal, tt.op, name, in, tt.name, tt.inScope)
		}
	}
	if name, in := m.Recognize(nil, nil, opKeyGet); name != "" || in {
		t.Error("a nil request was recognised")
	}
}

func TestRecognizeApplicationIDs(t *testing.T) {
	const backupApp = "262044b1-e2ce-469f-a196-69ab7ada62d3"
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{
		{Name: "Backup", Principals: []string{"dns:backup.trusted.example"}, ApplicationIDs: []string{strings.ToUpper(backupApp)}},
		svc("Storage", "dns:storage.trusted.example"),
	}})
	req := &authz.Request{Principal: "backup.trusted.example"}
	tests := []struct {
		caller *authz.Caller
		want   string
	}{
		{&authz.Caller{ApplicationID: backupApp}, "Backup"},
		{&authz.Caller{ApplicationID: strings.ToUpper(backupApp)}, "Backup"},
		{&authz.Caller{ApplicationID: "00000000-0000-0000-0000-000000000000"}, ""},
		{&authz.Caller{ApplicationID: backupApp + " "}, ""},
		{&authz.Caller{}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if name, _ := m.Recognize(req, tt.caller, opKeyGet); name != tt.want {
			t.Errorf("caller %+v: got %q, want %q", tt.caller, name, tt.want)
		}
	}
	// A binding without applicationIds does not look at the caller.
	if name, _ := m.Recognize(&authz.Request{Principal: "storage.trusted.example"}, nil, opKeyGet); name != "Storage" {
		t.Errorf("Storage without applicationIds: got %q", name)
	}
}

// certReq is what the adapter hands the pipeline for a client certificate:
// Envoy's principal and the decoded PEM.
func certReq(c *authztest.TestCert) *authz.Request {
	return &authz.Request{Principal: c.EnvoyPrincipal(), CertificatePEM: c.PEM(), TLS: true}
}

func TestRecognizeCertificateSANs(t *testing.T) {
	ca := authztest.NewTestCA(t)
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("Storage", "spiffe://trusted.example/storage/*"),
		svc("AppService", "dns:appservice.trusted.example"),
		svc("DiskEncryption", "subject:CN=disk-encryption,O=Trusted Services"),
	}})
	uri := func(u ...string) authztest.CertOptions { return authztest.CertOptions{URIs: u} }
	tests := []struct {
		name string
		opts authztest.CertOptions
		want string
	}{
		{"exact SPIFFE", uri("spiffe://trusted.example/azure-backup"), "Backup"},
		{"prefix SPIFFE", uri("spiffe://trusted.example/storage/eu/1"), "Storage"},
		{"look-alike suffix", uri("spiffe://trusted.example/azure-backup-evil"), ""},
		{"case in path", uri("spiffe://trusted.example/Azure-Backup"), ""},
		{"case in trust domain", uri("spiffe://Trusted.example/azure-backup"), ""},
		{"percent-encoding", uri("spiffe://trusted.example/azure%2Dbackup"), ""},
		{"encoded slash below prefix", uri("spiffe://trusted.example/storage/a%2Fb"), ""},
		{"extra slash", uri("spiffe://trusted.example//azure-backup"), ""},
		{"trailing slash", uri("spiffe://trusted.example/azure-backup/"), ""},
		{"dot segment below prefix", uri("spiffe://trusted.example/storage/../azure-backup"), ""},
		{"userinfo", uri("spiffe://x@trusted.example/azure-backup"), ""},
		{"query", uri("spiffe://trusted.example/azure-backup?a=b"), ""},
		{"fragment", uri("spiffe://trusted.example/azure-backup#a"), ""},
		{"other trust domain", uri("spiffe://evil.example/azure-backup"), ""},
		{"two URI SANs is not an SVID", uri("spiffe://trusted.example/azure-backup", "spiffe://trusted.example/x"), ""},
		{"two URI SANs refuse the whole certificate", authztest.CertOptions{URIs: []string{"spiffe://mesh.example/a", "spiffe://mesh.example/b"},
			DNSNames: []string{"appservice.trusted.example"}}, ""},
		{"DNS SAN behind a URI SAN", authztest.CertOptions{URIs: []string{"spiffe://mesh.example/ns/app/sa/web"},
			DNSNames: []string{"web.example", "AppService.Trusted.Example"}}, "AppService"},
		{"DNS trailing dot", authztest.CertOptions{DNSNames: []string{"appservice.trusted.example."}}, ""},
		{"DNS look-alike", authztest.CertOptions{DNSNames: []string{"appservice.trusted.example.evil"}}, ""},
		{"DNS wildcard", authztest.CertOptions{DNSNames: []string{"*.trusted.example"}}, ""},
		{"DNS SAN spelled as a SPIFFE ID", authztest.CertOptions{DNSNames: []string{"spiffe://trusted.example/azure-backup"}}, ""},
		{"subject", authztest.CertOptions{Subject: pkix.Name{CommonName: "disk-encryption", Organization: []string{"Trusted Services"}}}, "DiskEncryption"},
		{"subject with SANs", authztest.CertOptions{Subject: pkix.Name{CommonName: "disk-encryption", Organization: []string{"Trusted Services"}},
			DNSNames: []string{"vm.example"}}, "DiskEncryption"},
		{"subject case", authztest.CertOptions{Subject: pkix.Name{CommonName: "Disk-Encryption", Organization: []string{"Trusted Services"}}}, ""},
		{"subject extra RDN", authztest.CertOptions{Subject: pkix.Name{CommonName: "disk-encryption", Organization: []string{"Trusted Services"}, Country: []string{"NL"}}}, ""},
		{"subject as a DNS SAN", authztest.CertOptions{DNSNames: []string{"CN=disk-encryption,O=Trusted Services"}}, ""},
		{"ambiguous: SPIFFE and DNS of two services", authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"},
			DNSNames: []string{"appservice.trusted.example"}}, ""},
		{"no names", authztest.CertOptions{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ca.Issue(tt.opts)
			if name, _ := m.Recognize(certReq(c), nil, opKeyGet); name != tt.want {
				t.Errorf("with certificate: got %q, want %q", name, tt.want)
			}
		})
	}
}

// TestRecognizePrincipalVersusCertificate: the certificate, when present,
// is the truth; the principal alone is used only without it.
func TestRecognizePrincipalVersusCertificate(t *testing.T) {
	ca := authztest.NewTestCA(t)
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("AppService", "dns:appservice.trusted.example"),
	}})
	backup := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}})
	web := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://mesh.example/web"}, DNSNames: []string{"appservice.trusted.example"}})
	tests := []struct {
		name string
		req  *authz.Request
		want string
	}{
		{"principal only", &authz.Request{Principal: "spiffe://trusted.example/azure-backup"}, "Backup"},
		{"certificate and principal", certReq(backup), "Backup"},
		{"certificate only", &authz.Request{CertificatePEM: backup.PEM()}, "Backup"},
		{"principal claims more than the certificate", &authz.Request{Principal: "spiffe://trusted.example/azure-backup", CertificatePEM: web.PEM()}, "AppService"},
		{"DNS binding needs the certificate when a URI SAN comes first", &authz.Request{Principal: web.EnvoyPrincipal()}, ""},
		{"DNS binding with the certificate", certReq(web), "AppService"},
		{"garbage certificate does not fall back to the principal", &authz.Request{Principal: "spiffe://trusted.example/azure-backup", CertificatePEM: "garbage"}, ""},
		{"Envoy-encoded PEM is not PEM", &authz.Request{CertificatePEM: backup.EnvoyCertificate()}, ""},
		{"two certificates", &authz.Request{CertificatePEM: backup.PEM() + web.PEM()}, ""},
		{"text before the certificate", &authz.Request{CertificatePEM: "junk\n" + backup.PEM()}, ""},
		{"leading whitespace is fine", &authz.Request{CertificatePEM: "\n  " + backup.PEM()}, "Backup"},
		{"private key block", &authz.Request{CertificatePEM: backup.KeyPEM()}, ""},
		{"truncated", &authz.Request{CertificatePEM: backup.PEM()[:200]}, ""},
		{"oversized", &authz.Request{CertificatePEM: backup.PEM() + strings.Repeat(" ", maxCertPEM)}, ""},
		{"a certificate Go refuses to parse", &authz.Request{Principal: "spiffe://trusted.example/azure-backup",
			CertificatePEM: authztest.DERToPEM(ca.IssueDER(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup%zz"}}))}, ""},
	}
	for _, tt := range tests {
		if name, _ := m.Recognize(tt.req, nil, opKeyGet); name != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, name, tt.want)
		}
	}
}

func TestRecognizeCAFile(t *testing.T) {
	ca := authztest.NewTestCA(t)
	other := authztest.NewTestCA(t)
	expiredCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	m := mustMatcher(t, TrustedServices{
		CAFile:   ca.WriteBundle(expiredCA),
		Services: []TrustedService{svc("Backup", "spiffe://trusted.example/azure-backup")},
	})
	id := []string{"spiffe://trusted.example/azure-backup"}
	tests := []struct {
		name string
		req  *authz.Request
		want string
	}{
		{"chains", certReq(ca.Issue(authztest.CertOptions{URIs: id})), "Backup"},
		{"client and server auth", certReq(ca.Issue(authztest.CertOptions{URIs: id,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})), "Backup"},
		{"other CA", certReq(other.Issue(authztest.CertOptions{URIs: id})), ""},
		{"expired CA", certReq(expiredCA.Issue(authztest.CertOptions{URIs: id})), ""},
		{"expired leaf", certReq(ca.Issue(authztest.CertOptions{URIs: id, Expired: true})), ""},
		{"not yet valid", certReq(ca.Issue(authztest.CertOptions{URIs: id, NotBefore: time.Now().Add(time.Hour)})), ""},
		{"server auth only", certReq(ca.Issue(authztest.CertOptions{URIs: id, Server: true})), ""},
		{"no EKU extension", certReq(ca.Issue(authztest.CertOptions{URIs: id, NoExtKeyUsage: true})), ""},
		{"the CA itself", &authz.Request{Principal: "spiffe://trusted.example/azure-backup", CertificatePEM: ca.PEM()}, ""},
		{"principal without the certificate", &authz.Request{Principal: "spiffe://trusted.example/azure-backup"}, ""},
	}
	for _, tt := range tests {
		if name, _ := m.Recognize(tt.req, nil, opKeyGet); name != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, name, tt.want)
		}
		// Asked again, the cached verdict is the same.
		if name, _ := m.Recognize(tt.req, nil, opKeyGet); name != tt.want {
			t.Errorf("%s (cached): got %q, want %q", tt.name, name, tt.want)
		}
	}
}

// TestRecognizeClock: verdicts are cached, validity is not. A certificate
// stops being recognised when it expires, and one not yet valid is
// verified again once it is.
func TestRecognizeClock(t *testing.T) {
	ca := authztest.NewTestCA(t)
	now := time.Now()
	clock := now
	id := []string{"spiffe://trusted.example/azure-backup"}
	bindings := []TrustedService{svc("Backup", id[0])}
	early := ca.Issue(authztest.CertOptions{URIs: id, NotBefore: now.Add(10 * time.Minute), NotAfter: now.Add(time.Hour)})
	for _, caFile := range []string{"", ca.WriteBundle()} {
		m := mustMatcher(t, TrustedServices{CAFile: caFile, Services: bindings}, WithClock(func() time.Time { return clock }))
		steps := []struct {
			at           time.Duration
			withCA, noCA string
		}{
			{0, "", ""},
			{9*time.Minute + 30*time.Second, "", ""},
			// Valid now; with a caFile the failed verification is believed
			// until 10m30s, without one the leaf's window is all there is.
			{10*time.Minute + 10*time.Second, "", "Backup"},
			{10*time.Minute + 40*time.Second, "Backup", "Backup"},
			{59 * time.Minute, "Backup", "Backup"},
			{61 * time.Minute, "", ""},
		}
		for _, s := range steps {
			clock = now.Add(s.at)
			want := s.noCA
			if caFile != "" {
				want = s.withCA
			}
			if name, _ := m.Recognize(certReq(early), nil, opKeyGet); name != want {
				t.Errorf("caFile=%v at +%v: got %q, want %q", caFile != "", s.at, name, want)
			}
		}
	}
}

func TestCertCacheBounded(t *testing.T) {
	ca := authztest.NewTestCA(t)
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{svc("Backup", "spiffe://trusted.example/azure-backup")}},
		WithCertCache(4))
	hot := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}})
	for i := 0; i < 20; i++ {
		if name, _ := m.Recognize(certReq(hot), nil, opKeyGet); name != "Backup" {
			t.Fatalf("round %d: hot certificate not recognised", i)
		}
		cold := ca.Issue(authztest.CertOptions{DNSNames: []string{"cold.example"}})
		if name, _ := m.Recognize(certReq(cold), nil, opKeyGet); name != "" {
			t.Fatalf("round %d: cold certificate recognised as %q", i, name)
		}
		if n := m.cache.len(); n > 4 {
			t.Fatalf("cache holds %d entries, bound is 4", n)
		}
	}
	// The certificate used every round survived the eviction of the others.
	if v := m.cache.get(maphashOf(m, hot.PEM()), hot.PEM()); v == nil {
		t.Error("the hot certificate was evicted")
	}
}

func maphashOf(m *Matcher, s string) uint64 { return maphash.String(m.seed, s) }

// TestCertCacheCollision: the hash only finds the slot; a different PEM
// under the same hash is a miss, and its verdict replaces the old one.
func TestCertCacheCollision(t *testing.T) {
	c := newCertCache(2)
	a := &certVerdict{h: 42, pem: "A", binding: 0}
	c.put(a)
	if c.get(42, "A") != a {
		t.Fatal("miss on the stored PEM")
	}
	if c.get(42, "B") != nil {
		t.Fatal("a colliding PEM got the other certificate's verdict")
	}
	b := &certVerdict{h: 42, pem: "B", binding: -1}
	c.put(b)
	if c.get(42, "A") != nil || c.get(42, "B") != b || c.len() != 1 {
		t.Fatal("the colliding verdict did not replace the old one in place")
	}
}
