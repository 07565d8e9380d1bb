package rego

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ControlQuery is the document the control plane asks its policy for:
// {"allow": bool, "reason": string}.
const ControlQuery = "data.vaultwall.control.decision"

//go:embed control/*.rego
var shippedControl embed.FS

// controlTimeout bounds one control-plane decision.
const controlTimeout = 250 * time.Millisecond

// ControlPolicy authorizes calls to the management API. It is immutable and
// safe for concurrent use.
type ControlPolicy struct {
	query oparego.PreparedEvalQuery
	files []string
}

// ControlInput is the control-plane policy's input document. Its JSON
// Schema (ControlInputSchema, rego/schema/control-input.json) is generated
// from these fields, and the policy is type-checked against it.
type ControlInput struct {
	Method      string              `json:"method" doc:"the RPC, e.g. UpdateAccessPolicies"`
	Action      string              `json:"action" doc:"vault/read, networkAcls/write, accessPolicies/write, roleAssignments/write, explain/action, …"`
	ReadOnly    bool                `json:"readOnly" doc:"true for methods that change nothing"`
	Vault       string              `json:"vault" doc:"the vault the call is about, as vault.name spells it: the request's vault field, or the only vault when it names none; empty when it names none and several vaults are served (Explain selects by host then)"`
	Token       *ControlToken       `json:"token,omitempty" doc:"the verified management token's caller, when one was sent"`
	Certificate *ControlCertificate `json:"certificate,omitempty" doc:"the verified client certificate, when one was sent"`
}

// ControlToken is the caller of a verified management token.
type ControlToken struct {
	ObjectID      string         `json:"objectId" doc:"oid"`
	ApplicationID string         `json:"applicationId" doc:"appid or azp"`
	TenantID      string         `json:"tenantId" doc:"tid"`
	Roles         []string       `json:"roles" doc:"roles"`
	Groups        []string       `json:"groups" doc:"groups"`
	Scopes        []string       `json:"scopes" doc:"scp split on spaces"`
	Claims        map[string]any `json:"claims" doc:"every verified claim (never the token)"`
}

// ControlCertificate is a verified client certificate.
type ControlCertificate struct {
	Principal string `json:"principal" doc:"the certificate's principal (SAN)"`
	Admin     bool   `json:"admin" doc:"it matches controlPlane.adminPrincipals"`
}

