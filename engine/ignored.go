package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vaultwall/vaultwall/config"
)

// overridable are the vault properties an overlay (the control plane's
// stored state) may set in place of the file's, by their ARM names.
var overridable = []struct {
	name  string
	value func(*config.Properties) any
}{
	{"publicNetworkAccess", func(p *config.Properties) any { return p.PublicNetworkAccess }},
	{"networkAcls", func(p *config.Properties) any { return p.NetworkAcls }},
	{"accessPolicies", func(p *config.Properties) any { return p.AccessPolicies }},
	{"roleAssignments", func(p *config.Properties) any { return p.RoleAssignments }},
	{"roleDefinitions", func(p *config.Properties) any { return p.RoleDefinitions }},
}

// IgnoredFileProperties lists the properties the configuration file sets
// whose value is not the one in force because an overlay (the control
// plane) overrides them, each as "file:line: properties.<name>". file is
// the file parsed alone, effective the configuration in force. An edit to
// one of them in the file changes nothing until it is made through the
// management API.
func IgnoredFileProperties(file, effective *config.Config) []string {
	out, _ := ignoredFile(file, effective)
	return out
}

// ignoredFile is IgnoredFileProperties and a signature of the ignored
// properties with the file's values for them: it changes when such a
// property is edited in the file, so the edit is warned about again.
func ignoredFile(file, effective *config.Config) (out []string, sig string) {
	if file == nil || effective == nil {
		return nil, ""
	}
	var b strings.Builder
	for _, p := range overridable {
		field := "properties." + p.name
		line := file.Line(field)
		if line == 0 {
			continue
		}
		fv, err := json.Marshal(p.value(&file.Properties))
		ev, err2 := json.Marshal(p.value(&effective.Properties))
		if err == nil && err2 == nil && string(fv) == string(ev) {
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d: %s", file.Path, line, field))
		fmt.Fprintf(&b, "%s=%s\x00", field, fv)
	}
	return out, b.String()
}
