package config_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

var sentinels = map[string]error{
	"ErrSyntax": config.ErrSyntax, "ErrUnknownField": config.ErrUnknownField, "ErrType": config.ErrType,
	"ErrRequired": config.ErrRequired, "ErrInvalidValue": config.ErrInvalidValue, "ErrInvalidPrefix": config.ErrInvalidPrefix,
	"ErrInvalidID": config.ErrInvalidID, "ErrDuplicate": config.ErrDuplicate, "ErrTooMany": config.ErrTooMany,
	"ErrUnresolved": config.ErrUnresolved, "ErrConflict": config.ErrConflict, "ErrUnsupported": config.ErrUnsupported,
}

// Each testdata/config/invalid-*.yaml names, in its first line, the sentinel
// it must fail with and optionally the line and field the error must name:
// "# want: ErrDuplicate line 7 properties.networkAcls.ipRules[1].value".
func TestInvalidConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/invalid-*.yaml")
	if len(files) < len(sentinels) {
		t.Fatalf("%d invalid-* files for %d sentinels", len(files), len(sentinels))
	}
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			sentinel, ok := sentinels[want[0]]
			if !ok {
				t.Fatalf("unknown sentinel %q", want[0])
			}
			covered[want[0]] = true
			_, err := config.Load(f)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			if !errors.Is(err, sentinel) {
				t.Fatalf("error %v is not %s", err, want[0])
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.File != f {
				t.Errorf("error does not name the file: %v", err)
			}
			for i := 1; i < len(want); i++ {
				if want[i] == "line" {
					n, _ := strconv.Atoi(want[i+1])
					if !strings.Contains(err.Error(), f+":"+strconv.Itoa(n)+": ") {
						t.Errorf("error %q does not point at line %d", err, n)
					}
					i++
					continue
				}
				if !strings.Contains(err.Error(), want[i]+": ") {
					t.Errorf("error %q does not name field %s", err, want[i])
				}
			}
		})
	}
	for name := range sentinels {
		if !covered[name] {
			t.Errorf("no invalid-*.yaml proves %s", name)
		}
	}
}

