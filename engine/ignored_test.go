package engine

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// aclOverlay stands for the control plane owning networkAcls: whatever the
// file says, its stored ACLs are in force.
type aclOverlay struct{ acls string }

var aclLine = regexp.MustCompile(`(?m)^  networkAcls: .*$`)

func (o aclOverlay) Parse(path string, data []byte) (*config.Config, error) {
	return config.Parse(path, aclLine.ReplaceAll(data, []byte("  networkAcls: "+o.acls)))
}
func (aclOverlay) Version() string { return "7" }

// TestWarnsWhenFileEditIsOverridden: an edit in the file to a property the
// control plane owns takes no effect; it is warned about in the log and
// listed by /readyz (issue 13 item 6), and the warning clears when the file
// agrees again.
func TestWarnsWhenFileEditIsOverridden(t *testing.T) {
	const stored = "{defaultAction: Deny, ipRules: [{value: 203.0.113.0/24}]}" // goodConfig's
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	var logs bytes.Buffer
	e := New(path, stubBuild, slog.New(slog.NewTextHandler(&logs, nil)))
	e.SetOverlay(aclOverlay{acls: stored})
	ignored := func() []string { return e.Status().IgnoredFileProperties }
	const warning = "the configuration file sets properties the control plane owns"
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ignored(); len(got) != 0 || strings.Contains(logs.String(), warning) {
		t.Fatalf("the file agrees with the control plane, yet ignored = %v\n%s", got, logs.String())
	}

	// The operator opens 198.51.100.0/24 in the file: the control plane's
	// ACLs stay in force.
	write(t, path, strings.Replace(goodConfig, "203.0.113.0/24", "198.51.100.0/24", 1))
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if acl := e.Current().Config.Properties.NetworkAcls; acl.IPRules[0].Value != "203.0.113.0/24" {
		t.Fatalf("the overlay did not win: %+v", acl.IPRules)
	}
	want := path + ":4: properties.networkAcls"
	if got := ignored(); len(got) != 1 || got[0] != want {
		t.Errorf("/readyz ignoredFileProperties = %v; want [%s]", got, want)
	}
	if l := logs.String(); strings.Count(l, warning) != 1 || !strings.Contains(l, "properties.networkAcls") {
		t.Errorf("want one warning naming properties.networkAcls:\n%s", l)
	}

	// The same again (an unrelated reload): no second warning.
	write(t, path, strings.Replace(goodConfig, "203.0.113.0/24", "198.51.100.0/24", 1)+"\n# touched\n")
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("%d warnings after an unrelated edit; want still 1", n)
	}

	// Back in agreement: the detail clears.
	write(t, path, goodConfig+"\n# agreed\n")
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ignored(); len(got) != 0 {
		t.Errorf("ignored = %v after the file agrees again", got)
	}
}
