package route

import (
	"fmt"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
)

// Router classifies requests against the table. It is immutable once built
// and safe for concurrent use.
type Router struct {
	root  node
	depth int // segments in the longest pattern
}

var _ authz.Classifier = (*Router)(nil)

// method is an HTTP method of the table, as a small index.
type method uint8

const (
	mNone method = iota
	mGet
	mPut
	mPatch
	mDelete
	mPost
	nMethods
)

var methodNames = [nMethods]string{"", "GET", "PUT", "PATCH", "DELETE", "POST"}

func methodOf(s string) method {
	switch s {
	case "GET":
		return mGet
	case "PUT":
		return mPut
	case "PATCH":
		return mPatch
	case "DELETE":
		return mDelete
	case "POST":
		return mPost
	}
	return mNone
}

// methodSet is a bit set of methods.
type methodSet uint8

func (s methodSet) String() string {
	var b strings.Builder
	for m := mGet; m < nMethods; m++ {
		if s&(1<<m) != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(methodNames[m])
		}
	}
	return b.String()
}

// kind is what a placeholder segment accepts.
type kind uint8

const (
	kindName    kind = iota + 1 // Key Vault object name: ^[0-9a-zA-Z-]{1,127}$
	kindVersion                 // 32 hex characters, or empty
	kindAlnum                   // storage account / SAS definition: ^[0-9a-zA-Z]{1,127}$
)

// MaxNameLen bounds object names (Key Vault's limit; the storage pattern has
// none, Azure storage account names are at most 24).
const MaxNameLen = 127

func (k kind) valid(s string) bool {
	switch k {
	case kindName:
		return validName(s)
	case kindVersion:
		return s == "" || validVersion(s)
	case kindAlnum:
		return validAlnum(s)
	}
	return false
}

