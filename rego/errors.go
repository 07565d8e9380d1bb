package rego

import (
	"errors"

	"github.com/vaultwall/vaultwall/authz/section"
)

// Sentinel errors. Load errors are *FileError values wrapping one of the
// first group; Authorize errors wrap one of the second.
var (
	// ErrSyntax: a .rego file does not parse.
	ErrSyntax = errors.New("syntax error")
	// ErrCompile: the policy does not compile (unsafe variables, type
	// errors, recursion, conflicting rules, unknown or forbidden builtins…).
	ErrCompile = errors.New("compile error")
	// ErrNamespace: an operator file declares a package outside
	// vaultwall.operator, such as the shipped vaultwall.authz.
	ErrNamespace = errors.New("package outside the operator namespace")
	// ErrRuleShape: an operator deny or grant is not a set rule.
	ErrRuleShape = errors.New("operator rule has the wrong shape")
	// ErrSample: the compiled policy fails on a built-in sample input.
	ErrSample = errors.New("policy fails on a sample input")
	// ErrData: the configuration cannot be turned into policy data.
	ErrData = errors.New("invalid authorization data")
	// ErrPolicyDir: policy.dir cannot be read.
	ErrPolicyDir = errors.New("cannot read the policy directory")

	// ErrEval: evaluation failed (a runtime error in a rule, a conflict
	// between rule outputs, a cancelled request).
	ErrEval = errors.New("policy evaluation failed")
	// ErrTimeout: evaluation exceeded policy.timeout.
	ErrTimeout = errors.New("policy evaluation exceeded its time budget")
	// ErrResult: the decision is undefined or not the expected document.
	ErrResult = errors.New("unexpected policy result")
)

// FileError is one problem in a policy file, or in the configuration when
// File names the config file and Field the setting: section.Error, the one
// located error type of config, the stages and rego.
type FileError = section.Error
