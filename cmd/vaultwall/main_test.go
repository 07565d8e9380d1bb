package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for _, w := range []string{"examples/vault.yaml: valid", "defaultAction Deny, bypass AzureServices, 4 IP rules", "Backup ← [spiffe://trusted.example/azure-backup]"} {
		if !strings.Contains(out, w) {
			t.Errorf("summary lacks %q:\n%s", w, out)
		}
	}

	// A schema error (with file and line), and an error only a stage's
	// compile step finds (an unknown trusted-service name).
	for _, tc := range []struct{ old, new, want string }{
		{"value: 198.51.100.7 ", "value: 198.51.100.700 ", ":22: properties.networkAcls.ipRules[1].value: not an IP address or CIDR prefix"},
		{"name: Backup ", "name: Bakcup ", ":71: trustedServices.services[0].name: refers to nothing"},
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
	if _, err := run(t, "policy", "test", dir); codeOf(err) != 1 {
		t.Fatalf("a failing Rego test did not fail the command: %v", err)
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
