package config

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors, one per kind of problem; every FieldError wraps one.
var (
	ErrSyntax        = errors.New("not valid YAML or JSON")
	ErrUnknownField  = errors.New("unknown field")
	ErrType          = errors.New("wrong type")
	ErrRequired      = errors.New("required")
	ErrInvalidValue  = errors.New("invalid value")
	ErrInvalidPrefix = errors.New("not an IP address or CIDR prefix")
	ErrInvalidID     = errors.New("not a valid resource id")
	ErrDuplicate     = errors.New("duplicate")
	ErrTooMany       = errors.New("too many entries")
	ErrUnresolved    = errors.New("refers to nothing")
	ErrConflict      = errors.New("conflicting settings")
	ErrUnsupported   = errors.New("not supported")
)

// FieldError is one problem in a configuration file.
type FieldError struct {
	File  string // "" when the config did not come from a file
	Line  int    // 0 when unknown
	Field string // e.g. properties.networkAcls.ipRules[3].value
	Err   error  // a sentinel, possibly wrapped with detail
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		if loc == "" {
			loc = "line"
		}
		loc += ":" + strconv.Itoa(e.Line)
	}
	if loc != "" {
		loc += ": "
	}
	if e.Field == "" {
		return loc + e.Err.Error()
	}
	return loc + e.Field + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// errs collects FieldErrors with their paths.
type errs struct{ list []error }

func (c *errs) add(field string, sentinel error, format string, args ...any) {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	c.list = append(c.list, &FieldError{Field: field, Err: err})
}

// Errorf builds a FieldError for stage packages that validate more deeply
// at compile time; Annotate gives it a file and line.
func Errorf(field string, sentinel error, format string, args ...any) error {
	var c errs
	c.add(field, sentinel, format, args...)
	return c.list[0]
}
