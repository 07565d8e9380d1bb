package rego

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz"
)

// jsonSchema is a JSON Schema (draft-07) object.
type jsonSchema = map[string]any

type props = map[string]jsonSchema

const draft = "http://json-schema.org/draft-07/schema#"

func arrayOf(items jsonSchema) jsonSchema { return jsonSchema{"type": "array", "items": items} }

// object is a closed object: a reference to any other key is a type error.
// required lists every property when all is set.
func object(p props, all bool) jsonSchema {
	s := jsonSchema{"type": "object", "properties": p, "additionalProperties": false}
	if all {
		req := make([]string, 0, len(p))
		for k := range p {
			req = append(req, k)
		}
		slices.Sort(req)
		s["required"] = req
	}
	return s
}

func mapOf(values jsonSchema) jsonSchema {
	return jsonSchema{"type": "object", "additionalProperties": values}
}

func planes() []string { return []string{authz.PlaneData.String(), authz.PlaneControl.String()} }

// families are the access-policy permission families, and "" for an
// operation that needs no permission.
func families() []string {
	out := []string{""}
	for fam := range authz.KnownPermissions {
		out = append(out, fam)
	}
	slices.Sort(out)
	return out
}

// authTypes are the firewall's auth_type values, "" when nothing matched.
func authTypes() []string {
	out := []string{""}
	for i := range 64 {
		if n := authz.AddrAuthType(i).String(); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// headersSchema: a map of the listed headers, each present when sent. It
// is open to the type checker (a rule may compare the whole object with a
// literal that names only some headers); editors see the names.
func headersSchema() jsonSchema {
	return jsonSchema{"type": "object", "additionalProperties": jsonSchema{"type": "string"},
		"propertyNames": jsonSchema{"enum": slices.Clone(inputHeaders)}}
}

// descriptions of the input's fields, for editors (README.md's table).
var descriptions = map[string]string{
	"operation":                  "the Key Vault operation the request asks for",
	"operation.plane":            "data or control",
	"operation.resource":         "access-policy permission family: secrets, keys, certificates, storage; \"\" when none is needed",
	"operation.permission":       "access-policy permission, spec casing (get, wrapKey, managecontacts)",
	"operation.data_action":      "RBAC data action, in full (Microsoft.KeyVault/vaults/keys/wrap/action)",
	"operation.name":             "AuditEvent operationName (SecretGet)",
	"operation.object":           "object name in lower case; \"\" when none. Compare this, never object_raw",
	"operation.object_raw":       "the object name as the client spelt it: for messages, never for comparisons",
	"operation.version":          "object version; \"\" when none",
	"operation.scope":            "RBAC scope of the object (/secrets/<name>, lower case); \"\" for vault-level operations",
	"operation.method":           "effective HTTP method (after X-HTTP-METHOD)",
	"operation.api_version":      "api-version as sent",
	"caller":                     "the verified token's caller",
	"caller.tenant_id":           "tid",
	"caller.object_id":           "oid",
	"caller.application_id":      "appid (v1) or azp (v2)",
	"caller.issuer":              "iss",
	"caller.idtyp":               "idtyp",
	"caller.appidacr":            "appidacr or azpacr",
	"caller.is_user":             "a delegated (user) token: idtyp=user, or scp without idtyp",
	"caller.groups":              "groups",
	"caller.groups_overage":      "the token signals more groups than it lists",
	"caller.roles":               "roles",
	"caller.scopes":              "scp split on spaces",
	"caller.subject":             "sub",
	"caller.mi_resource_id":      "xms_mirid",
	"caller.az_resource_id":      "xms_az_rid",
	"caller.claims":              "every verified claim (never the token)",
	"source":                     "where the request came from",
	"source.client_addr":         "client address (after trusted-proxy X-Forwarded-For)",
	"source.peer_addr":           "TCP peer address",
	"source.subnet_id":           "inventory subnet, \"\" if none",
	"source.private_endpoint_id": "approved private endpoint, \"\" if none",
	"source.firewall":            "the network verdict",
	"source.trusted_service":     "the recognised trusted service, and whether the operation is in scope for it",
	"source.tls":                 "downstream TLS",
	"source.principal":           "the client certificate's principal (SAN)",
	"source.sni":                 "TLS SNI",
	"vault":                      "the vault",
	"vault.name":                 "vault name",
	"vault.tenant_id":            "vault tenant",
	"vault.location":             "vault location",
	"vault.resource_id":          "vault ARM resource id",
	"vault.rbac":                 "enableRbacAuthorization",
	"request":                    "the HTTP request",
	"request.id":                 "Envoy's request id",
	"request.method":             "HTTP method as sent",
	"request.path":               "path with query, as sent: never compare it, compare operation.object",
	"request.host":               "Host",
	"request.scheme":             "scheme",
	"request.protocol":           "HTTP protocol",
	"request.headers":            "content-length, content-type, user-agent, x-http-method, x-ms-client-request-id, when sent; never credentials",
	"time":                       "the decision's clock, RFC 3339 UTC",
	"decision_id":                "the decision id (x-ms-request-id)",
}

func described(s jsonSchema, path string) jsonSchema {
	if d, ok := descriptions[path]; ok {
		s = cloneSchema(s)
		s["description"] = d
	}
	return s
}

func cloneSchema(s jsonSchema) jsonSchema {
	out := make(jsonSchema, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	return out
}

// InputSchema is the JSON Schema of the data-plane policy's input document,
// generated from the description the input is built from (input.go), so
// that it cannot drift. Every object is closed: a policy reading a field
// the document does not have fails to compile.
func InputSchema() jsonSchema {
	root := props{}
	for _, sec := range schema {
		name := string(sec.key.Value.(ast.String))
		if sec.scalar != nil {
			s := jsonSchema{"type": "string"}
			if name == "time" {
				s["format"] = "date-time"
			}
			root[name] = described(s, name)
			continue
		}
		p := props{}
		for _, f := range sec.fields {
			fname := string(f.key.Value.(ast.String))
			p[fname] = described(f.schema, name+"."+fname)
		}
		root[name] = described(object(p, true), name)
	}
	s := object(root, true)
	s["$schema"] = draft
	s["title"] = "vaultwall data-plane policy input (input)"
	return s
}

// DataSchema is the JSON Schema of data.vaultwall as buildData makes it
// (data.go): the configuration's access policies, role assignments and
// role definitions, indexed, and the settings. A family's permissions are
// a Rego set, which JSON Schema cannot say: they are left untyped, so
// that both `"get" in perms` and `perms["get"]` type-check.
func DataSchema() jsonSchema {
	str := jsonSchema{"type": "string"}
	perms := props{}
	for fam := range authz.KnownPermissions {
		perms[fam] = jsonSchema{"description": "the set of lower-case permissions (a JSON array when serialized)"}
	}
	entry := object(props{
		"index":          {"type": "integer"},
		"name":           {"type": "string", "description": "accessPolicies[i]"},
		"object_id":      {"type": "string", "description": "objectId as written"},
		"application_id": {"type": "string", "description": "applicationId, lower case"},
		"tenant_id":      {"type": "string", "description": "tenantId, lower case"},
		"permissions":    object(perms, true),
	}, true)
	assignment := object(props{
		"index":        {"type": "integer"},
		"name":         {"type": "string", "description": "roleAssignments[i]"},
		"id":           str,
		"principal_id": str,
		"role":         {"type": "string", "description": "role definition id, lower case"},
		"scope":        {"type": "string", "description": "\"\" (the vault) or /secrets|keys|certificates/<name>, lower case"},
	}, true)
	role := object(props{
		"id":               str,
		"name":             str,
		"data_actions":     {"type": "array", "items": str, "description": "lower case, relative to Microsoft.KeyVault/vaults/"},
		"not_data_actions": {"type": "array", "items": str, "description": "lower case, relative to Microsoft.KeyVault/vaults/"},
	}, true)
	s := object(props{
		"access_policies": object(props{
			"entries":   arrayOf(entry),
			"by_object": mapOf(arrayOf(entry)),
		}, true),
		"role_assignments": object(props{
			"entries":      arrayOf(assignment),
			"by_principal": mapOf(arrayOf(jsonSchema{"type": "integer"})),
		}, true),
		"role_definitions": mapOf(role),
		"settings":         object(props{"allow_operator_grants": {"type": "boolean"}}, true),
	}, true)
	s["$schema"] = draft
	s["title"] = "vaultwall policy data (data.vaultwall, without the policy's own rules)"
	return s
}

// ControlInputSchema is the JSON Schema of the control-plane policy's
// input, generated from ControlInput's fields.
func ControlInputSchema() jsonSchema {
	s := structSchema(reflect.TypeFor[ControlInput]())
	s["$schema"] = draft
	s["title"] = "vaultwall control-plane policy input (input)"
	return s
}

// structSchema describes a struct by its json tags: every field without
// omitempty is required, no other key is allowed.
func structSchema(t reflect.Type) jsonSchema {
	p := props{}
	var req []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := typeSchema(f.Type)
		if d := f.Tag.Get("doc"); d != "" {
			fs = cloneSchema(fs)
			fs["description"] = d
		}
		p[name] = fs
		if !strings.Contains(opts, "omitempty") {
			req = append(req, name)
		}
	}
	s := jsonSchema{"type": "object", "properties": p, "additionalProperties": false}
	if len(req) > 0 {
		slices.Sort(req)
		s["required"] = req
	}
	return s
}

func typeSchema(t reflect.Type) jsonSchema {
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem())
	case reflect.String:
		return jsonSchema{"type": "string"}
	case reflect.Bool:
		return jsonSchema{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return jsonSchema{"type": "integer"}
	case reflect.Slice:
		return arrayOf(typeSchema(t.Elem()))
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return jsonSchema{"type": "object", "additionalProperties": true}
		}
		return mapOf(typeSchema(t.Elem()))
	case reflect.Struct:
		return structSchema(t)
	}
	panic(fmt.Sprintf("rego: no JSON Schema for %v", t))
}

