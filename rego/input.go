package rego

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz"
)

// inputHeaders are the request headers the input carries. Never
// authorization, cookies or anything else that holds a credential.
var inputHeaders = []string{
	"content-length",
	"content-type",
	"user-agent",
	"x-http-method",
	"x-ms-client-request-id",
}

// The input document (README.md), section by section. A field's value is
// made from the decision; only the claims can fail to convert.
type inputField struct {
	key *ast.Term
	fieldFuncs
}

type fieldFuncs struct {
	value func(d *authz.Decision) (*ast.Term, error)
	// appendKey appends an encoding of the value to a decision-cache key:
	// self-delimiting, so that the concatenation of a plan's fields is
	// injective. nil for a value that differs on every request, which no
	// cache key can usefully hold.
	appendKey func(k []byte, d *authz.Decision) ([]byte, error)
	// schema is the value's JSON Schema (schema.go publishes the document's
	// and the compiler type-checks every policy against it).
	schema jsonSchema
}

type inputSection struct {
	key *ast.Term
	// fields of an object section; nil for a scalar (time, decision_id),
	// which differs on every request.
	fields []inputField
	scalar func(d *authz.Decision) *ast.Term
}

func s(f func(d *authz.Decision) string) fieldFuncs {
	return fieldFuncs{
		value:     func(d *authz.Decision) (*ast.Term, error) { return str(f(d)), nil },
		appendKey: func(k []byte, d *authz.Decision) ([]byte, error) { return appendString(k, f(d)), nil },
		schema:    jsonSchema{"type": "string"},
	}
}

func b(f func(d *authz.Decision) bool) fieldFuncs {
	return fieldFuncs{
		value:     func(d *authz.Decision) (*ast.Term, error) { return ast.InternedTerm(f(d)), nil },
		appendKey: func(k []byte, d *authz.Decision) ([]byte, error) { return appendBool(k, f(d)), nil },
		schema:    jsonSchema{"type": "boolean"},
	}
}

func list(f func(d *authz.Decision) []string) fieldFuncs {
	return fieldFuncs{
		value: func(d *authz.Decision) (*ast.Term, error) { return stringArray(f(d)), nil },
		appendKey: func(k []byte, d *authz.Decision) ([]byte, error) {
			l := f(d)
			k = binary.AppendUvarint(k, uint64(len(l)))
			for _, e := range l {
				k = appendString(k, e)
			}
			return k, nil
		},
		schema: arrayOf(jsonSchema{"type": "string"}),
	}
}

// oneOf is a string field whose value is one of values.
func oneOf(f fieldFuncs, values ...string) fieldFuncs {
	f.schema = jsonSchema{"type": "string", "enum": values}
	return f
}

// perRequest is a value that differs on every request: not keyable.
func perRequest(f func(d *authz.Decision) string) fieldFuncs {
	return fieldFuncs{value: s(f).value, schema: jsonSchema{"type": "string"}}
}

func field(name string, f fieldFuncs) inputField {
	return inputField{key: ast.StringTerm(name), fieldFuncs: f}
}

func appendString(k []byte, v string) []byte {
	return append(binary.AppendUvarint(k, uint64(len(v))), v...)
}

func appendBool(k []byte, v bool) []byte {
	if v {
		return append(k, 1)
	}
	return append(k, 0)
}

var noRequest = &authz.Request{}

func req(d *authz.Decision) *authz.Request {
	if d.Request == nil {
		return noRequest
	}
	return d.Request
}

