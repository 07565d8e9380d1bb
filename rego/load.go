package rego

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

//go:embed policy/*.rego
var shipped embed.FS

// shippedPrefix names the embedded files in messages and coverage as their
// place in the repository.
const shippedPrefix = "rego/"

// The packages an operator's files may declare, and the one rule each of
// deny and grant must be.
var (
	operatorPath = ast.MustParseRef("data.vaultwall.operator")
	denyRef      = ast.MustParseRef("data.vaultwall.operator.deny")
	grantRef     = ast.MustParseRef("data.vaultwall.operator.grant")
)

// forbidden are builtins no vaultwall policy may call: they do I/O on the
// request path (http.send, net.lookup_ip_addr) or reveal the process
// environment, which may hold secrets (opa.runtime).
var forbidden = map[string]string{
	"http.send":          "policies run on every request and may not do network I/O",
	"net.lookup_ip_addr": "policies run on every request and may not do network I/O",
	"opa.runtime":        "it exposes vaultwall's environment, which may hold secrets",
}

func capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = slices.DeleteFunc(slices.Clone(c.Builtins), func(b *ast.Builtin) bool {
		_, no := forbidden[b.Name]
		return no
	})
	return c
}

func parserOptions() ast.ParserOptions {
	return ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
}

// source is one .rego file.
type source struct {
	name     string
	text     []byte
	operator bool // from policy.dir or a test directory, not shipped
}

func (s source) isTest() bool { return strings.HasSuffix(s.name, "_test.rego") }

// shippedSources lists the embedded policy; tests only when asked.
func shippedSources(tests bool) ([]source, error) { return embeddedSources(shipped, "policy", tests) }

// embeddedSources lists the .rego files of an embedded directory; tests
// only when asked.
func embeddedSources(fsys embed.FS, root string, tests bool) ([]source, error) {
	var out []source
	err := fs.WalkDir(fsys, root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		if !tests && strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		b, err := fsys.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, source{name: shippedPrefix + p, text: b})
		return nil
	})
	return out, err
}

// dirSources lists the .rego files below dir, in a stable order. Hidden
// entries are skipped: a Kubernetes ConfigMap mount keeps its real files in
// ..data directories and exposes them through symlinks.
func dirSources(dir string, tests bool) ([]source, error) {
	var out []source
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() || filepath.Ext(p) != ".rego" {
			return nil
		}
		if !tests && strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, source{name: p, text: b, operator: true})
		return nil
	})
	if err != nil {
		return nil, &FileError{File: dir, Err: fmt.Errorf("%w: %v", ErrPolicyDir, err)}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// parse parses every source and checks what can be checked per file: the
// package an operator file may declare and the builtins it may call.
func parse(srcs []source) (map[string]*ast.Module, error) {
	var errs []error
	mods := make(map[string]*ast.Module, len(srcs))
	for _, s := range srcs {
		m, err := ast.ParseModuleWithOpts(s.name, string(s.text), parserOptions())
		if err != nil {
			errs = append(errs, astErrors(s.name, ErrSyntax, err)...)
			continue
		}
		if m == nil {
			errs = append(errs, &FileError{File: s.name, Err: fmt.Errorf("%w: the file holds no package", ErrSyntax)})
			continue
		}
		if s.operator {
			if err := checkNamespace(s, m); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, checkBuiltins(s.name, m)...)
		mods[s.name] = m
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return mods, nil
}

// checkNamespace keeps operator files out of the shipped policy and its
// data: a policy file must declare vaultwall.operator or a sub-package; a
// test file may also use vaultwall.operator_test or a package outside
// vaultwall.
func checkNamespace(s source, m *ast.Module) error {
	p := m.Package.Path
	if p.HasPrefix(operatorPath) {
		return nil
	}
	if s.isTest() {
		inVaultwall := len(p) > 1 && p[1].Value.Compare(ast.String("vaultwall")) == 0
		if !inVaultwall || (len(p) > 2 && p[2].Value.Compare(ast.String("operator_test")) == 0) {
			return nil
		}
	}
	want := "package vaultwall.operator (or a sub-package)"
	if s.isTest() {
		want += ", vaultwall.operator_test, or a package outside vaultwall"
	}
	return &FileError{File: s.name, Line: m.Package.Location.Row, Err: fmt.Errorf(
		"%w: %q may not be declared by an operator file: want %s, so that the shipped policy and its data cannot be redefined",
		ErrNamespace, strings.TrimPrefix(p.String(), "data."), want)}
}

func checkBuiltins(file string, m *ast.Module) []error {
	var errs []error
	report := func(name string, loc *ast.Location) {
		why, no := forbidden[name]
		if !no {
			return
		}
		line := 0
		if loc != nil {
			line = loc.Row
		}
		errs = append(errs, &FileError{File: file, Line: line, Err: fmt.Errorf("%w: %s is not available to vaultwall policies: %s", ErrCompile, name, why)})
	}
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if e.IsCall() {
			report(e.Operator().String(), e.Location)
		}
		return false
	})
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
			report(c[0].String(), t.Location)
		}
		return false
	})
	return errs
}

