package config

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Format is the kind of document a configuration file holds. Parse detects
// it from the document's shape; every format becomes the same Config.
type Format string

const (
	// FormatVaultwall is vaultwall's own YAML (or JSON) schema.
	FormatVaultwall Format = "vaultwall"
	// FormatKeyVault is the document `az keyvault show` (or
	// `az resource show`) prints, as JSON or YAML: id, name, type,
	// location and the vault's properties.
	FormatKeyVault Format = "az keyvault show"
	// FormatARMTemplate is an ARM template (`az group export`, the portal's
	// "Export template") with exactly one Microsoft.KeyVault/vaults
	// resource.
	FormatARMTemplate Format = "ARM template"
)

const vaultType = "microsoft.keyvault/vaults"

// ignoredProperties are ARM vault properties that decide nothing vaultwall
// decides: accepted, and listed by Ignored.
var ignoredProperties = []string{
	"sku", "vaultUri", "enabledForDeployment", "enabledForDiskEncryption", "enabledForTemplateDeployment",
	"enableSoftDelete", "softDeleteRetentionInDays", "enablePurgeProtection", "provisioningState",
	"createMode", "hsmPoolResourceId",
}

// ignoredAssignmentFields are the metadata `az role assignment list` prints
// beside an assignment's principal, role and scope.
var ignoredAssignmentFields = []string{
	"name", "type", "principalName", "principalType", "roleDefinitionName", "description",
	"createdBy", "createdOn", "updatedBy", "updatedOn", "delegatedManagedIdentityResourceId",
	"resourceGroup", "conditionVersion",
}

// controlPlaneRoles are built-in Azure roles with no data actions: an
// assignment of one grants nothing on the data plane, in Azure as here, so
// it is listed as ignored instead of refused as an unknown role.
var controlPlaneRoles = map[string]string{
	"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
	"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
	"acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
	"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
	"f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}

// normalized is a document brought into vaultwall's schema, with what was
// set aside on the way.
type normalized struct {
	format  Format
	doc     map[string]any
	ignored []string // document paths accepted and ignored
	errs    errs     // refusals, named by document path
	fatal   bool     // the document is not one to validate further
	// prefix maps a vaultwall field path to the document's path, so errors
	// and line numbers name what the user wrote.
	paths map[string]string
}

// decodeText accepts what a shell redirect writes: UTF-8 with or without a
// byte-order mark, and UTF-16 with one (Windows PowerShell's `>`).
func decodeText(data []byte) []byte {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return data[3:]
	case len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF):
		var order binary.ByteOrder = binary.LittleEndian
		if data[0] == 0xFE {
			order = binary.BigEndian
		}
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			u = append(u, order.Uint16(data[i:]))
		}
		return []byte(string(utf16.Decode(u)))
	}
	return data
}

// detect names the format of a decoded document.
func detect(doc map[string]any) Format {
	switch doc["resources"].(type) {
	case []any, map[string]any: // a list, or languageVersion 2.0's symbolic names
		if _, schema := doc["$schema"]; schema {
			return FormatARMTemplate
		}
		if _, cv := doc["contentVersion"]; cv {
			return FormatARMTemplate
		}
	}
	if t, ok := doc["type"].(string); ok && strings.EqualFold(t, vaultType) {
		return FormatKeyVault
	}
	return FormatVaultwall
}

// normalize brings a decoded document of any format into vaultwall's
// schema. It is a pure function of the document.
func normalize(doc map[string]any) *normalized {
	n := &normalized{format: detect(doc), paths: map[string]string{}}
	switch n.format {
	case FormatKeyVault:
		n.fromVault(doc, "")
	case FormatARMTemplate:
		n.fromTemplate(doc)
	default:
		if t, ok := doc["type"].(string); ok {
			// Another resource's document (az resource show of a managed
			// HSM, a storage account…): say so rather than list its fields.
			n.errs.Add("type", ErrUnsupported, "%q: vaultwall reads a Microsoft.KeyVault/vaults document (az keyvault show), an ARM template with one, or its own schema", t)
			n.fatal = true
			n.doc = map[string]any{}
			break
		}
		n.doc = doc
		if props, ok := doc["properties"].(map[string]any); ok {
			n.properties(props, "properties")
		}
	}
	sort.Strings(n.ignored)
	return n
}

func (n *normalized) ignore(path string) { n.ignored = append(n.ignored, path) }

// docPath maps a vaultwall field path to the document's own path: the
// longest mapped prefix is replaced.
func (n *normalized) docPath(field string) string {
	best := ""
	for from := range n.paths {
		if (field == from || strings.HasPrefix(field, from+".") || strings.HasPrefix(field, from+"[")) && len(from) > len(best) {
			best = from
		}
	}
	if best == "" {
		return field
	}
	return n.paths[best] + field[len(best):]
}