var schema = []inputSection{
	{key: ast.StringTerm("operation"), fields: []inputField{
		field("plane", oneOf(s(func(d *authz.Decision) string { return d.Operation.Plane.String() }), planes()...)),
		field("resource", oneOf(s(func(d *authz.Decision) string { return d.Operation.Resource }), families()...)),
		field("permission", s(func(d *authz.Decision) string { return d.Operation.Permission })),
		field("data_action", s(func(d *authz.Decision) string { return d.Operation.DataAction })),
		field("name", s(func(d *authz.Decision) string { return d.Operation.Name })),
		// object and scope are canonical (lower case): Key Vault's names are
		// case-insensitive, so a rule written for "prod-root" also holds for
		// /secrets/PROD-ROOT. object_raw is the name as the client spelt it.
		field("object", s(func(d *authz.Decision) string { return d.Operation.Object })),
		field("object_raw", s(func(d *authz.Decision) string { return d.Operation.ObjectRaw })),
		field("version", s(func(d *authz.Decision) string { return d.Operation.Version })),
		field("scope", s(func(d *authz.Decision) string { return d.Operation.Scope })),
		field("method", s(func(d *authz.Decision) string { return d.Operation.Method })),
		field("api_version", s(func(d *authz.Decision) string { return d.Operation.APIVersion })),
	}},
	{key: ast.StringTerm("caller"), fields: []inputField{
		field("tenant_id", s(func(d *authz.Decision) string { return d.Caller.TenantID })),
		field("object_id", s(func(d *authz.Decision) string { return d.Caller.ObjectID })),
		field("application_id", s(func(d *authz.Decision) string { return d.Caller.ApplicationID })),
		field("issuer", s(func(d *authz.Decision) string { return d.Caller.Issuer })),
		field("idtyp", s(func(d *authz.Decision) string { return d.Caller.IdentityType })),
		field("appidacr", s(func(d *authz.Decision) string { return d.Caller.AppIDACR })),
		field("is_user", b(func(d *authz.Decision) bool { return d.Caller.IsUser() })),
		field("groups", list(func(d *authz.Decision) []string { return d.Caller.Groups })),
		field("groups_overage", b(func(d *authz.Decision) bool { return d.Caller.GroupsOverage })),
		field("roles", list(func(d *authz.Decision) []string { return d.Caller.Roles })),
		field("scopes", list(func(d *authz.Decision) []string { return d.Caller.Scopes })),
		field("subject", s(func(d *authz.Decision) string { return d.Caller.Subject })),
		field("mi_resource_id", s(func(d *authz.Decision) string { return d.Caller.MIResourceID })),
		field("az_resource_id", s(func(d *authz.Decision) string { return d.Caller.AzResourceID })),
		field("claims", fieldFuncs{value: claims, appendKey: claimsKey, schema: jsonSchema{"type": "object", "additionalProperties": true}}),
	}},
	{key: ast.StringTerm("source"), fields: []inputField{
		field("client_addr", s(func(d *authz.Decision) string {
			if a := d.Network.ClientAddr; a.IsValid() {
				return a.String()
			}
			return ""
		})),
		field("peer_addr", s(func(d *authz.Decision) string {
			if p := req(d).Peer; p.IsValid() {
				return p.Addr().String()
			}
			return ""
		})),
		field("subnet_id", s(func(d *authz.Decision) string { return d.Network.SubnetID })),
		field("private_endpoint_id", s(func(d *authz.Decision) string { return d.Network.PrivateEndpointID })),
		field("firewall", fieldFuncs{
			value: func(d *authz.Decision) (*ast.Term, error) {
				n := &d.Network
				return ast.ObjectTerm(
					[2]*ast.Term{kEvaluated, ast.InternedTerm(n.Evaluated)},
					[2]*ast.Term{kAllowed, ast.InternedTerm(n.Allowed)},
					[2]*ast.Term{kAuthType, str(n.AuthType.String())},
					[2]*ast.Term{kRule, str(n.Rule)},
				), nil
			},
			appendKey: func(k []byte, d *authz.Decision) ([]byte, error) {
				n := &d.Network
				k = appendBool(appendBool(k, n.Evaluated), n.Allowed)
				return appendString(appendString(k, n.AuthType.String()), n.Rule), nil
			},
			schema: object(props{
				"evaluated": {"type": "boolean"}, "allowed": {"type": "boolean"},
				"auth_type": {"type": "string", "enum": authTypes()}, "rule": {"type": "string"},
			}, true),
		}),
		field("trusted_service", fieldFuncs{
			value: func(d *authz.Decision) (*ast.Term, error) {
				return ast.ObjectTerm(
					[2]*ast.Term{kName, str(d.Network.TrustedService)},
					[2]*ast.Term{kInScope, ast.InternedTerm(d.Network.TrustedInScope)},
				), nil
			},
			appendKey: func(k []byte, d *authz.Decision) ([]byte, error) {
				return appendBool(appendString(k, d.Network.TrustedService), d.Network.TrustedInScope), nil
			},
			schema: object(props{"name": {"type": "string"}, "in_scope": {"type": "boolean"}}, true),
		}),
		field("tls", b(func(d *authz.Decision) bool { return req(d).TLS })),
		field("principal", s(func(d *authz.Decision) string { return req(d).Principal })),
		field("sni", s(func(d *authz.Decision) string { return req(d).SNI })),
	}},
	{key: ast.StringTerm("vault"), fields: []inputField{
		field("name", s(func(d *authz.Decision) string { return d.Vault.Name })),
		field("tenant_id", s(func(d *authz.Decision) string { return d.Vault.TenantID })),
		field("location", s(func(d *authz.Decision) string { return d.Vault.Location })),
		field("resource_id", s(func(d *authz.Decision) string { return d.Vault.ResourceID })),
		field("rbac", b(func(d *authz.Decision) bool { return d.Vault.RBAC })),
	}},
	{key: ast.StringTerm("request"), fields: []inputField{
		field("id", perRequest(func(d *authz.Decision) string { return req(d).ID })),
		field("method", s(func(d *authz.Decision) string { return req(d).Method })),
		field("path", s(func(d *authz.Decision) string { return req(d).Path })),
		field("host", s(func(d *authz.Decision) string { return req(d).Host })),
		field("scheme", s(func(d *authz.Decision) string { return req(d).Scheme })),
		field("protocol", s(func(d *authz.Decision) string { return req(d).Protocol })),
		// x-ms-client-request-id makes the headers differ on every request.
		// Only the listed headers, each when sent.
		field("headers", fieldFuncs{value: headers, schema: headersSchema()}),
	}},
	{key: ast.StringTerm("time"), scalar: func(d *authz.Decision) *ast.Term {
		return ast.StringTerm(d.Time.UTC().Format(time.RFC3339Nano))
	}},
	{key: ast.StringTerm("decision_id"), scalar: func(d *authz.Decision) *ast.Term { return str(d.ID) }},
}