func (k kind) rule() string {
	switch k {
	case kindName:
		return "1 to 127 letters, digits and '-'"
	case kindVersion:
		return "32 hexadecimal characters"
	default:
		return "1 to 127 letters and digits"
	}
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func validAlnum(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// node is one position in the segment tree.
type node struct {
	lits   []litEdge
	params []paramEdge
	routes [nMethods]*compiled
	allow  methodSet
}

type litEdge struct {
	text string // lower case, as in the table
	// contested: a placeholder of the same node also accepts text, so the
	// segment could name an object ("contacts" vs a certificate named so).
	contested bool
	next      *node
}

type paramEdge struct {
	kind        kind
	placeholder string // "certificate-name"
	label       string // "certificate name"
	next        *node
}

// compiled is a route ready to answer: the Operation template and where its
// object and version sit among the path segments.
type compiled struct {
	op       authz.Operation
	obj, ver int    // segment indexes, -1 for none
	family   string // scope prefix ("secrets") for object-scoped routes
	scope    string // "/secrets/" for concatenation when the case differs
}

// New compiles the table. It panics if the table itself is inconsistent,
// which the package tests rule out.
func New() *Router {
	r := &Router{}
	for i := range table {
		if err := r.add(&table[i]); err != nil {
			panic("route: " + err.Error())
		}
	}
	r.root.markContested()
	return r
}

func (r *Router) add(rt *Route) error {
	m := methodOf(rt.Method)
	if m == mNone {
		return fmt.Errorf("%s %s: unknown method", rt.Method, rt.Pattern)
	}
	if !strings.HasPrefix(rt.Pattern, "/") {
		return fmt.Errorf("%s %s: pattern must start with '/'", rt.Method, rt.Pattern)
	}
	c := &compiled{
		op: authz.Operation{
			Plane: authz.PlaneData, Resource: rt.Resource, Permission: rt.Permission,
			DataAction: rt.DataAction, Name: rt.Name, Method: rt.Method, Anonymous: rt.Anonymous,
		},
		obj: -1, ver: -1,
	}
	segs := strings.Split(rt.Pattern[1:], "/")
	r.depth = max(r.depth, len(segs))
	n := &r.root
	for i, s := range segs {
		if ph, ok := strings.CutPrefix(s, "{"); ok {
			ph, ok = strings.CutSuffix(ph, "}")
			if !ok {
				return fmt.Errorf("%s %s: bad placeholder %q", rt.Method, rt.Pattern, s)
			}
			k, label := kindName, strings.TrimSuffix(ph, "-name")
			switch {
			case strings.HasSuffix(ph, "-version"):
				k, label = kindVersion, strings.TrimSuffix(ph, "-version")+" version"
				c.ver = i
			case ph == "storage-account-name":
				k, label = kindAlnum, "storage account name"
			case ph == "sas-definition-name":
				k, label = kindAlnum, "SAS definition name"
			default:
				label += " name"
			}
			if k != kindVersion && c.obj < 0 {
				c.obj = i
			}
			n = n.param(k, ph, label)
			continue
		}
		if s == "" || s != strings.ToLower(s) {
			return fmt.Errorf("%s %s: literal segments must be non-empty lower case", rt.Method, rt.Pattern)
		}
		n = n.lit(s)
	}
	if n.routes[m] != nil {
		return fmt.Errorf("%s %s: duplicate of %s", rt.Method, rt.Pattern, n.routes[m].op.Name)
	}
	if rt.Scope != "" {
		c.family = segs[0]
		c.scope = "/" + segs[0] + "/"
		if rt.Scope != c.scope+segs[1] || c.obj != 1 {
			return fmt.Errorf("%s %s: scope %q must be /<family>/<object>", rt.Method, rt.Pattern, rt.Scope)
		}
	}
	n.routes[m] = c
	n.allow |= 1 << m
	return nil
}

func (n *node) lit(s string) *node {
	for i := range n.lits {
		if n.lits[i].text == s {
			return n.lits[i].next
		}
	}
	next := &node{}
	n.lits = append(n.lits, litEdge{text: s, next: next})
	return next
}

func (n *node) param(k kind, placeholder, label string) *node {
	for i := range n.params {
		if n.params[i].placeholder == placeholder {
			return n.params[i].next
		}
	}
	next := &node{}
	n.params = append(n.params, paramEdge{kind: k, placeholder: placeholder, label: label, next: next})
	return next
}

func (n *node) markContested() {
	for i := range n.lits {
		e := &n.lits[i]
		for _, p := range n.params {
			// The kinds are case-symmetric, so checking the lower-case
			// literal covers every case variant.
			if p.kind.valid(e.text) {
				e.contested = true
			}
		}
		e.next.markContested()
	}
	for _, p := range n.params {
		p.next.markContested()
	}
}

// walk state: what went wrong, for the refusal, when nothing matched.
type walk struct {
	allow     methodSet // methods the path would accept
	failAt    int       // deepest segment no edge accepted, -1 for none
	failNode  *node
	ambiguous int // segment that reads both as a literal and a name, -1 for none
}

// match finds the route for m and segs. Literal segments beat placeholders
// (Key Vault's precedence); when a literal's subtree has no route for m, the
// placeholder reading is tried, so "PUT /secrets/restore" sets a secret
// named restore.
func (n *node) match(segs []string, i int, m method, w *walk) *compiled {
	if i == len(segs) {
		if c := n.routes[m]; c != nil {
			return c
		}
		w.allow |= n.allow
		return nil
	}
	s := segs[i]
	accepted := false
	for k := range n.lits {
		e := &n.lits[k]
		if !strings.EqualFold(s, e.text) {
			continue
		}
		accepted = true
		c := e.next.match(segs, i+1, m, w)
		if c == nil || w.ambiguous >= 0 {
			break
		}
		// A case variant of a contested literal ("Contacts") is a literal
		// to a case-insensitive server and a name to a case-sensitive one.
		// If both readings are operations, refuse rather than guess.
		if e.contested && s != e.text && n.matchParams(segs, i, m) != nil {
			w.ambiguous = i
			return nil
		}
		return c
	}
	if w.ambiguous >= 0 {
		return nil
	}
	for k := range n.params {
		p := &n.params[k]
		if !p.kind.valid(s) {
			continue
		}
		accepted = true
		if c := p.next.match(segs, i+1, m, w); c != nil || w.ambiguous >= 0 {
			return c
		}
	}
	if !accepted && i > w.failAt {
		w.failAt, w.failNode = i, n
	}
	return nil
}

// matchParams tries only the placeholder readings of segs[i], keeping its
// bookkeeping (allowed methods, failures) out of the caller's walk.
func (n *node) matchParams(segs []string, i int, m method) *compiled {
	probe := walk{failAt: len(segs), ambiguous: -1}
	for k := range n.params {
		p := &n.params[k]
		if p.kind.valid(segs[i]) {
			if c := p.next.match(segs, i+1, m, &probe); c != nil {
				return c
			}
		}
	}
	return nil
}

// Classify maps the request to its Key Vault operation, or refuses it.
func (r *Router) Classify(req *authz.Request) (authz.Operation, *authz.Denial) {
	if req == nil {
		return authz.Operation{}, denyURI("The request is empty.")
	}
	var t target
	if den := t.parse(req.Path); den != nil {
		return authz.Operation{}, den
	}
	m, override, den := effectiveMethod(req)
	if den != nil {
		return authz.Operation{}, den
	}
	if t.nsegs > r.depth {
		return authz.Operation{}, denyUnknown(req.Method, override, t.path)
	}
	segs := t.segs[:t.nsegs]
	w := walk{failAt: -1, ambiguous: -1}
	c := r.root.match(segs, 0, m, &w)
	if c == nil {
		return authz.Operation{}, w.denial(req.Method, override, t.path, segs)
	}
	if override != "" {
		// An upstream that ignores X-HTTP-METHOD would run the POST: refuse
		// when that is an operation too, so both readings cannot differ.
		probe := walk{failAt: -1, ambiguous: -1}
		if p := r.root.match(segs, 0, mPost, &probe); p != nil {
			return authz.Operation{}, &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerAmbiguous,
				Message: fmt.Sprintf("X-HTTP-METHOD: %s cannot be used on 'POST %s': that request is itself the operation %s.",
					override, t.path, p.op.Name)}
		}
	}
	op := c.op
	op.APIVersion = t.apiVersion
	if c.obj >= 0 {
		// Key Vault's object names are case-insensitive: /secrets/PROD-ROOT
		// is the secret prod-root. Object and Scope are canonical (lower
		// case), so that no rule can be sidestepped by a name's case;
		// ObjectRaw keeps the client's spelling.
		op.ObjectRaw = segs[c.obj]
		op.Object = strings.ToLower(op.ObjectRaw) // no allocation when already lower case
	}
	if c.ver >= 0 {
		op.Version = segs[c.ver]
	}
	if c.family != "" {
		if segs[0] == c.family && op.Object == op.ObjectRaw {
			// "/secrets/<name>" is a prefix of the path: no allocation.
			op.Scope = t.path[:2+len(segs[0])+len(segs[1])]
		} else {
			op.Scope = c.scope + op.Object
		}
	}
	return op, nil
}

// effectiveMethod applies X-HTTP-METHOD. It returns the override ("" for
// none) so messages can name it.
func effectiveMethod(req *authz.Request) (method, string, *authz.Denial) {
	for _, h := range [...]string{"x-http-method-override", "x-method-override"} {
		if _, ok := req.Headers[h]; ok {
			return mNone, "", &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidMethodOverride,
				Message: "The " + h + " header is not supported: Key Vault honours only X-HTTP-METHOD (PATCH or DELETE on a POST)."}
		}
	}
	v, ok := req.Headers["x-http-method"]
	if !ok {
		return methodOf(req.Method), "", nil
	}
	if req.Method != "POST" {
		return mNone, "", &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidMethodOverride,
			Message: "The X-HTTP-METHOD header is only allowed on POST requests, not on " + quoteMethod(req.Method) + "."}
	}
	switch v {
	case "PATCH":
		return mPatch, v, nil
	case "DELETE":
		return mDelete, v, nil
	}
	if len(v) > 32 {
		v = v[:32] + "…"
	}
	return mNone, "", &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidMethodOverride,
		Message: fmt.Sprintf("The X-HTTP-METHOD header value %q is not supported: it must be PATCH or DELETE.", v)}
}