// fromVault converts an `az keyvault show` document, or an ARM template's
// vault resource (base is its path, e.g. "resources[2]").
func (n *normalized) fromVault(v map[string]any, base string) {
	at := func(k string) string { return join(base, k) }
	vault := map[string]any{}
	props, _ := v["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	for k, val := range v {
		switch k {
		case "name", "location":
			vault[k] = val
			n.paths["vault."+k] = at(k)
		case "id":
			vault["resourceId"] = val
			n.paths["vault.resourceId"] = at(k)
		case "properties":
		case "type":
		default:
			n.ignore(at(k))
		}
	}
	if t, ok := props["tenantId"]; ok {
		vault["tenantId"] = t
	}
	n.paths["vault.tenantId"] = at("properties.tenantId")
	n.paths["vault.name"] = at("name")
	n.paths["vault.location"] = at("location")
	n.paths["properties"] = at("properties")
	n.properties(props, at("properties"))
	n.doc = map[string]any{"vault": vault, "properties": props}
}

// properties normalizes a vault's properties in place: ignored ARM
// properties are set aside, private endpoint connections and role
// assignments in Azure's shapes are reduced to what decides.
func (n *normalized) properties(p map[string]any, base string) {
	for _, k := range ignoredProperties {
		if _, ok := p[k]; ok {
			n.ignore(base + "." + k)
			delete(p, k)
		}
	}
	for k, v := range p {
		if v == nil { // az prints every unset property as null
			delete(p, k)
		}
	}
	if acl, ok := p["networkAcls"].(map[string]any); ok {
		for k, v := range acl {
			if v == nil {
				delete(acl, k)
			}
		}
		// az adds resourceGroup to every object with a resource id.
		if rules, ok := acl["virtualNetworkRules"].([]any); ok {
			for i, r := range rules {
				if m, ok := r.(map[string]any); ok {
					if _, set := m["resourceGroup"]; set {
						n.ignore(fmt.Sprintf("%s.networkAcls.virtualNetworkRules[%d].resourceGroup", base, i))
						delete(m, "resourceGroup")
					}
				}
			}
		}
	}
	if list, ok := p["privateEndpointConnections"].([]any); ok {
		for i, c := range list {
			if m, ok := c.(map[string]any); ok {
				n.connection(m, fmt.Sprintf("%s.privateEndpointConnections[%d]", base, i))
			}
		}
	}
	if list, ok := p["roleAssignments"].([]any); ok {
		kept := make([]any, 0, len(list))
		for i, a := range list {
			path := fmt.Sprintf("%s.roleAssignments[%d]", base, i)
			if m, ok := a.(map[string]any); ok && !n.assignment(m, path) {
				continue
			}
			// Indices after a dropped entry no longer match the
			// document's; map each kept entry back to its own.
			n.paths[fmt.Sprintf("properties.roleAssignments[%d]", len(kept))] = path
			kept = append(kept, a)
		}
		p["roleAssignments"] = kept
	}
}

// connection reduces a private endpoint connection, as az flattens it
// ({id, privateEndpoint, privateLinkServiceConnectionState, …}) or as ARM
// nests it ({id, properties: {…}}), to its id, endpoint and status.
func (n *normalized) connection(c map[string]any, path string) {
	at := map[string]string{} // a key's path in the document
	if props, ok := c["properties"].(map[string]any); ok {
		for k, v := range props {
			c[k] = v
			at[k] = path + ".properties." + k
		}
		delete(c, "properties")
	}
	where := func(k string) string {
		if p, ok := at[k]; ok {
			return p
		}
		return path + "." + k
	}
	for k, v := range c {
		switch k {
		case "id":
		case "privateEndpoint":
			if pe, ok := v.(map[string]any); ok {
				for pk := range pe {
					if pk != "id" {
						n.ignore(where(k) + "." + pk)
						delete(pe, pk)
					}
				}
			}
		case "privateLinkServiceConnectionState":
			if st, ok := v.(map[string]any); ok {
				for sk := range st {
					if sk != "status" {
						n.ignore(where(k) + "." + sk)
						delete(st, sk)
					}
				}
			}
		default:
			n.ignore(where(k))
			delete(c, k)
		}
	}
}

// assignment reduces an `az role assignment list` entry to what decides,
// refusing a condition; it reports whether the entry is kept (an
// assignment of a role without data actions is listed as ignored).
func (n *normalized) assignment(a map[string]any, path string) bool {
	if props, ok := a["properties"].(map[string]any); ok { // ARM's nesting
		for k, v := range props {
			if _, set := a[k]; !set {
				a[k] = v
			}
		}
		delete(a, "properties")
	}
	if cond, ok := a["condition"]; ok {
		if cond != nil && cond != "" {
			n.errs.Add(path+".condition", ErrUnsupported,
				"role assignment conditions (ABAC) are not supported, and ignoring one would grant more than Azure does: remove the assignment or its condition")
		}
		delete(a, "condition")
	}
	for _, k := range ignoredAssignmentFields {
		if _, ok := a[k]; ok {
			n.ignore(path + "." + k)
			delete(a, k)
		}
	}
	if role, ok := a["roleDefinitionId"].(string); ok {
		if name, cp := controlPlaneRoles[strings.ToLower(lastSegment(role))]; cp {
			n.ignore(path + " (" + name + ": no data actions)")
			return false
		}
	}
	return true
}