var (
	kEvaluated, kAllowed, kAuthType, kRule = key("evaluated"), key("allowed"), key("auth_type"), key("rule")
	kName, kInScope                        = key("name"), key("in_scope")
	headerKeys                             = func() []*ast.Term {
		t := make([]*ast.Term, len(inputHeaders))
		for i, h := range inputHeaders {
			t[i] = key(h)
		}
		return t
	}()
	emptyArray  = ast.ArrayTerm()
	emptyObject = ast.ObjectTerm()
)

func key(s string) *ast.Term { return ast.StringTerm(s) }

func claims(d *authz.Decision) (*ast.Term, error) {
	if len(d.Caller.Claims) == 0 {
		return emptyObject, nil
	}
	v, err := ast.InterfaceToValue(d.Caller.Claims)
	if err != nil {
		return nil, fmt.Errorf("%w: the caller's claims: %v", ErrEval, err)
	}
	return ast.NewTerm(v), nil
}

// claimsKey encodes the claims exactly: each value tagged with its type,
// strings by their bytes, map keys sorted. Claims hold what JSON decoding
// makes; any other type is refused, and the decision is evaluated uncached.
func claimsKey(k []byte, d *authz.Decision) ([]byte, error) {
	return appendJSONValue(k, d.Caller.Claims)
}

func appendJSONValue(k []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(k, 'z'), nil
	case bool:
		return appendBool(append(k, 'b'), x), nil
	case string:
		return appendString(append(k, 's'), x), nil
	case json.Number:
		return appendString(append(k, 'N'), string(x)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w: a claim is %v", ErrEval, x)
		}
		return binary.BigEndian.AppendUint64(append(k, 'f'), math.Float64bits(x)), nil
	case []any:
		k = binary.AppendUvarint(append(k, 'a'), uint64(len(x)))
		for _, e := range x {
			var err error
			if k, err = appendJSONValue(k, e); err != nil {
				return nil, err
			}
		}
		return k, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for name := range x {
			keys = append(keys, name)
		}
		sort.Strings(keys)
		k = binary.AppendUvarint(append(k, 'o'), uint64(len(x)))
		for _, name := range keys {
			var err error
			if k, err = appendJSONValue(appendString(k, name), x[name]); err != nil {
				return nil, err
			}
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: a claim of type %T", ErrEval, v)
}

func headers(d *authz.Decision) (*ast.Term, error) {
	r := req(d)
	var pairs [8][2]*ast.Term
	n := 0
	for i, h := range inputHeaders {
		if v := r.Header(h); v != "" {
			pairs[n] = [2]*ast.Term{headerKeys[i], str(v)}
			n++
		}
	}
	return ast.ObjectTerm(pairs[:n]...), nil
}

// vocabulary holds terms for the strings that recur in every input (planes,
// families, permissions, methods, address kinds), so that building an input
// does not allocate them again.
var vocabulary = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	add := func(s ...string) {
		for _, v := range s {
			m[v] = ast.StringTerm(v)
		}
	}
	add("data", "control", "GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "https", "http", "HTTP/1.1", "HTTP/2",
		"app", "user", "0", "1", "2", "application/json", "PublicIP", "Subnet", "PrivateLink", "TrustedService")
	for fam, perms := range authz.KnownPermissions {
		add(fam)
		add(perms...)
	}
	return m
}()

