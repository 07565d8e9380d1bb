package rego

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// Finding is one lint finding, named as Regal names its rules
// (category/rule).
type Finding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Category string `json:"category"`
	Rule     string `json:"rule"`
	Message  string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s/%s: %s", f.File, f.Line, f.Col, f.Category, f.Rule, f.Message)
}

// LintRules lists the rules Lint applies, by category/rule, with what
// each finds (README.md, "Linting policies").
var LintRules = map[string]string{
	"vaultwall/never-fires":          "a comparison of an input field with a value it never has (not in the schema's values, or upper case where the field is lower case): the rule can never be true",
	"vaultwall/raw-name-compared":    "input.operation.object_raw or input.request.path compared: a change of case or encoding sidesteps the rule; compare input.operation.object or .scope",
	"vaultwall/header-never-present": "input.request.headers read for a header the input never carries",
	"style/opa-fmt":                  "the file is not formatted as opa fmt formats it",
	"bugs/rule-shadows-builtin":      "a rule or function named as a built-in function",
	"bugs/constant-condition":        "a condition that is always true or always false",
	"bugs/not-equals-in-loop":        "x[_] != y: true when any element differs, not when none equals; write not y in x",
	"testing/print-or-trace-call":    "print or trace in a policy file (they belong in tests)",
	"style/prefer-snake-case":        "a rule or function name that is not snake_case",
}

// Lint checks the shipped data-plane policy and the operator files of dirs,
// and the control-plane policy (the shipped one, or controlDir's, as
// controlPlane.policyDir), tests included: first as New and NewControl do
// (a file that does not load is an error, not a finding), then with the
// rules of LintRules. A `# regal ignore:<rule>` comment on the line of a
// finding, or the line above, silences it.
func Lint(dirs []string, controlDir string) ([]Finding, error) {
	srcs, err := shippedSources(true)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		ds, err := dirSources(d, true)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, ds...)
	}
	mods, err := parse(srcs)
	if err != nil {
		return nil, err
	}
	if _, err := compile(mods, dataInputSchemaSet, true); err != nil {
		return nil, err
	}
	ctl, err := controlSources(controlDir, true)
	if err != nil {
		return nil, err
	}
	ctlMods, err := parse(ctl)
	if err != nil {
		return nil, err
	}
	if _, err := compile(ctlMods, controlInputSchemaSet, true); err != nil {
		return nil, err
	}
	var out []Finding
	for _, s := range srcs {
		out = append(out, lintFile(s, mods[s.name], true)...)
	}
	for _, s := range ctl {
		out = append(out, lintFile(s, ctlMods[s.name], false)...)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Rule, b.Rule))
	})
	return out, nil
}

// lintFile applies every rule to one file; data says whether its input is
// the data plane's.
func lintFile(s source, m *ast.Module, data bool) []Finding {
	var out []Finding
	add := func(loc *ast.Location, rule, format string, args ...any) {
		cat, name, _ := strings.Cut(rule, "/")
		f := Finding{File: s.name, Category: cat, Rule: name, Message: fmt.Sprintf(format, args...)}
		if loc != nil {
			f.Line, f.Col = loc.Row, loc.Col
		}
		out = append(out, f)
	}

	if formatted, err := format.SourceWithOpts(s.name, s.text, format.Opts{RegoVersion: ast.RegoV1}); err == nil && !bytes.Equal(formatted, s.text) {
		add(&ast.Location{Row: 1, Col: 1}, "style/opa-fmt", "the file is not formatted: run opa fmt -w %s", s.name)
	}

	builtins := map[string]bool{}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		builtins[b.Name] = true
	}
	for _, r := range m.Rules {
		name := r.Head.Ref().String()
		if builtins[name] {
			add(r.Location, "bugs/rule-shadows-builtin", "%s is also a built-in function: rename the rule", name)
		}
		for _, t := range r.Head.Ref() {
			if str, ok := t.Value.(ast.String); ok && !snakeCase(string(str)) {
				add(r.Location, "style/prefer-snake-case", "%q: name rules in snake_case", string(str))
			} else if v, ok := t.Value.(ast.Var); ok && !snakeCase(string(v)) {
				add(r.Location, "style/prefer-snake-case", "%q: name rules in snake_case", string(v))
			}
		}
	}

	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if !s.isTest() && e.IsCall() {
			if op := e.Operator().String(); op == "print" || op == "trace" {
				add(e.Location, "testing/print-or-trace-call", "%s call in a policy file: keep it in tests", op)
			}
		}
		if c, ok := constantCondition(e); ok {
			add(e.Location, "bugs/constant-condition", "`%s` is always %v", src(e), c)
		}
		if e.IsCall() && e.Operator().Equal(ast.NotEqual.Ref()) {
			for _, t := range e.Operands() {
				if r, ok := t.Value.(ast.Ref); ok && hasWildcard(r) {
					add(e.Location, "bugs/not-equals-in-loop", "`%s` holds when any element differs: to say that none equals, write `not … in …`", src(e))
					break
				}
			}
		}
		if data {
			lintInputExpr(e, add)
		}
		return false
	})

	return ignored(s.text, out)
}