// denial explains why nothing matched, most specific reason first.
func (w *walk) denial(verb, override, path string, segs []string) *authz.Denial {
	if override != "" {
		verb = override
	}
	switch {
	case w.ambiguous >= 0:
		s := segs[w.ambiguous]
		return &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerAmbiguous,
			Message: fmt.Sprintf("The request URI is ambiguous: '%s' in '%s' reads both as the reserved segment '%s' and as an object name. Send the reserved segment in lower case.",
				s, path, strings.ToLower(s))}
	case w.allow != 0:
		return &authz.Denial{Status: 405, Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("The method %s is not allowed on '%s'. Allowed: %s.", quoteMethod(verb), path, w.allow)}
	case w.failNode != nil:
		return w.failNode.refuse(verb, path, segs[w.failAt])
	}
	return denyUnknown(verb, "", path)
}

// refuse explains why no edge of n accepts segment s.
func (n *node) refuse(verb, path, s string) *authz.Denial {
	if s == "" {
		return denyURI("The request URI '" + path + "' has an empty path segment where none is allowed: only an object version may be empty.")
	}
	if len(n.params) == 0 {
		return denyUnknown(verb, "", path)
	}
	p := n.params[0]
	// Where a version competes with operation names (/keys/{n}/…), a bad
	// segment is as likely a misspelt operation: say both.
	if p.kind != kindVersion || len(n.lits) == 0 {
		what := "name"
		if p.kind == kindVersion {
			what = "version"
		}
		return &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidName,
			Message: fmt.Sprintf("The request URI contains an invalid %s: %s. A %s is %s.", what, s, p.label, p.kind.rule())}
	}
	lits := make([]string, len(n.lits))
	for i, e := range n.lits {
		lits[i] = e.text
	}
	return &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidName,
		Message: fmt.Sprintf("The request URI '%s' contains '%s', which is neither one of %s nor a valid %s (%s).",
			path, s, strings.Join(lits, ", "), p.label, p.kind.rule())}
}

func denyUnknown(verb, override, path string) *authz.Denial {
	if override != "" {
		verb = override
	}
	return &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerUnknownOperation,
		Message: fmt.Sprintf("The request %s %s is not a Key Vault data-plane operation.", quoteMethod(verb), path)}
}

// quoteMethod prints a method for a message, escaping anything odd.
func quoteMethod(m string) string {
	if methodOf(m) != mNone {
		return m
	}
	if len(m) > 16 {
		m = m[:16] + "…"
	}
	return fmt.Sprintf("%q", m)
}
