package rego

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz"
)

// result is data.vaultwall.authz.decision, decoded strictly: every field
// present with its type, nothing else, and no contradiction between them.
type result struct {
	Allowed           bool
	Model             string
	Code              string
	Rule              string
	Reason            string
	Message           string
	AccessPolicyMatch bool
	AssignmentID      string
	DecisionReason    string
}

type resultField struct {
	key  *ast.Term
	name string
	str  func(*result) *string
	bool func(*result) *bool
}

var resultFields = []resultField{
	{key: key("allowed"), name: "allowed", bool: func(r *result) *bool { return &r.Allowed }},
	{key: key("model"), name: "model", str: func(r *result) *string { return &r.Model }},
	{key: key("code"), name: "code", str: func(r *result) *string { return &r.Code }},
	{key: key("rule"), name: "rule", str: func(r *result) *string { return &r.Rule }},
	{key: key("reason"), name: "reason", str: func(r *result) *string { return &r.Reason }},
	{key: key("message"), name: "message", str: func(r *result) *string { return &r.Message }},
	{key: key("access_policy_match"), name: "access_policy_match", bool: func(r *result) *bool { return &r.AccessPolicyMatch }},
	{key: key("assignment_id"), name: "assignment_id", str: func(r *result) *string { return &r.AssignmentID }},
	{key: key("decision_reason"), name: "decision_reason", str: func(r *result) *string { return &r.DecisionReason }},
}

func decodeResult(v ast.Value) (result, error) {
	var r result
	obj, ok := v.(ast.Object)
	if !ok {
		return r, fmt.Errorf("%w: the decision is %s, not an object", ErrResult, ast.ValueName(v))
	}
	if obj.Len() != len(resultFields) {
		return r, fmt.Errorf("%w: the decision has %d fields, want exactly %d: %v", ErrResult, obj.Len(), len(resultFields), obj.Keys())
	}
	for _, f := range resultFields {
		t := obj.Get(f.key)
		if t == nil {
			return r, fmt.Errorf("%w: the decision has no %q", ErrResult, f.name)
		}
		switch x := t.Value.(type) {
		case ast.String:
			if f.str == nil {
				return r, fmt.Errorf("%w: decision.%s is a string, want a boolean", ErrResult, f.name)
			}
			*f.str(&r) = string(x)
		case ast.Boolean:
			if f.bool == nil {
				return r, fmt.Errorf("%w: decision.%s is a boolean, want a string", ErrResult, f.name)
			}
			*f.bool(&r) = bool(x)
		default:
			return r, fmt.Errorf("%w: decision.%s is %s", ErrResult, f.name, ast.ValueName(t.Value))
		}
	}
	return r, r.check()
}

// check refuses a decision whose fields contradict each other: a policy bug
// must not be read as a verdict.
func (r *result) check() error {
	switch r.Model {
	case authz.ModelAccessPolicy, authz.ModelRBAC:
	default:
		return fmt.Errorf("%w: unknown model %q", ErrResult, r.Model)
	}
	if r.Allowed {
		if r.Code != "" || r.DecisionReason != "" {
			return fmt.Errorf("%w: an allow with a refusal code %q (%s)", ErrResult, r.Code, r.DecisionReason)
		}
		return nil
	}
	switch r.Code {
	case authz.CodeAccessDenied, authz.CodeForbiddenByRbac, authz.CodeForbiddenByPolicy:
	default:
		return fmt.Errorf("%w: a refusal with code %q", ErrResult, r.Code)
	}
	if r.AssignmentID != "" {
		return fmt.Errorf("%w: a refusal naming the granting assignment %q", ErrResult, r.AssignmentID)
	}
	return nil
}

func (r *result) verdict() authz.AuthzVerdict {
	return authz.AuthzVerdict{
		Allowed:           r.Allowed,
		Model:             r.Model,
		Code:              r.Code,
		Rule:              r.Rule,
		Reason:            r.Reason,
		Message:           r.Message,
		AccessPolicyMatch: r.AccessPolicyMatch,
		AssignmentID:      r.AssignmentID,
		DecisionReason:    r.DecisionReason,
	}
}