// Schemas are the committed schema files (rego/schema/*.json), by name.
func Schemas() map[string][]byte {
	out := map[string][]byte{}
	for name, s := range map[string]jsonSchema{
		"input.json":         InputSchema(),
		"data.json":          DataSchema(),
		"control_input.json": ControlInputSchema(),
	} {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			panic(err) // the schemas are built from maps of strings
		}
		out[name] = append(b, '\n')
	}
	return out
}

// schemaSet holds the input schema a policy is type-checked against, and
// every committed schema by its file name, as `opa check -s rego/schema`
// names them: a `# METADATA` annotation may refer to schema.input,
// schema.data or schema.control_input.
func schemaSet(input string) *ast.SchemaSet {
	ss := ast.NewSchemaSet()
	for file, b := range Schemas() {
		// Through JSON, so that OPA's schema loader sees plain JSON values.
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			panic(err)
		}
		name := strings.TrimSuffix(file, ".json")
		ss.Put(ast.SchemaRootRef.Append(ast.StringTerm(name)), v)
		if name == input {
			ss.Put(ast.SchemaRootRef, v)
		}
	}
	return ss
}

var (
	dataInputSchemaSet    = schemaSet("input")
	controlInputSchemaSet = schemaSet("control_input")
	dataAnnotations       = dataSchemaAnnotations()
)

