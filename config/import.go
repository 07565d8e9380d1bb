package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ImportMarker marks each place of an imported configuration that only the
// operator can fill in; until they are, validation refuses the file.
const ImportMarker = "TODO(import)"

// Import turns a document of any Format into a commented vaultwall YAML
// file: the vault's identity and properties as the document says, and the
// sections an Azure document cannot carry (network inventory, issuers,
// trusted services) as placeholders marked ImportMarker. roleAssignments,
// when not nil, is `az role assignment list` output (a JSON or YAML list)
// put under properties.roleAssignments. name is used in messages.
//
// The document must be valid on its own (Parse), so every refusal names
// its field in the document as written.
func Import(name string, data, roleAssignments []byte) ([]byte, error) {
	data = decodeText(data)
	if roleAssignments != nil {
		var list []any
		js, err := yaml.YAMLToJSON(decodeText(roleAssignments))
		if err == nil {
			err = json.Unmarshal(js, &list)
		}
		if err != nil {
			return nil, fmt.Errorf("role assignments: %w: want az role assignment list output (a list): %v", ErrSyntax, err)
		}
		if data, err = templateVaultID(data, list); err != nil {
			return nil, err
		}
		if data, err = SetProperties(data, map[string]any{"roleAssignments": list}); err != nil {
			return nil, err
		}
	}
	cfg, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	if cfg.Format() == FormatVaultwall {
		return nil, fmt.Errorf("%s is already a vaultwall configuration: import reads az keyvault show output or an ARM template", name)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		doc = map[string]any{}
	}
	norm := normalize(doc)
	props, _ := norm.doc["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}

	var b bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# vaultwall configuration imported by `vaultwall config import` from %s (%s).", name, cfg.Format())
	line("# Fill in every place marked %s, then check it: vaultwall config validate FILE", ImportMarker)
	if ig := cfg.Ignored(); len(ig) > 0 {
		line("#")
		line("# Left out, since they decide nothing in vaultwall:")
		for _, f := range collapse(ig) {
			line("#   %s", f)
		}
	}
	line("")
	line("vault:")
	v := cfg.Vault
	line("  name: %s", yamlScalar(v.Name))
	line("  tenantId: %s", yamlScalar(v.TenantID))
	line("  location: %s", yamlScalar(v.Location))
	vaultDoc, _ := norm.doc["vault"].(map[string]any)
	if _, has := vaultDoc["resourceId"]; has {
		line("  resourceId: %s", yamlScalar(v.ResourceID))
	} else {
		line("  # %s: the vault's subscription and resource group, for role-assignment scopes", ImportMarker)
		line("  # and messages (an ARM template does not say; the default is %s).", v.ResourceID)
		line("  # subscriptionId: 00000000-0000-0000-0000-000000000000")
		line("  # resourceGroup: my-rg")
	}
	line("")
	line("# The vault's properties as Azure Resource Manager holds them.")
	line("properties:")
	if len(props) == 0 {
		b.Truncate(b.Len() - 1)
		line(" {}")
	} else {
		out, err := yaml.Marshal(dropNulls(props))
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			line("  %s", l)
		}
	}
	line("")
	line("network:")
	var subnets []string
	if acl := cfg.Properties.NetworkAcls; acl != nil {
		for _, r := range acl.VirtualNetworkRules {
			subnets = append(subnets, r.ID)
		}
	}
	if len(subnets) == 0 {
		line("  subnets: []")
	} else {
		line("  # %s: the address prefixes of each subnet a virtual-network rule admits", ImportMarker)
		line("  # (az network vnet subnet show --ids ID --query addressPrefixes).")
		line("  subnets:")
		for _, id := range subnets {
			line("    - id: %s", yamlScalar(id))
			line("      addressPrefixes: []  # %s", ImportMarker)
		}
	}
	var endpoints []string
	for _, pc := range cfg.Properties.PrivateEndpointConnections {
		if pc.Approved() && pc.PrivateEndpoint.ID != "" {
			endpoints = append(endpoints, pc.PrivateEndpoint.ID)
		}
	}
	if len(endpoints) == 0 {
		line("  privateEndpoints: []")
	} else {
		line("  # %s: how Envoy recognises each Approved private endpoint: the PROXY-protocol", ImportMarker)
		line("  # identity its load balancer adds, linkId (Azure Private Link LINKID, TLV 0xEE)")
		line("  # or vpceId (AWS VPC endpoint id, TLV 0xEA). Pending and Rejected ones are left out.")
		line("  privateEndpoints:")
		for _, id := range endpoints {
			line("    - id: %s", yamlScalar(id))
			line("      linkId: null  # %s", ImportMarker)
		}
	}
	line("  # The proxies in front of Envoy whose X-Forwarded-For to believe.")
	line("  trustedProxies: {hops: 0}")
	line("")
	line("identity:")
	line("  # The vault's callers hold Entra ID tokens of its tenant. %s: add the", ImportMarker)
	line("  # v2.0 issuer (https://login.microsoftonline.com/<tenant>/v2.0) if your apps ask for v2 tokens.")
	line("  issuers:")
	line("    - issuer: https://sts.windows.net/%s/", v.TenantID)
	line("      discovery: true")
	line("  challenge:")
	line("    authorization: %s", DefaultAuthority)
	line("    resource: %s", DefaultAudience)
	line("")
	line("trustedServices:")
	bypass := cfg.Properties.NetworkAcls != nil && cfg.Properties.NetworkAcls.BypassAzureServices()
	if bypass {
		line("  # %s: bypass AzureServices admits the trusted services bound here, by the", ImportMarker)
		line("  # principal of their client certificate (vaultwall trusted-services list).")
	}
	line("  services: []")
	return b.Bytes(), nil
}

