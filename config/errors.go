package config

import (
	"errors"

	"github.com/vaultwall/vaultwall/authz/section"
)

// Sentinel errors, one per kind of problem; every FieldError wraps one.
// Those a section's validation reports are package section's, named here
// too, so errors.Is matches either name.
var (
	ErrSyntax        = errors.New("not valid YAML or JSON")
	ErrUnknownField  = errors.New("unknown field")
	ErrType          = errors.New("wrong type")
	ErrRequired      = section.ErrRequired
	ErrInvalidValue  = section.ErrInvalidValue
	ErrInvalidPrefix = section.ErrInvalidPrefix
	ErrInvalidID     = section.ErrInvalidID
	ErrDuplicate     = section.ErrDuplicate
	ErrTooMany       = section.ErrTooMany
	ErrUnresolved    = section.ErrUnresolved
	ErrConflict      = section.ErrConflict
	ErrUnsupported   = section.ErrUnsupported
)

// FieldError is one problem in a configuration file (section.Error: the one
// located error type of config, the stages and rego).
type FieldError = section.Error

// errs collects FieldErrors with their paths.
type errs = section.Errors

// Errorf builds a FieldError (section.Errorf); Annotate gives it a file and
// line.
func Errorf(field string, sentinel error, format string, args ...any) error {
	return section.Errorf(field, sentinel, format, args...)
}