// dataSchemaAnnotations attach DataSchema's sections to data.vaultwall's
// documents (access_policies, role_assignments, role_definitions,
// settings): the part of data.vaultwall that is data, not rules.
func dataSchemaAnnotations() []*ast.SchemaAnnotation {
	var v map[string]any
	b, err := json.Marshal(DataSchema())
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		panic(err)
	}
	sections := v["properties"].(map[string]any)
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]*ast.SchemaAnnotation, 0, len(names))
	for _, name := range names {
		def := sections[name]
		out = append(out, &ast.SchemaAnnotation{
			Path:       ast.MustParseRef("data.vaultwall").Append(ast.StringTerm(name)),
			Definition: &def,
		})
	}
	return out
}

// annotateOperatorData type-checks the operator's policy files' reads of
// data.vaultwall against DataSchema, as if each rule carried a
// `# METADATA schemas:` annotation for it. Test files are left alone: they
// replace the data with `with`.
func annotateOperatorData(mods map[string]*ast.Module) {
	for name, m := range mods {
		if strings.HasSuffix(name, "_test.rego") || !m.Package.Path.HasPrefix(operatorPath) {
			continue
		}
		for _, r := range m.Rules {
			a := (&ast.Annotations{Scope: "rule", Schemas: dataAnnotations, Location: r.Location}).Copy(r)
			m.Annotations = append(m.Annotations, a)
		}
	}
}