// lintInputExpr applies the vaultwall rules to one expression.
func lintInputExpr(e *ast.Expr, add func(*ast.Location, string, string, ...any)) {
	// Refs to input anywhere in the expression.
	ast.WalkRefs(e, func(r ast.Ref) bool {
		if !r.HasPrefix(ast.InputRootRef) {
			return false
		}
		if sec, ok := stringAt(r, 1); ok && sec == "request" {
			if f, ok := stringAt(r, 2); ok && f == "headers" {
				if h, ok := stringAt(r, 3); ok && !slices.Contains(inputHeaders, strings.ToLower(h)) {
					add(e.Location, "vaultwall/header-never-present", "input.request.headers[%q] is never present: the input carries only %s", h, strings.Join(inputHeaders, ", "))
				} else if ok && h != strings.ToLower(h) {
					add(e.Location, "vaultwall/header-never-present", "input.request.headers[%q] is never present: header names are lower case", h)
				}
			}
		}
		return false
	})
	if !e.IsCall() {
		return
	}
	op := e.Operator()
	compare := op.Equal(ast.Equal.Ref()) || op.Equal(ast.Equality.Ref()) || op.Equal(ast.NotEqual.Ref()) ||
		op.Equal(ast.Member.Ref()) || slices.ContainsFunc([]*ast.Builtin{ast.StartsWith, ast.EndsWith, ast.Contains, ast.RegexMatch, ast.GlobMatch}, func(b *ast.Builtin) bool { return op.Equal(b.Ref()) })
	if !compare {
		return
	}
	for _, t := range e.Operands() {
		r, ok := t.Value.(ast.Ref)
		if !ok {
			continue
		}
		switch path := inputPath(r); path {
		case "operation.object_raw", "request.path":
			add(e.Location, "vaultwall/raw-name-compared", "input.%s is compared: it keeps the client's spelling, so a change of case sidesteps the rule; compare input.operation.object (or .scope), which are lower case", path)
		}
	}
	// A field compared for equality (or membership) with values it never has.
	if op.Equal(ast.NotEqual.Ref()) || (!op.Equal(ast.Equal.Ref()) && !op.Equal(ast.Equality.Ref()) && !op.Equal(ast.Member.Ref())) {
		return
	}
	ops := e.Operands()
	if len(ops) != 2 {
		return
	}
	field, values := ops[0], ops[1]
	if op.Equal(ast.Member.Ref()) {
		values = ops[1]
	} else if _, ok := field.Value.(ast.Ref); !ok {
		field, values = values, field
	}
	r, ok := field.Value.(ast.Ref)
	if !ok {
		return
	}
	path := inputPath(r)
	if path == "" {
		return
	}
	var consts []string
	switch v := values.Value.(type) {
	case ast.String:
		consts = []string{string(v)}
	case ast.Set:
		v.Foreach(func(t *ast.Term) { consts = append(consts, stringOr(t)) })
	case *ast.Array:
		v.Foreach(func(t *ast.Term) { consts = append(consts, stringOr(t)) })
	default:
		return
	}
	if len(consts) == 0 || slices.Contains(consts, "\x00") {
		return
	}
	if enum := inputEnum(path); enum != nil {
		if !slices.ContainsFunc(consts, func(c string) bool { return slices.Contains(enum, c) }) {
			add(e.Location, "vaultwall/never-fires", "`%s` is never true: input.%s is one of %s", src(e), path, quoteAll(enum))
		}
		return
	}
	if path == "operation.object" || path == "operation.scope" {
		if !slices.ContainsFunc(consts, func(c string) bool { return c == strings.ToLower(c) }) {
			add(e.Location, "vaultwall/never-fires", "`%s` is never true: input.%s is lower case; write the name in lower case", src(e), path)
		}
	}
	return
}