// templateVaultID gives an ARM template's vault resource the ARM id its
// role assignments' scopes name (a template does not say which
// subscription and resource group it was deployed to), so the assignments'
// full scopes resolve. Other formats are returned as they are.
func templateVaultID(data []byte, assignments []any) ([]byte, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return data, nil // Parse reports it
	}
	var doc map[string]any
	if json.Unmarshal(js, &doc) != nil || detect(doc) != FormatARMTemplate {
		return data, nil
	}
	for _, r := range templateResources(doc) {
		if t, _ := r.m["type"].(string); !strings.EqualFold(t, vaultType) {
			continue
		}
		name, _ := r.m["name"].(string)
		if _, has := r.m["id"]; has || name == "" {
			return data, nil
		}
		re := regexp.MustCompile(`(?i)^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/` + regexp.QuoteMeta(name) + `)(/|$)`)
		for _, a := range assignments {
			m, _ := a.(map[string]any)
			scope, _ := m["scope"].(string)
			if g := re.FindStringSubmatch(scope); g != nil {
				r.m["id"] = g[1]
				return json.Marshal(doc)
			}
		}
		return data, nil
	}
	return data, nil
}

// dropNulls removes the nulls az prints for every unset field.
func dropNulls(v any) any {
	switch val := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(val))
		for k, e := range val {
			if e != nil {
				out[k] = dropNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(val))
		for i, e := range val {
			out[i] = dropNulls(e)
		}
		return out
	}
	return v
}

var bareScalar = regexp.MustCompile(`^[A-Za-z0-9/][A-Za-z0-9._/:{}-]*$`)

// yamlScalar quotes s when YAML would read it as something else.
func yamlScalar(s string) string {
	if bareScalar.MatchString(s) && !strings.Contains(s, ": ") {
		switch strings.ToLower(s) {
		case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
		default:
			return s
		}
	}
	q, _ := json.Marshal(s)
	return string(q)
}

var anyIndex = regexp.MustCompile(`\[\d+\]`)

// collapse lists field paths once per shape (roleAssignments[*].name), a
// template's resources by index.
func collapse(paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if strings.Contains(p, " (") {
			out = append(out, p)
			continue
		}
		head, rest := "", p
		if strings.HasPrefix(p, "resources[") {
			i := strings.Index(p, "]") + 1
			head, rest = p[:i], p[i:]
		}
		k := head + anyIndex.ReplaceAllString(rest, "[*]")
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// IgnoredSummary lists Ignored once per shape: roleAssignments[0].name and
// roleAssignments[1].name are roleAssignments[*].name.
func (c *Config) IgnoredSummary() []string { return collapse(c.ignored) }
