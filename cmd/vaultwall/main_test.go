package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// run executes the CLI in-process. Tests first move to the repository
// root (atRoot), so the README's example paths work as written.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestCheckExamples(t *testing.T) {
	atRoot(t)
	tests := []struct {
		input string
		code  int
		want  []string
	}{
		{"secret-get.json", exitAllowed, []string{"ALLOWED (decided by authorize)", "rule ipRules[0]=203.0.113.0/24", `"okResponse"`, "x-vaultwall-caller-oid"}},
		{"secret-get-outside.json", exitDenied, []string{"DENIED 403 ForbiddenByFirewall", "Client address: 192.0.2.44"}},
		{"secret-get-no-token.json", exitDenied, []string{"DENIED 401 Unauthorized", "AKV10000", "www-authenticate"}},
		{"secret-set-denied.json", exitDenied, []string{"DENIED 403 AccessDenied", "does not have secrets set permission"}},
		{"backup-secret-get.json", exitAllowed, []string{"trusted service Backup (in scope)", "bypass=AzureServices(Backup)"}},
		{"key-wrap.json", exitAllowed, []string{"KeyWrap", "accessPolicies[0]"}},
		{"healthstatus.json", exitAllowed, []string{"HealthStatus: served without a token"}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			out, err := run(t, "check", "--config", "examples/vault.yaml", "--input", filepath.Join("examples/requests", tt.input), "--explain")
			if code := codeOf(err); code != tt.code {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// Azure's documents validate as printed, and the summary says what was
// read, what was set aside and what cannot match yet.
func TestConfigValidateAzureDocuments(t *testing.T) {
	atRoot(t)
	for file, want := range map[string][]string{
		"config/testdata/azure/keyvault-show.json": {"read as          az keyvault show", "properties.createMode",
			"properties.privateEndpointConnections[*].etag", "note             properties.networkAcls.virtualNetworkRules[0].id"},
		"config/testdata/azure/group-export.json": {"read as          ARM template", "resources[3] (Microsoft.KeyVault/vaults/secrets)",
			"resources[0].properties.sku"},
		"config/testdata/azure/keyvault-show-rbac.yaml": {"authorization    RBAC: 0 role assignments", "issuers          0 (no token is accepted"},
	} {
		out, err := run(t, "config", "validate", file)
		if err != nil {
			t.Errorf("%s: %v\n%s", file, err, out)
			continue
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: summary lacks %q:\n%s", file, w, out)
			}
		}
	}
}

// config import writes a file that, once its placeholders are filled,
// config validate accepts.
func TestConfigImport(t *testing.T) {
	atRoot(t)
	out := filepath.Join(t.TempDir(), "vault.yaml")
	if msg, err := run(t, "config", "import", "config/testdata/azure/keyvault-show-rbac.yaml",
		"--role-assignments", "config/testdata/azure/role-assignments.json", "--output-file", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# vaultwall configuration imported", "roleAssignments:", "#   properties.roleAssignments[*].principalName",
		"properties.roleAssignments[3] (Owner: no data actions)", "issuer: https://sts.windows.net/8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/"} {
		if !strings.Contains(string(data), w) {
			t.Errorf("imported file lacks %q:\n%s", w, data)
		}
	}
	msg, err := run(t, "config", "validate", out)
	if err != nil || !strings.Contains(msg, "RBAC: 3 role assignments") {
		t.Errorf("validate: %v\n%s", err, msg)
	}
	if msg, err := run(t, "config", "import", "examples/vault.yaml"); err == nil || !strings.Contains(err.Error(), "already a vaultwall configuration") {
		t.Errorf("import of a vaultwall file: %v\n%s", err, msg)
	}
}

func TestCheckBadInput(t *testing.T) {
	atRoot(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"attributes": {"nonsense": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "check", "--config", "examples/vault.yaml", "--input", bad); codeOf(err) != exitFailed {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	atRoot(t)
	out, err := run(t, "config", "validate", "examples/vault.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{"examples/vault.yaml: valid", "defaultAction Deny, bypass AzureServices, 4 IP rules", "Backup ← [spiffe://trusted.example/azure-backup]",
		`challenge        Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"`} {
		if !strings.Contains(out, w) {
			t.Errorf("summary lacks %q:\n%s", w, out)
		}
	}

	// A schema error (with file and line), and an error only a stage's
	// compile step finds (an unknown trusted-service name).
	for _, tc := range []struct{ old, new, want string }{
		{"value: 198.51.100.7 ", "value: 198.51.100.700 ", ":22: properties.networkAcls.ipRules[1].value: not an IP address or CIDR prefix"},
		{"name: Backup ", "name: Bakcup ", ":71: trustedServices.services[0].name: refers to nothing"},
		// Once a panic (slice bounds in the SPIFFE parser) and a stack trace.
		{`"spiffe://trusted.example/azure-backup"`, `"spiffe://*"`, `:72: trustedServices.services[0].principals[0]: invalid value: not a principal pattern: "spiffe://*": the trust domain is empty`},
	} {
		bad := filepath.Join(t.TempDir(), "vault.yaml")
		data, _ := os.ReadFile("examples/vault.yaml")
		data = bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1)
		if err := os.WriteFile(bad, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = run(t, "config", "validate", bad)
		if err == nil {
			t.Fatalf("an invalid configuration validated (%s)", tc.new)
		}
		if !strings.Contains(err.Error(), bad+tc.want) {
			t.Errorf("error lacks %q:\n%v", tc.want, err)
		}
	}
}

func TestPolicyTest(t *testing.T) {
	atRoot(t)
	out, err := run(t, "policy", "test", "--coverage", "rego/examples/purge-mfa")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "shipped policy: 100.00%") {
		t.Errorf("coverage missing:\n%s", out)
	}
	dir := t.TempDir()
	failing := "package vaultwall.operator_test\n\ntest_fails if false\n"
	if err := os.WriteFile(filepath.Join(dir, "x_test.rego"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "policy", "test", dir); codeOf(err) != 2 {
		t.Fatalf("a failing Rego test did not fail the command with opa test's 2: %v", err)
	}
}

// policy test answers as opa test: --format json on stdout, exit status 0
// (passed), 2 (a test failed, coverage under --threshold), 1 (the tests
// could not run).
func TestPolicyTestSpeaksOpaTest(t *testing.T) {
	atRoot(t)
	runSplit := func(args ...string) (stdout, stderr string, err error) {
		root := newRoot()
		var o, e bytes.Buffer
		root.SetOut(&o)
		root.SetErr(&e)
		root.SetArgs(args)
		err = root.ExecuteContext(t.Context())
		return o.String(), e.String(), err
	}
	stdout, stderr, err := runSplit("policy", "test", "--format", "json", "--run", "purge", "rego/examples/purge-mfa")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var results []*tester.Result
	if err := json.Unmarshal([]byte(stdout), &results); err != nil || len(results) == 0 {
		t.Fatalf("stdout is not opa test's JSON: %v\n%s", err, stdout)
	}
	for _, r := range results {
		if !strings.Contains(r.Package+"."+r.Name, "purge") || r.Fail {
			t.Errorf("--run purge ran %s.%s (fail=%v)", r.Package, r.Name, r.Fail)
		}
	}
	// -v adds each test's trace, as opa test -v --format json does.
	stdout, _, err = runSplit("policy", "test", "--format", "json", "-v", "--run", "purge", "rego/examples/purge-mfa")
	if err != nil || !json.Valid([]byte(stdout)) || !strings.Contains(stdout, `"trace"`) {
		t.Fatalf("-v --format json: %v\n%s", err, stdout)
	}
	stdout, _, err = runSplit("policy", "test", "--format", "json", "--coverage", "rego/examples/purge-mfa")
	var cov cover.Report
	if err != nil || json.Unmarshal([]byte(stdout), &cov) != nil || cov.Coverage == 0 {
		t.Fatalf("--coverage JSON: %v\n%s", err, stdout)
	}
	_, stderr, err = runSplit("policy", "test", "--threshold", "100", "--run", "purge", "rego/examples/purge-mfa")
	if codeOf(err) != 2 || !strings.Contains(stderr, "Code coverage threshold not met") {
		t.Fatalf("under the threshold: %v\n%s", err, stderr)
	}
	if _, _, err := runSplit("policy", "test", "--threshold", "50", "rego/examples/purge-mfa"); err != nil {
		t.Fatalf("over the threshold: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte("package vaultwall.operator\n\ndeny contains \"x\" if input.operation.objct == \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runSplit("policy", "test", dir); codeOf(err) != 1 || !strings.Contains(err.Error(), "x.rego:3") || !strings.Contains(err.Error(), "input.operation.objct") {
		t.Fatalf("a policy that does not compile: %v, want exit 1 naming x.rego:3 and the field", err)
	}
}

func TestTrustedServicesListAndVersion(t *testing.T) {
	atRoot(t)
	out, err := run(t, "trusted-services", "list")
	if err != nil || !strings.Contains(out, "AppService") || !strings.Contains(out, "secrets: get; certificates: get") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = run(t, "version")
	if err != nil || !strings.HasPrefix(out, "vaultwall ") {
		t.Fatalf("%v %q", err, out)
	}
}

func atRoot(t *testing.T) { t.Chdir("../..") }

func codeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}

// config validate names the properties the file sets whose value the
// control plane's stored state overrides (a file store it can read), and
// says it cannot know with etcd (issue 13 item 6).
func TestConfigValidateWarnsOverriddenProperties(t *testing.T) {
	dir := t.TempDir()
	cfg := `vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, ipRules: [{value: 198.51.100.0/24}]}
  accessPolicies: []
controlPlane:
  enabled: true
  listenAddr: 127.0.0.1:0
  audiences: [api://vaultwall-admin]
  store: {type: file, path: state.json}
`
	path := filepath.Join(dir, "vault.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// No state yet: nothing is overridden.
	out, err := run(t, "config", "validate", path)
	if err != nil || strings.Contains(out, "warning:") {
		t.Fatalf("validate with no stored state: %v\n%s", err, out)
	}

	st, err := store.OpenFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	acls := &config.NetworkAcls{DefaultAction: "Deny", IPRules: []config.IPRule{{Value: "203.0.113.0/24"}}}
	if _, err := st.CompareAndSwap(t.Context(), 0, store.State{NetworkAcls: acls}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "config", "validate", path)
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	want := "warning: " + path + ":3: properties.networkAcls: the control plane's stored value"
	if !strings.Contains(out, want) || strings.Contains(out, "accessPolicies") {
		t.Errorf("output lacks %q (and only it):\n%s", want, out)
	}

	etcd := strings.Replace(cfg, "{type: file, path: state.json}", "{type: etcd, endpoints: [127.0.0.1:1]}", 1)
	if err := os.WriteFile(path, []byte(etcd), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "config", "validate", path)
	if err != nil || !strings.Contains(out, "validate cannot read them offline") {
		t.Errorf("validate with etcd: %v\n%s", err, out)
	}
}

// policy lint: the shipped policy and the examples are clean (exit 0); a
// bad policy's findings, as text or JSON, exit 3; a policy that does not
// load exits 1.
func TestPolicyLint(t *testing.T) {
	atRoot(t)
	if out, err := run(t, "policy", "lint", "rego/examples/business-hours", "rego/examples/purge-mfa"); err != nil || out != "" {
		t.Fatalf("the shipped policy and the examples do not lint clean: %v\n%s", err, out)
	}
	out, err := run(t, "policy", "lint", "rego/testdata/lint/bad")
	if codeOf(err) != 3 || !strings.Contains(out, "rego/testdata/lint/bad/rules.rego:6:2: vaultwall/never-fires:") {
		t.Fatalf("exit %d:\n%s", codeOf(err), out)
	}
	out, err = run(t, "policy", "lint", "--format", "json", "rego/testdata/lint/bad")
	var doc struct {
		Findings []struct {
			File, Category, Rule, Message string
			Line, Col                     int
		}
	}
	if codeOf(err) != 3 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Findings) < 5 || doc.Findings[0].File != "rego/testdata/lint/bad/rules.rego" {
		t.Fatalf("exit %d, JSON:\n%s", codeOf(err), out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte("package vaultwall.operator\n\ndeny contains \"x\" if input.operation.objct == \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "policy", "lint", dir); codeOf(err) != 1 {
		t.Fatalf("a policy that does not load: exit %d (%v), want 1", codeOf(err), err)
	}
}

// config validate refuses a misspelt input field in policy.dir and in
// controlPlane.policyDir, with the file, the line and the field.
func TestConfigValidateTypeChecksPolicies(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ops/rules.rego", "package vaultwall.operator\n\ndeny contains \"x\" if input.operation.objct == \"prod-root\"\n")
	write("cp/control.rego", "package vaultwall.control\n\ndecision := {\"allow\": true, \"reason\": \"ops\"} if \"ops\" in input.token.group\nelse := {\"allow\": false, \"reason\": \"no\"}\n")
	write("ok/rules.rego", "package vaultwall.operator\n\ndeny contains \"x\" if input.operation.object == \"prod-root\"\n")
	head := "vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}\nproperties: {accessPolicies: []}\n"
	cp := "controlPlane:\n  enabled: true\n  listenAddr: 127.0.0.1:0\n  audiences: [api://vaultwall-admin]\n  store: {type: file, path: state.json}\n"
	for _, tc := range []struct{ cfg, want string }{
		{head + "policy: {dir: ops}\n", filepath.Join(dir, "ops/rules.rego") + ":3: compile error: rego_type_error: undefined ref: input.operation.objct"},
		{head + "policy: {dir: ok}\n" + cp + "  policyDir: cp\n", filepath.Join(dir, "cp/control.rego") + ":3: compile error: rego_type_error: undefined ref: input.token.group"},
	} {
		path := write("vault.yaml", tc.cfg)
		_, err := run(t, "config", "validate", path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config validate: %v, want %q", err, tc.want)
		}
	}
	path := write("vault.yaml", head+"policy: {dir: ok}\n"+cp)
	if out, err := run(t, "config", "validate", path); err != nil {
		t.Fatalf("a valid configuration: %v\n%s", err, out)
	}
}
