package rego

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/open-policy-agent/opa/v1/ast"
)

// compiled is what New derives from the policy sources alone: the
// compiled modules, the input plan, why the verdicts may not be cached,
// and the operator rules sample checks evaluate one by one. Policies built
// from the same sources share one (many vaults per process, one reload
// after another that changed only the configuration); the data, the store
// and the queries prepared against it stay per Policy.
//
// Nothing in a compiled is written after compileShared returns: OPA
// prepares a query on a copy of the compiler (ast.Compiler.QueryCompiler)
// and evaluates without writing to it, and rego.PrepareForEval compiles
// again only when given modules or bundles, which New never gives it.
type compiled struct {
	compiler *ast.Compiler
	files    []string // operator files, sorted by path
	input    plan
	nocache  string // why verdicts are not cached; "" when they may be
	rules    []ruleRef
	// caps are the capabilities each query is prepared with, built once.
	caps *ast.Capabilities
}

// ruleRef is an operator rule (not a function), by path, sorted.
type ruleRef struct {
	path ast.Ref
	loc  *ast.Location
	file string
}

// The compilations alive, by the digest of their sources. An entry holds
// its compilation weakly: it lives as long as a Policy (or a New under
// way) holds it, and the entry goes with it, so the map never holds more
// than the distinct sources of the Policies alive. Failures are never
// kept: a source that does not parse or compile is compiled again on
// every New, and reports the same file:line.
var shared = struct {
	sync.Mutex
	m map[sourceDigest]weak.Pointer[compiled]
}{m: map[sourceDigest]weak.Pointer[compiled]{}}

// sourceDigest identifies what a compilation depends on: every source's
// name, origin and bytes, and the settings New compiles with.
type sourceDigest [sha256.Size]byte

// compileSettings names the settings New compiles with (the data-input
// schema set, capabilities without the forbidden builtins, Rego v1, no
// print statements). They are fixed for the binary; naming them in the
// digest keeps a future setting from reusing a compilation made without it.
const compileSettings = "vaultwall/rego.New: schemas=data-input; capabilities=this-version-minus-forbidden; rego=v1; print=false\x00"

func digestSources(srcs []source) sourceDigest {
	h := sha256.New()
	h.Write([]byte(compileSettings))
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, s := range srcs {
		field([]byte(s.name))
		if s.operator {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
		field(s.text)
	}
	var d sourceDigest
	h.Sum(d[:0])
	return d
}

// compilations counts the compilations compileShared made (tests: a New
// that shares one makes none).
var compilations atomic.Int64

// compileShared compiles the parsed sources of digest d and keeps the
// result for every Policy built from the same sources while one is alive.
// files are the operator files among them.
func compileShared(d sourceDigest, mods map[string]*ast.Module, files []string) (*compiled, error) {
	compiler, err := compile(mods, dataInputSchemaSet, false)
	if err != nil {
		return nil, err
	}
	compilations.Add(1)
	c := &compiled{compiler: compiler, files: files, input: planFor(compiler)}
	c.nocache = uncacheable(compiler, c.input)
	c.rules = operatorRuleRefs(compiler, files)
	c.caps = capabilities()
	return storeShared(d, c), nil
}

func lookupShared(d sourceDigest) *compiled {
	shared.Lock()
	defer shared.Unlock()
	if w, ok := shared.m[d]; ok {
		return w.Value() // nil once collected: compile again
	}
	return nil
}

// storeShared keeps c under d, unless another New stored a compilation
// still alive meanwhile: that one is returned instead, so that Policies
// from the same sources share one.
func storeShared(d sourceDigest, c *compiled) *compiled {
	shared.Lock()
	defer shared.Unlock()
	if w, ok := shared.m[d]; ok {
		if cur := w.Value(); cur != nil {
			return cur
		}
	}
	w := weak.Make(c)
	shared.m[d] = w
	runtime.AddCleanup(c, dropShared, sharedEntry{d, w})
	return c
}

type sharedEntry struct {
	d sourceDigest
	w weak.Pointer[compiled]
}

// dropShared removes a collected compilation's entry, unless it was
// replaced by a newer one.
func dropShared(e sharedEntry) {
	shared.Lock()
	defer shared.Unlock()
	if shared.m[e.d] == e.w {
		delete(shared.m, e.d)
	}
}

// operatorRuleRefs lists each rule (not function) the operator files
// define, sorted by path; a path defined in several files is listed once,
// at the first file (by path) that defines it.
func operatorRuleRefs(c *ast.Compiler, files []string) []ruleRef {
	if len(files) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var rules []ruleRef
	for _, name := range files {
		m := c.Modules[name]
		if m == nil {
			continue
		}
		for _, r := range m.Rules {
			path := r.Path()
			if len(r.Head.Args) > 0 || seen[path.String()] {
				continue
			}
			seen[path.String()] = true
			rules = append(rules, ruleRef{path: path, loc: r.Location, file: name})
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].path.Compare(rules[j].path) < 0 })
	return rules
}