func wantLine(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	line, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok {
		t.Fatalf("%s: first line must be '# want: <Sentinel> [line N] [field]'", path)
	}
	return strings.Fields(line)
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := config.Parse("vault.yaml", []byte(`
vault: {name: x, tenantId: nope}
properties:
  publicNetworkAccess: Maybe
  networkAcls: {defaultAction: Sometimes, ipRules: [{value: 1.2.3.4/40}]}
  accessPolicies: [{tenantId: 00000000-0000-0000-0000-000000000002, objectId: a, permissions: {secrets: [peek]}}]
`))
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{"vault.name", "vault.tenantId", "properties.publicNetworkAccess",
		"properties.networkAcls.defaultAction", "properties.networkAcls.ipRules[0].value",
		"properties.accessPolicies[0].permissions.secrets[0]"} {
		if !strings.Contains(err.Error(), want+": ") {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
}

func TestDefaultsAndParsedValues(t *testing.T) {
	c, err := config.Parse("dir/vault.yaml", []byte(`
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}
properties:
  publicNetworkAccess: disabled
  networkAcls: {ipRules: [{value: "::ffff:198.51.100.7"}, {value: "2001:db8::/32"}]}
  accessPolicies: [{tenantId: 00000000-0000-0000-0000-000000000001, objectId: a, permissions: {keys: [WRAPKEY, Get]}}]
identity:
  issuers: [{issuer: "https://sts.example.test/t/", jwksFile: keys.json}]
`))
	if err != nil {
		t.Fatal(err)
	}
	acl := c.Properties.NetworkAcls
	if !c.Properties.PublicAccessDisabled() || !acl.BypassAzureServices() || acl.DefaultDeny() {
		t.Errorf("ARM defaults: disabled=%v bypass=%v deny=%v", c.Properties.PublicAccessDisabled(), acl.BypassAzureServices(), acl.DefaultDeny())
	}
	if got := acl.IPRules[0].Prefix().String(); got != "198.51.100.7/32" {
		t.Errorf("IPv4-mapped rule = %s, want unmapped /32", got)
	}
	if got := c.Properties.AccessPolicies[0].Permissions.Keys; got[0] != "wrapKey" || got[1] != "get" {
		t.Errorf("permissions not canonicalised: %v", got)
	}
	if c.Identity.Issuers[0].JWKSFile != filepath.Join("dir", "keys.json") {
		t.Errorf("jwksFile not resolved against the config's directory: %s", c.Identity.Issuers[0].JWKSFile)
	}
	if c.Identity.Issuers[0].Audiences[0] != "https://vault.azure.net" || c.Server.GRPCAddr != ":9191" || c.Server.HTTPAddr != ":9090" {
		t.Errorf("defaults: %+v %+v", c.Identity.Issuers[0], c.Server)
	}
	if got, want := c.ChallengeHeader(), `Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"`; got != want {
		t.Errorf("challenge = %s", got)
	}
	if c.Vault.ResourceID != "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vaultwall/providers/Microsoft.KeyVault/vaults/contoso-vault" {
		t.Errorf("resource id = %s", c.Vault.ResourceID)
	}
}

// The challenge's authorization path is exactly one tenant, whatever form
// the authority is written in: the JavaScript and Python SDKs take the
// whole path as the tenant.
func TestChallengeNeverDoublesTheTenant(t *testing.T) {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	const want = `Bearer authorization="https://login.microsoftonline.com/` + tenant + `", resource="https://vault.azure.net"`
	base := `
vault: {name: contoso-vault, tenantId: ` + tenant + `, location: westeurope}
identity: {challenge: {authorization: "AUTH"}}
`
	for _, auth := range []string{
		"https://login.microsoftonline.com/" + tenant, // the natural form
		"https://login.microsoftonline.com/" + tenant + "/",
		"https://login.microsoftonline.com/72F988BF-86F1-41AF-91AB-2D7CD011DB47",
		"https://login.microsoftonline.com/{tenantId}",
		"https://login.microsoftonline.com",
		"https://login.microsoftonline.com/",
	} {
		c, err := config.Parse("v.yaml", []byte(strings.Replace(base, "AUTH", auth, 1)))
		if err != nil {
			t.Errorf("%s: %v", auth, err)
			continue
		}
		got := c.ChallengeHeader()
		if !strings.EqualFold(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", auth, got, want)
		}
	}
	for auth, why := range map[string]string{
		"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000009": "not the vault's tenant",
		"https://login.microsoftonline.com/{tenantId}/v2.0":                      "must be the whole path",
		"https://login.microsoftonline.com/common":                               "exactly the tenant",
		"https://login.microsoftonline.com/" + tenant + "/" + tenant:             "exactly the tenant",
		"https://login.microsoftonline.com/{tenantId}?x=1":                       "no query",
		"http://login.microsoftonline.com/{tenantId}":                            "https URL",
	} {
		_, err := config.Parse("v.yaml", []byte(strings.Replace(base, "AUTH", auth, 1)))
		if !errors.Is(err, config.ErrInvalidValue) || !strings.Contains(err.Error(), "identity.challenge.authorization") || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: want a refusal naming identity.challenge.authorization and saying %q, got %v", auth, why, err)
		}
	}
}

func TestChallengeAppendsTenant(t *testing.T) {
	c := config.Challenge{Authorization: "https://login.example.test/", Resource: "https://vault.azure.net"}
	if got := c.Header("t1"); got != `Bearer authorization="https://login.example.test/t1", resource="https://vault.azure.net"` {
		t.Errorf("got %s", got)
	}
}

func TestRoleAssignmentScopes(t *testing.T) {
	base := `
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope, subscriptionId: s, resourceGroup: rg}
properties:
  enableRbacAuthorization: true
  roleAssignments: [{principalId: p, roleDefinitionId: "Key Vault Secrets User", scope: "SCOPE"}]
`
	for scope, want := range map[string]string{
		"/": "", "": "", "/secrets/db": "/secrets/db", "/Keys/k1": "/keys/k1",
		"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vault/secrets/db": "/secrets/db",
	} {
		c, err := config.Parse("v.yaml", []byte(strings.Replace(base, "SCOPE", scope, 1)))
		if err != nil {
			t.Errorf("scope %q: %v", scope, err)
			continue
		}
		if got := c.Properties.RoleAssignments[0].Scope; got != want {
			t.Errorf("scope %q → %q, want %q", scope, got, want)
		}
	}
	for _, bad := range []string{"/secrets", "/storage/a", "/secrets/a/b", "/subscriptions/other", "keys/k1", "secrets/db",
		// another vault whose name extends this one's: never this vault's /keys/db
		"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vaultkeys/db",
		"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vault2/secrets/db"} {
		if _, err := config.Parse("v.yaml", []byte(strings.Replace(base, "SCOPE", bad, 1))); err == nil {
			t.Errorf("scope %q accepted", bad)
		}
	}
	if _, err := config.Parse("v.yaml", []byte(strings.Replace(base, "Key Vault Secrets User", "Key Vault Pizza Eater", 1))); !errors.Is(err, config.ErrUnresolved) {
		t.Errorf("unknown role: %v", err)
	}
}

// Every example configuration in the repository must stay valid.
func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	files = append(files, "testdata/config/valid-minimal.yaml")
	if len(files) < 2 {
		t.Fatal("no example configs found")
	}
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7": "198.51.100.7/32", "2001:db8::1": "2001:db8::1/128", "::ffff:10.0.0.0/104": "10.0.0.0/8",
		" 203.0.113.0/24 ": "203.0.113.0/24",
	} {
		p, err := config.ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("%q → %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "1.2.3", "1.2.3.4/33", "fe80::1%eth0", "10.0.0.1/8", "::ffff:1.2.3.4/80", "host.example"} {
		if p, err := config.ParsePrefix(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, p)
		}
	}
}