// str makes a string term, reusing a shared one for recurring values.
func str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	if t, ok := vocabulary[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

func stringArray(list []string) *ast.Term {
	if len(list) == 0 {
		return emptyArray
	}
	terms := make([]*ast.Term, len(list))
	for i, s := range list {
		terms[i] = str(s)
	}
	return ast.ArrayTerm(terms...)
}

// plan is the part of the input document a policy can read: the sections,
// and in each the fields, that its rules refer to. Fields no rule names are
// not built: they could not change the decision.
type plan []inputSection

// fullPlan builds the whole document.
var fullPlan = plan(schema)

// Input builds the whole input document (README.md) for a decision, as
// operators see it in explain output and tests.
func Input(d *authz.Decision) (ast.Value, error) {
	return fullPlan.build(d)
}

func (p plan) build(d *authz.Decision) (ast.Value, error) {
	if d.Caller == nil || d.Vault == nil {
		return nil, fmt.Errorf("%w: the decision has no caller or no vault", ErrEval)
	}
	var sections [8][2]*ast.Term
	for i := range p {
		sec := &p[i]
		if sec.scalar != nil {
			sections[i] = [2]*ast.Term{sec.key, sec.scalar(d)}
			continue
		}
		var fields [16][2]*ast.Term
		for j := range sec.fields {
			v, err := sec.fields[j].value(d)
			if err != nil {
				return nil, err
			}
			fields[j] = [2]*ast.Term{sec.fields[j].key, v}
		}
		sections[i] = [2]*ast.Term{sec.key, ast.ObjectTerm(fields[:len(sec.fields)]...)}
	}
	return ast.NewObject(sections[:len(p)]...), nil
}

// planFor narrows the input to what the compiled rules refer to. It is
// conservative: a bare `input`, or a reference whose section or field is
// not a constant string, keeps everything beneath it.
func planFor(c *ast.Compiler) plan {
	need := map[string]map[string]bool{} // section → fields; nil map = all fields
	all := false
	input := ast.InputRootDocument.Value
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Var:
			if v.Compare(input) == 0 {
				all = true
			}
		case ast.Ref:
			if v[0].Value.Compare(input) != 0 {
				return false // a data ref may hold input refs: look inside
			}
			needRef(need, v, &all)
			// The path is recorded; its keys may hold input refs of their own.
			for _, k := range v[1:] {
				ast.WalkTerms(k, visit)
			}
			return true
		}
		return false
	}
	for _, m := range c.Modules {
		ast.WalkTerms(m, visit)
	}
	if all {
		return fullPlan
	}
	var p plan
	for _, sec := range schema {
		fields, ok := need[string(sec.key.Value.(ast.String))]
		switch {
		case !ok:
		case fields == nil || sec.scalar != nil:
			p = append(p, sec)
		default:
			narrowed := sec
			narrowed.fields = nil
			for _, f := range sec.fields {
				if fields[string(f.key.Value.(ast.String))] {
					narrowed.fields = append(narrowed.fields, f)
				}
			}
			p = append(p, narrowed)
		}
	}
	return p
}

// needRef records the section and field an input reference reaches.
func needRef(need map[string]map[string]bool, r ast.Ref, all *bool) {
	sec, ok := stringAt(r, 1)
	if !ok {
		*all = true
		return
	}
	fields, seen := need[sec]
	if seen && fields == nil {
		return
	}
	fld, ok := stringAt(r, 2)
	if !ok {
		need[sec] = nil
		return
	}
	if fields == nil {
		fields = map[string]bool{}
		need[sec] = fields
	}
	fields[fld] = true
}

func stringAt(r ast.Ref, i int) (string, bool) {
	if len(r) <= i {
		return "", false
	}
	s, ok := r[i].Value.(ast.String)
	return string(s), ok
}

// perRequestFields names the fields of the plan that differ on every
// request (input.time, input.decision_id, input.request.id,
// input.request.headers): a policy reading one cannot be cached.
func (p plan) perRequestFields() []string {
	var out []string
	for i := range p {
		sec := &p[i]
		name := string(sec.key.Value.(ast.String))
		if sec.scalar != nil {
			out = append(out, "input."+name)
			continue
		}
		for _, f := range sec.fields {
			if f.appendKey == nil {
				out = append(out, "input."+name+"."+string(f.key.Value.(ast.String)))
			}
		}
	}
	return out
}

// appendKey appends the decision-cache key of d: every field of the plan,
// in the plan's order, each self-delimiting. Two decisions with the same key
// build the same input document. The plan must have no per-request field.
func (p plan) appendKey(k []byte, d *authz.Decision) ([]byte, error) {
	if d.Caller == nil || d.Vault == nil {
		return nil, fmt.Errorf("%w: the decision has no caller or no vault", ErrEval)
	}
	var err error
	for i := range p {
		for j := range p[i].fields {
			if k, err = p[i].fields[j].appendKey(k, d); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}