// armResource is one resource of a template, with its path.
type armResource struct {
	path   string
	m      map[string]any
	nested bool // declared inside the vault resource's own resources
}

// templateResources lists a template's resources: a list, or the map of
// symbolic names of languageVersion 2.0.
func templateResources(t map[string]any) []armResource {
	var out []armResource
	switch rs := t["resources"].(type) {
	case []any:
		for i, r := range rs {
			if m, ok := r.(map[string]any); ok {
				out = append(out, armResource{path: fmt.Sprintf("resources[%d]", i), m: m})
			}
		}
	case map[string]any:
		names := make([]string, 0, len(rs))
		for k := range rs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if m, ok := rs[k].(map[string]any); ok {
				out = append(out, armResource{path: "resources." + k, m: m})
			}
		}
	}
	return out
}

// fromTemplate converts an ARM template with one vault resource.
func (n *normalized) fromTemplate(t map[string]any) {
	resources := templateResources(t)
	var vault *armResource
	for i := range resources {
		r := &resources[i]
		if typ, _ := r.m["type"].(string); strings.EqualFold(typ, vaultType) {
			if vault != nil {
				n.errs.Add(r.path, ErrUnsupported,
					"a second Microsoft.KeyVault/vaults resource (the first is %s): a configuration protects one vault", vault.path)
				continue
			}
			vault = r
		}
	}
	if vault == nil {
		n.errs.Add("resources", ErrRequired, "the template has no Microsoft.KeyVault/vaults resource")
		n.fatal = true
		n.doc = map[string]any{}
		return
	}
	for k := range t {
		switch k {
		case "resources", "$schema", "contentVersion":
		default:
			n.ignore(k)
		}
	}
	base := vault.path
	vaultName, _ := vault.m["name"].(string)
	// Child resources declared inside the vault resource count as the
	// top-level ones do.
	if nested, ok := vault.m["resources"].([]any); ok {
		for j, r := range nested {
			if m, ok := r.(map[string]any); ok {
				resources = append(resources, armResource{path: fmt.Sprintf("%s.resources[%d]", base, j), m: m, nested: true})
			}
		}
		delete(vault.m, "resources")
	}
	type child struct {
		path string
		m    map[string]any
	}
	var children []child
	for _, r := range resources {
		if r.path == base {
			continue
		}
		typ, _ := r.m["type"].(string)
		full := strings.ToLower(typ)
		if r.nested && !strings.Contains(full, "/") {
			full = vaultType + "/" + full
		}
		switch full {
		case vaultType + "/privateendpointconnections":
			name, _ := r.m["name"].(string)
			switch {
			case isExpression(name):
				n.refuseExpressions(name, r.path+".name")
				continue
			case !r.nested && !strings.HasPrefix(strings.ToLower(name), strings.ToLower(vaultName)+"/"):
				n.ignore(r.path + " (" + typ + " of another vault)")
				continue
			}
			children = append(children, child{r.path, r.m})
		case vaultType + "/accesspolicies":
			n.errs.Add(r.path, ErrUnsupported, "%s resources change the vault's access policies: put the entries in %s.properties.accessPolicies", typ, base)
		case "microsoft.authorization/roleassignments":
			n.errs.Add(r.path, ErrUnsupported, "role assignments are read from az role assignment list output (properties.roleAssignments, or vaultwall config import --role-assignments)")
		default:
			n.ignore(r.path + " (" + typ + ")")
		}
	}
	// Expressions are refused where they would decide: a value read from a
	// parameter or computed at deployment is not known here.
	for _, k := range []string{"name", "location", "id"} {
		n.refuseExpressions(vault.m[k], base+"."+k)
	}
	props, _ := vault.m["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		vault.m["properties"] = props
	}
	n.fromVault(vault.m, base)
	n.refuseExpressions(props, base+".properties")
	var conns []any
	if list, ok := props["privateEndpointConnections"].([]any); ok {
		conns = list
	}
	for _, c := range children {
		n.connection(c.m, c.path)
		n.refuseExpressions(c.m, c.path)
		n.paths[fmt.Sprintf("properties.privateEndpointConnections[%d]", len(conns))] = c.path
		conns = append(conns, c.m)
	}
	if len(conns) > 0 {
		props["privateEndpointConnections"] = conns
	}
}

func isExpression(s string) bool {
	return strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "[[") && strings.HasSuffix(s, "]")
}

// refuseExpressions reports every ARM template expression ("[…]", but not
// the escaped "[[…") under v.
func (n *normalized) refuseExpressions(v any, path string) {
	switch val := v.(type) {
	case string:
		if isExpression(val) {
			n.errs.Add(path, ErrUnsupported,
				"%q is an ARM template expression, evaluated only at deployment: write the value (az group export --skip-all-params exports values)", val)
		}
	case map[string]any:
		keys := make([]string, 0, len(val))
		for k := range val {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.refuseExpressions(val[k], path+"."+k)
		}
	case []any:
		for i, e := range val {
			n.refuseExpressions(e, path+"["+strconv.Itoa(i)+"]")
		}
	}
}
