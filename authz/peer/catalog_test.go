package peer

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// referenceTable is reference/trusted-services.md's table, name | scope, as
// written there. The catalog must hold each row with exactly this scope.
const referenceTable = `
VirtualMachinesDeployment | secrets: get
ResourceManagerTemplateDeployment | secrets: get
DiskEncryption | secrets: get, set; keys: get, wrapKey, unwrapKey
Backup | keys: get, list, backup, restore; secrets: get, list, backup, restore
ExchangeSharePointOnline | keys: get, wrapKey, unwrapKey
InformationProtection | keys: get, decrypt, sign, unwrapKey
AppService | certificates: get; secrets: get
SqlDatabase | keys: get, wrapKey, unwrapKey
MySql | keys: get, wrapKey, unwrapKey
PostgreSqlSingleServer | keys: get, wrapKey, unwrapKey
Storage | keys: get, wrapKey, unwrapKey
DataLakeStore | keys: get, wrapKey, unwrapKey
SynapseAnalytics | keys: get, wrapKey, unwrapKey
Databricks | secrets: get, list; keys: get, wrapKey, unwrapKey
ApiManagement | certificates: get; secrets: get, list
DataFactory | secrets: get, list
EventHubs | keys: get, wrapKey, unwrapKey
ServiceBus | keys: get, wrapKey, unwrapKey
ImportExport | keys: get, wrapKey, unwrapKey
ContainerRegistry | keys: get, wrapKey, unwrapKey
ApplicationGateway | certificates: get; secrets: get
FrontDoorStandardPremium | certificates: get, list; secrets: get, list
FrontDoorClassic | certificates: get, list; secrets: get, list
Purview | secrets: get, list
MachineLearning | secrets: get, list, set, delete; keys: get, wrapKey, unwrapKey
`

// laterList are the services of Key Vault's 2024-01 list the table leaves
// out (keyvault-spec §2).
var laterList = []string{"Batch", "BotService", "Cdn", "FirewallPremium", "DiskEncryptionSet", "PolicyScan",
	"M365DataAtRestEncryption", "MySqlFlexibleServer", "PostgreSqlFlexibleServer"}

func parseScopeText(t *testing.T, s string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, part := range strings.Split(s, "; ") {
		fam, perms, ok := strings.Cut(part, ": ")
		if !ok {
			t.Fatalf("bad scope text %q", s)
		}
		l := strings.Split(perms, ", ")
		slices.Sort(l)
		out[fam] = l
	}
	return out
}

func TestCatalogMatchesReference(t *testing.T) {
	rows := strings.Split(strings.TrimSpace(referenceTable), "\n")
	if len(rows) != 25 {
		t.Fatalf("reference table has %d rows, want 25", len(rows))
	}
	for _, row := range rows {
		name, want, _ := strings.Cut(row, " | ")
		s, ok := Lookup(name)
		if !ok {
			t.Errorf("%s: missing from the catalog", name)
			continue
		}
		got := parseScopeText(t, s.ScopeString())
		if w := parseScopeText(t, want); !mapsEqual(got, w) {
			t.Errorf("%s: scope %q, reference says %q", name, s.ScopeString(), want)
		}
		if s.Note != "" {
			t.Errorf("%s: the reference proposes this scope; a Note is for scopes vaultwall chose", name)
		}
	}
	for _, name := range laterList {
		s, ok := Lookup(name)
		if !ok {
			t.Errorf("%s: missing from the catalog", name)
			continue
		}
		if s.Note == "" {
			t.Errorf("%s: a scope vaultwall chose needs a Note saying why", name)
		}
	}
	if n := len(Catalog()); n != len(rows)+len(laterList) {
		t.Errorf("catalog has %d entries, want %d", n, len(rows)+len(laterList))
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestCatalogEntriesWellFormed(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Catalog() {
		if s.Name == "" || s.Service == "" || s.Scenario == "" {
			t.Errorf("%+v: name, service and scenario are required", s)
		}
		if names[strings.ToLower(s.Name)] {
			t.Errorf("%s: listed twice (names compare case-insensitively in error hints)", s.Name)
		}
		names[strings.ToLower(s.Name)] = true
		sc := compileScope(s.Scope) // panics on an unknown permission or "all"
		if sc.empty() {
			t.Errorf("%s: empty scope", s.Name)
		}
		for fi, perms := range [...][]string{s.Scope.Keys, s.Scope.Secrets, s.Scope.Certificates, s.Scope.Storage} {
			seen := map[string]bool{}
			for _, p := range perms {
				if strings.EqualFold(p, "all") {
					t.Errorf("%s: %s holds all", s.Name, families[fi])
				}
				if c, ok := authz.CanonicalPermission(families[fi], p); !ok || c != p {
					t.Errorf("%s: %s/%s is not in the spec's casing (%q)", s.Name, families[fi], p, c)
				}
				if seen[p] {
					t.Errorf("%s: %s/%s twice", s.Name, families[fi], p)
				}
				seen[p] = true
			}
			if sc[fi]&1 != 0 {
				t.Errorf("%s: compiled scope holds all", s.Name)
			}
		}
	}
}

func TestCatalogIsACopy(t *testing.T) {
	c := Catalog()
	c[0].Scope.Secrets[0] = "purge"
	c[0].Name = "Evil"
	s, _ := Lookup("VirtualMachinesDeployment")
	if s.Scope.Secrets[0] != "get" || Catalog()[0].Name != "VirtualMachinesDeployment" {
		t.Fatal("mutating Catalog()'s result changed the catalog")
	}
	s.Scope.Secrets[0] = "purge"
	if again, _ := Lookup("VirtualMachinesDeployment"); again.Scope.Secrets[0] != "get" {
		t.Fatal("mutating Lookup's result changed the catalog")
	}
	if _, ok := Lookup("backup"); ok {
		t.Error("Lookup is case-sensitive")
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(catalog)+1 {
		t.Fatalf("%d lines, want header + %d", len(lines), len(catalog))
	}
	header := lines[0]
	for _, col := range []string{"NAME", "SERVICE", "SCENARIO", "SCOPE"} {
		if !strings.Contains(header, col) {
			t.Errorf("header %q lacks %s", header, col)
		}
	}
	scopeCol := strings.Index(header, "SCOPE")
	for i, s := range catalog {
		line := lines[i+1]
		if !strings.HasPrefix(line, s.Name+" ") {
			t.Errorf("line %d = %q, want it to start with %s", i+1, line, s.Name)
		}
		if len(line) < scopeCol || line[scopeCol:] != s.ScopeString() {
			t.Errorf("line %d: scope column misaligned or wrong: %q", i+1, line)
		}
	}
	if !strings.Contains(b.String(), "AppService") || !strings.Contains(b.String(), "secrets: get; certificates: get") {
		t.Error("AppService row missing")
	}
}

func TestCatalogJSON(t *testing.T) {
	s, _ := Lookup("Storage")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"Storage","service":"Azure Storage","scenario":"Storage Service Encryption with customer-managed keys","scope":{"keys":["get","wrapKey","unwrapKey"]}}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}
