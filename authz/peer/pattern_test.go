package peer

import (
	"errors"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/section"
)

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in      string
		kind    Kind
		canon   string // "" means: same as in
		wantErr string // substring of the error
	}{
		{in: "spiffe://trusted.example/azure-backup", kind: KindSPIFFE},
		{in: "spiffe://trusted.example/ns/backup/sa/Agent_1.x", kind: KindSPIFFE},
		{in: "spiffe://trusted.example/ns/backup/*", kind: KindSPIFFEPrefix},
		{in: "spiffe://trusted.example/*", kind: KindSPIFFEPrefix},
		{in: "spiffe://td_1.example-2/a", kind: KindSPIFFE},
		{in: "dns:backup.trusted.example", kind: KindDNS},
		{in: "dns:Backup.Trusted.EXAMPLE", kind: KindDNS, canon: "dns:backup.trusted.example"},
		{in: "dns:localhost", kind: KindDNS},
		{in: "dns:xn--caf-dma.example", kind: KindDNS},
		{in: "subject:CN=backup,O=Trusted", kind: KindSubject},
		{in: "subject:cn=backup,o=Trusted", kind: KindSubject, canon: "subject:CN=backup,O=Trusted"},
		{in: "subject:2.5.4.3=backup,2.5.4.10=Trusted", kind: KindSubject, canon: "subject:CN=backup,O=Trusted"},
		{in: `subject:CN=a\,b\2Bc,O=x`, kind: KindSubject, canon: `subject:CN=a\,b\+c,O=x`},
		{in: "subject:CN=café,O=x", kind: KindSubject, canon: `subject:CN=caf\C3\A9,O=x`},
		{in: `subject:CN=caf\c3\a9`, kind: KindSubject, canon: `subject:CN=caf\C3\A9`},
		{in: "subject:CN=#0c03616263", kind: KindSubject, canon: "subject:CN=abc"},
		{in: "subject:OU=a+CN=b,O=c", kind: KindSubject},
		{in: "subject:emailAddress=a@b.example,serialNumber=7,street=x,UID=u,DC=example", kind: KindSubject},
		{in: `subject:CN=\ padded\ `, kind: KindSubject},
		{in: "subject:1.2.3.4=x", kind: KindSubject, canon: "subject:1.2.3.4=#0C0178"},

		{in: "", wantErr: "want spiffe://"},
		{in: "backup", wantErr: "want spiffe://"},
		{in: "uri:spiffe://td/a", wantErr: "want spiffe://"},
		{in: "SPIFFE://td/a", wantErr: "lower-case spiffe://"},
		{in: "Spiffe://td/a", wantErr: "lower-case spiffe://"},
		{in: "spiffe://", wantErr: "trust domain is empty"},
		{in: "spiffe:///a", wantErr: "trust domain is empty"},
		// "spiffe://*" once cut to "spiffe:/" and panicked (issue 13).
		{in: "spiffe://*", wantErr: "trust domain is empty"},
		{in: "spiffe:///*", wantErr: "trust domain is empty"},
		{in: "spiffe://td", wantErr: "has a path"},
		{in: "spiffe://td/", wantErr: "empty path segment"},
		{in: "spiffe://td//a", wantErr: "empty path segment"},
		{in: "spiffe://td/a/", wantErr: "empty path segment"},
		{in: "spiffe://td/a//*", wantErr: "empty path segment"},
		{in: "spiffe://td/a/../b", wantErr: "'..'"},
		{in: "spiffe://td/./b", wantErr: "'..'"},
		{in: "spiffe://Trusted.example/a", wantErr: "lower case"},
		{in: "spiffe://user@td/a", wantErr: "userinfo"},
		{in: "spiffe://td:443/a", wantErr: "port"},
		{in: "spiffe://td/a?x=1", wantErr: "query"},
		{in: "spiffe://td/a#f", wantErr: "fragment"},
		{in: "spiffe://td/a%2Fb", wantErr: "percent"},
		{in: "spiffe://td/a*", wantErr: "whole last segment"},
		{in: "spiffe://td/*/a", wantErr: "whole last segment"},
		{in: "spiffe://td/a/*/*", wantErr: "whole last segment"},
		{in: "spiffe://td/a b", wantErr: "path segments allow"},
		{in: "spiffe://td/é", wantErr: "path segments allow"},
		{in: "spiffe://t!d/a", wantErr: "trust domain allows"},
		{in: "spiffe://" + strings.Repeat("a", 256) + "/x", wantErr: "longer than 255"},
		{in: "spiffe://td/" + strings.Repeat("a", 2040), wantErr: "2048"},
		{in: "dns:", wantErr: "empty DNS name"},
		{in: "dns:backup.example.", wantErr: "trailing dot"},
		{in: "dns:*.example", wantErr: "wildcards"},
		{in: "dns:10.0.0.1", wantErr: "IP address"},
		{in: "dns:::1", wantErr: "IP address"},
		{in: "dns:café.example", wantErr: "A-label"},
		{in: "dns:a..b", wantErr: "not a host name"},
		{in: "dns:-a.b", wantErr: "not a host name"},
		{in: "dns:a-.b", wantErr: "not a host name"},
		{in: "dns:a_b.example", wantErr: "not a host name"},
		{in: "dns:a.b-", wantErr: "not a host name"},
		{in: "dns:a.-", wantErr: "not a host name"},
		{in: "dns:" + strings.Repeat("a", 64) + ".b", wantErr: "not a host name"},
		{in: "DNS:a.b", wantErr: "want spiffe://"},
		{in: "subject:", wantErr: "empty distinguished name"},
		{in: "subject:backup", wantErr: "without '='"},
		{in: "subject:XX=a", wantErr: "unknown attribute type"},
		{in: "subject:1=a", wantErr: "not an OID"},
		{in: "subject:CN=a;O=b", wantErr: `unescaped ";"`},
		{in: "subject:CN=a, O=b", wantErr: "unknown attribute type"},
		{in: "subject:CN= a", wantErr: "leading space"},
		{in: "subject:CN=a ", wantErr: "trailing space"},
		{in: "subject:CN=a,", wantErr: "trailing separator"},
		{in: `subject:CN=a\`, wantErr: "dangling escape"},
		{in: `subject:CN=a\x`, wantErr: "bad escape"},
		{in: `subject:CN=a\4`, wantErr: "bad hex escape"},
		{in: `subject:CN=\ff`, wantErr: "not UTF-8"},
		{in: "subject:CN=#zz", wantErr: "bad #hex"},
		{in: "subject:CN=#0201ff", wantErr: "not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePattern(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed as %v %q, want an error with %q", p.Kind(), p, tt.wantErr)
				}
				if !errors.Is(err, ErrPrincipal) || !errors.Is(err, section.ErrInvalidValue) {
					t.Errorf("error %v does not wrap ErrPrincipal and section.ErrInvalidValue", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q lacks %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if p.Kind() != tt.kind || p.String() != canon {
				t.Errorf("got %v %q, want %v %q", p.Kind(), p, tt.kind, canon)
			}
			again, err := ParsePattern(p.String())
			if err != nil || again != p {
				t.Errorf("canonical form %q does not parse back to the same pattern: %v", p, err)
			}
		})
	}
}

// TestPatternMatch is the look-alike table: each principal is what Envoy
// would report as source.principal.
func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern   string
		principal string
		want      bool
	}{
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup", true},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup-evil", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup/x", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/Azure-Backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://TRUSTED.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "SPIFFE://trusted.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure%2Dbackup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example//azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup/", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://user@trusted.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example:443/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup?x", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup#x", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://evil.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example.evil/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/./azure-backup", false},
		{"spiffe://trusted.example/azure-backup", " spiffe://trusted.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup\x00", false},
		{"spiffe://trusted.example/azure-backup", "", false},

		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/agent", true},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/a/b/c", true},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup-evil", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup-evil/agent", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup//agent", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/../admin", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/./agent", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/a%2F..", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/a?b", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/a#b", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/Azure-Backup/agent", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://other.example/azure-backup/agent", false},
		{"spiffe://trusted.example/azure-backup/*", "spiffe://trusted.example/azure-backup/*", false},
		{"spiffe://trusted.example/*", "spiffe://trusted.example/anything", true},
		{"spiffe://trusted.example/*", "spiffe://trusted.example", false},
		{"spiffe://trusted.example/*", "spiffe://trusted.examplex/a", false},
		{"spiffe://trusted.example/*", "spiffe://user@trusted.example/a", false},

		{"dns:backup.trusted.example", "backup.trusted.example", true},
		{"dns:backup.trusted.example", "BACKUP.Trusted.Example", true},
		{"dns:backup.trusted.example", "backup.trusted.example.", false},
		{"dns:backup.trusted.example", "backup.trusted.example.evil", false},
		{"dns:backup.trusted.example", "evil-backup.trusted.example", false},
		{"dns:backup.trusted.example", "backup.trusted.examplex", false},
		{"dns:backup.trusted.example", "*.trusted.example", false},
		{"dns:backup.trusted.example", "backup%2Etrusted.example", false},
		{"dns:backup.trusted.example", "backup.trusted.exampl\u212a", false}, // Kelvin sign folds to k
		{"dns:backup.trusted.example", "spiffe://backup.trusted.example/x", false},
		{"dns:backup.trusted.example", "CN=backup.trusted.example", false},

		{"subject:CN=backup,O=Trusted", "CN=backup,O=Trusted", true},
		{"subject:CN=backup,O=Trusted", "cn=backup,o=Trusted", true},
		{"subject:CN=backup,O=Trusted", "2.5.4.3=backup,O=Trusted", true},
		{"subject:CN=backup,O=Trusted", `CN=backu\70,O=Trusted`, true},
		{"subject:CN=backup,O=Trusted", "CN=#13066261636b7570,O=Trusted", true},
		{"subject:CN=backup,O=Trusted", "CN=Backup,O=Trusted", false},
		{"subject:CN=backup,O=Trusted", "CN=backup,O=Trusted,C=NL", false},
		{"subject:CN=backup,O=Trusted", "CN=backup", false},
		{"subject:CN=backup,O=Trusted", "O=Trusted,CN=backup", false},
		{"subject:CN=backup,O=Trusted", "CN=backup+O=Trusted", false},
		{"subject:CN=backup,O=Trusted", "CN=backup-evil,O=Trusted", false},
		{"subject:CN=backup,O=Trusted", `CN=backup\ ,O=Trusted`, false},
		{"subject:CN=backup,O=Trusted", `CN=backup\,O=Trusted`, false},
		{"subject:CN=backup,O=Trusted", "CN=backup;O=Trusted", false},
		{"subject:CN=backup,O=Trusted", "CN=backup, O=Trusted", false},
		{"subject:CN=backup,O=Trusted", "OU=backup,O=Trusted", false},
		{"subject:OU=a+CN=b,O=c", "CN=b+OU=a,O=c", true},
		{"subject:CN=café", `CN=caf\C3\A9`, true},
		{"subject:CN=café", "CN=cafe\u0301", false}, // another normalisation form is another name
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tt.principal); got != tt.want {
			t.Errorf("%s.Match(%q) = %v, want %v", tt.pattern, tt.principal, got, tt.want)
		}
		// The Matcher's indexes must agree with Pattern.Match.
		m := mustMatcher(t, TrustedServices{Services: []TrustedService{{Name: "Backup", Principals: []string{tt.pattern}}}})
		if got := m.fromPrincipal(tt.principal) >= 0; got != tt.want {
			t.Errorf("Matcher with %s recognises %q: %v, want %v", tt.pattern, tt.principal, got, tt.want)
		}
	}
}

func mustMatcher(t testing.TB, cfg TrustedServices, opts ...Option) *Matcher {
	t.Helper()
	m, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