// compileMu serialises compilations: OPA's type checker (v1.22.3,
// ast.mergeTypes) updates type values that compilers share, so two
// compilations at once race — the enforced configuration and a shadow
// candidate reloading together, or a control-plane validation beside a
// reload.
var compileMu sync.Mutex

// compile compiles the modules with the settings vaultwall serves with,
// type-checking every reference to input against the input's schema
// (dataInputSchemaSet or controlInputSchemaSet): a field the document does
// not have, or a value used as the wrong type, fails to compile.
func compile(mods map[string]*ast.Module, schemas *ast.SchemaSet, printStatements bool) (*ast.Compiler, error) {
	if err := checkOperatorRules(mods); err != nil {
		return nil, err
	}
	if schemas == dataInputSchemaSet {
		annotateOperatorData(mods)
	}
	compileMu.Lock()
	defer compileMu.Unlock()
	c := ast.NewCompiler().
		WithCapabilities(capabilities()).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(printStatements).
		WithSchemas(schemas).
		WithUseTypeCheckAnnotations(true).
		SetErrorLimit(0)
	c.Compile(mods)
	if c.Failed() {
		return nil, joinErrors(astErrors("", ErrCompile, c.Errors))
	}
	return c, nil
}

// checkOperatorRules requires deny and grant to be plain set rules
// ("deny contains msg if …"): a complete rule, a function, an object or a
// package beneath them would change what "any deny" means. A deny or grant
// anywhere else below vaultwall.operator (package vaultwall.operator.hours,
// or a head such as hours.deny) is never read by the shipped policy, so it
// is refused rather than silently ignored. It runs before compiling, so
// that the message names the operator's file rather than the shipped rule
// that reads deny.
func checkOperatorRules(mods map[string]*ast.Module) error {
	var errs []error
	for _, m := range mods {
		for _, r := range m.Rules {
			full := m.Package.Path.Extend(r.Head.Ref())
			if name, ok := unreadRule(full); ok {
				errs = append(errs, &FileError{File: r.Location.File, Line: r.Location.Row, Err: fmt.Errorf(
					"%w: %s is never read: vaultwall reads only %s; declare it in package vaultwall.operator, or rename it",
					ErrRuleShape, strings.TrimPrefix(full.String(), "data."), strings.TrimPrefix(operatorPath.Append(ast.StringTerm(name)).String(), "data."))})
				continue
			}
			for _, ref := range []ast.Ref{denyRef, grantRef} {
				if !full.HasPrefix(ref) {
					continue
				}
				if full.Equal(ref) && r.Head.RuleKind() == ast.MultiValue && len(r.Head.Args) == 0 {
					continue
				}
				name := string(ref[len(ref)-1].Value.(ast.String))
				errs = append(errs, &FileError{File: r.Location.File, Line: r.Location.Row, Err: fmt.Errorf(
					"%w: %s must be a set rule, written `%s contains <message> if { … }`",
					ErrRuleShape, strings.TrimPrefix(ref.String(), "data."), name)})
			}
		}
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return joinErrors(errs)
	}
	return nil
}

// unreadRule reports whether the rule at full lies below vaultwall.operator
// and is named deny or grant (in any segment past vaultwall.operator) without
// being vaultwall.operator.deny or .grant (or below them, which the shape
// check refuses): such a rule would be silently ignored.
func unreadRule(full ast.Ref) (name string, ok bool) {
	if !full.HasPrefix(operatorPath) || full.HasPrefix(denyRef) || full.HasPrefix(grantRef) {
		return "", false
	}
	for _, t := range full[len(operatorPath):] {
		if s, isStr := t.Value.(ast.String); isStr && (s == "deny" || s == "grant") {
			return string(s), true
		}
	}
	return "", false
}

// astErrors turns OPA's parse or compile errors into FileErrors naming
// file:line.
func astErrors(file string, sentinel error, err error) []error {
	var list ast.Errors
	if !errors.As(err, &list) {
		return []error{&FileError{File: file, Err: fmt.Errorf("%w: %v", sentinel, err)}}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		msg := e.Message
		if e.Code == ast.TypeErr && e.Location != nil && len(e.Location.Text) > 0 && !strings.Contains(msg, string(e.Location.Text)) {
			// The expression, so that the message names the field.
			msg += " in `" + strings.Join(strings.Fields(string(e.Location.Text)), " ") + "`"
		}
		if e.Details != nil {
			// A type error's detail names the reference and the types
			// (left: input.vault.rbac, have: boolean …).
			var parts []string
			for _, l := range e.Details.Lines() {
				if l = strings.Join(strings.Fields(l), " "); l != "" && l != "^" {
					parts = append(parts, l)
				}
			}
			if len(parts) > 0 {
				msg += " (" + strings.Join(parts, "; ") + ")"
			}
		}
		fe := &FileError{File: file, Err: fmt.Errorf("%w: %s: %s", sentinel, e.Code, msg)}
		if e.Location != nil {
			if e.Location.File != "" {
				fe.File = e.Location.File
			}
			fe.Line = e.Location.Row
		}
		out = append(out, fe)
	}
	return out
}

func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