// src is an expression as written.
func src(e *ast.Expr) string {
	if e.Location != nil && len(e.Location.Text) > 0 {
		return strings.Join(strings.Fields(string(e.Location.Text)), " ")
	}
	return e.String()
}

// inputPath is "section.field" for input.section.field, "" otherwise.
func inputPath(r ast.Ref) string {
	if !r.HasPrefix(ast.InputRootRef) || len(r) != 3 {
		if len(r) == 4 && r.HasPrefix(ast.InputRootRef) {
			a, _ := stringAt(r, 1)
			b, _ := stringAt(r, 2)
			c, ok := stringAt(r, 3)
			if ok && a == "source" && b == "firewall" {
				return a + "." + b + "." + c
			}
		}
		return ""
	}
	a, ok1 := stringAt(r, 1)
	b, ok2 := stringAt(r, 2)
	if !ok1 || !ok2 {
		return ""
	}
	return a + "." + b
}

// inputEnum is the schema's list of values for a field, nil when it has none.
func inputEnum(path string) []string {
	s := InputSchema()
	for _, k := range strings.Split(path, ".") {
		p, ok := s["properties"].(props)
		if !ok {
			return nil
		}
		if s, ok = p[k]; !ok {
			return nil
		}
	}
	e, _ := s["enum"].([]string)
	return e
}

func stringOr(t *ast.Term) string {
	if s, ok := t.Value.(ast.String); ok {
		return string(s)
	}
	return "\x00" // not a constant string: the comparison may hold
}

func quoteAll(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func hasWildcard(r ast.Ref) bool {
	for _, t := range r[1:] {
		if v, ok := t.Value.(ast.Var); ok && v.IsWildcard() {
			return true
		}
	}
	return false
}

// constantCondition reports an expression whose value does not depend on
// anything: a scalar (`true`, `1`) or a comparison of two constants.
func constantCondition(e *ast.Expr) (bool, bool) {
	// A rule without a body has a generated `true` one, located at the
	// rule: only a condition written as such counts.
	if e.Negated || len(e.With) > 0 || e.Generated || e.Location == nil {
		return false, false
	}
	switch t := e.Terms.(type) {
	case *ast.Term:
		if string(e.Location.Text) != e.String() {
			return false, false
		}
		if b, ok := t.Value.(ast.Boolean); ok {
			return bool(b), true
		}
		if ast.IsScalar(t.Value) {
			return true, true
		}
	case []*ast.Term:
		if len(t) != 3 {
			return false, false
		}
		op := t[0].Value.(ast.Ref)
		if !op.Equal(ast.Equal.Ref()) && !op.Equal(ast.NotEqual.Ref()) {
			return false, false
		}
		if ast.IsScalar(t[1].Value) && ast.IsScalar(t[2].Value) {
			eq := t[1].Value.Compare(t[2].Value) == 0
			return eq == op.Equal(ast.Equal.Ref()), true
		}
	}
	return false, false
}

func snakeCase(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ignored drops findings silenced by a `# regal ignore:<rule>` comment on
// their line or the line above (Regal's inline ignore directive).
func ignored(text []byte, fs []Finding) []Finding {
	lines := strings.Split(string(text), "\n")
	directive := func(line int, rule string) bool {
		if line < 1 || line > len(lines) {
			return false
		}
		_, after, ok := strings.Cut(lines[line-1], "# regal ignore:")
		if !ok {
			return false
		}
		for _, r := range strings.Split(strings.Fields(after + " ")[0], ",") {
			if r == rule {
				return true
			}
		}
		return false
	}
	return slices.DeleteFunc(fs, func(f Finding) bool {
		return directive(f.Line, f.Rule) || directive(f.Line-1, f.Rule)
	})
}