// value converts the input for OPA: empty lists and claims are present, as
// the schema says.
func (in ControlInput) value() (ast.Value, error) {
	if t := in.Token; t != nil {
		c := *t
		c.Roles, c.Groups, c.Scopes = nonNil(c.Roles), nonNil(c.Groups), nonNil(c.Scopes)
		if c.Claims == nil {
			c.Claims = map[string]any{}
		}
		in.Token = &c
	}
	return ast.InterfaceToValue(in)
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// ControlDecision is the control-plane policy's answer.
type ControlDecision struct {
	Allow  bool
	Reason string
}

// NewControl compiles the shipped control-plane policy, or, when dir is
// set, the .rego files of dir instead (package vaultwall.control; tests in
// *_test.rego are skipped). It then evaluates samples: a policy that lets
// an anonymous caller in, or cannot answer, is refused.
func NewControl(ctx context.Context, dir string) (*ControlPolicy, error) {
	srcs, err := controlSources(dir, false)
	if err != nil {
		return nil, err
	}
	mods, err := parse(srcs)
	if err != nil {
		return nil, err
	}
	compiler, err := compile(mods, controlInputSchemaSet, false)
	if err != nil {
		return nil, err
	}
	pq, err := oparego.New(
		oparego.Query(ControlQuery),
		oparego.Compiler(compiler),
		oparego.StrictBuiltinErrors(true),
		oparego.Capabilities(capabilities()),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, joinErrors(astErrors("", ErrCompile, err))
	}
	p := &ControlPolicy{query: pq}
	for _, s := range srcs {
		p.files = append(p.files, s.name)
	}
	// A policy that admits a caller nobody authenticated is broken.
	d, err := p.Authorize(ctx, ControlInput{Method: "GetVault", Action: "vault/read", ReadOnly: true})
	if err != nil {
		return nil, &FileError{File: dirOr(dir), Err: fmt.Errorf("%w: %v", ErrSample, err)}
	}
	if d.Allow {
		return nil, &FileError{File: dirOr(dir), Err: fmt.Errorf("%w: it allows a caller with neither token nor certificate", ErrSample)}
	}
	return p, nil
}

func dirOr(dir string) string {
	if dir == "" {
		return shippedPrefix + "control"
	}
	return dir
}

// Files are the policy files in force.
func (p *ControlPolicy) Files() []string { return p.files }

// Authorize evaluates the policy for one call. Anything but one object with
// a boolean allow is an error: the caller is then refused.
func (p *ControlPolicy) Authorize(ctx context.Context, input ControlInput) (ControlDecision, error) {
	v, err := input.value()
	if err != nil {
		return ControlDecision{}, fmt.Errorf("%w: the input: %w", ErrEval, err)
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, oparego.EvalParsedInput(v))
	if err != nil {
		if topdown.IsCancel(err) || ctx.Err() != nil {
			return ControlDecision{}, fmt.Errorf("%w of %v", ErrTimeout, controlTimeout)
		}
		return ControlDecision{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return ControlDecision{}, fmt.Errorf("%w: %s is undefined", ErrResult, ControlQuery)
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return ControlDecision{}, fmt.Errorf("%w: %s is %T, want an object", ErrResult, ControlQuery, rs[0].Expressions[0].Value)
	}
	allow, ok := obj["allow"].(bool)
	if !ok {
		return ControlDecision{}, fmt.Errorf("%w: %s.allow is not a boolean", ErrResult, ControlQuery)
	}
	reason, _ := obj["reason"].(string)
	return ControlDecision{Allow: allow, Reason: reason}, nil
}

// controlSources lists the shipped control policy, or dir's files.
func controlSources(dir string, tests bool) ([]source, error) {
	if dir == "" {
		return embeddedSources(shippedControl, "control", tests)
	}
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
		if e.IsDir() || filepath.Ext(p) != ".rego" || (!tests && strings.HasSuffix(p, "_test.rego")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, source{name: p, text: b})
		return nil
	})
	if err != nil {
		return nil, &FileError{File: dir, Err: fmt.Errorf("%w: %v", ErrPolicyDir, err)}
	}
	if len(out) == 0 {
		return nil, &FileError{File: dir, Err: fmt.Errorf("%w: no .rego file", ErrPolicyDir)}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// TestControl runs the Rego unit tests of the control-plane policy (the
// shipped one, or dir's) and returns the failures, one line each.
func TestControl(ctx context.Context, dir string) (passed int, failures []string, err error) {
	srcs, err := controlSources(dir, true)
	if err != nil {
		return 0, nil, err
	}
	mods, err := parse(srcs)
	if err != nil {
		return 0, nil, err
	}
	ch, err := tester.NewRunner().SetCompiler(ast.NewCompiler().WithCapabilities(capabilities()).WithSchemas(controlInputSchemaSet).WithUseTypeCheckAnnotations(true)).
		SetTimeout(5*time.Second).SetModules(mods).RunTests(ctx, nil)
	if err != nil {
		return 0, nil, err
	}
	for r := range ch {
		switch {
		case r.Error != nil:
			failures = append(failures, fmt.Sprintf("%s.%s: %v", r.Package, r.Name, r.Error))
		case r.Fail:
			failures = append(failures, fmt.Sprintf("%s.%s: FAIL", r.Package, r.Name))
		case r.Skip:
		default:
			passed++
		}
	}
	if passed == 0 && len(failures) == 0 {
		return 0, nil, errors.New("no control-plane policy test ran")
	}
	return passed, failures, nil
}
