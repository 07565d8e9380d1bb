package section

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors, one per kind of problem a section's validation finds;
// every Error a validation reports wraps one. config adds those of loading
// (syntax, unknown fields, types).
var (
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

// Error is one problem in a file: a configuration setting, or a line of a
// policy file.
type Error struct {
	File  string // "" when the problem did not come from a file
	Line  int    // 0 when unknown
	Field string // e.g. properties.networkAcls.ipRules[3].value
	Err   error  // a sentinel, possibly wrapped with detail
}

func (e *Error) Error() string {
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

func (e *Error) Unwrap() error { return e.Err }

// Errors collects the problems of a validation, in the order found, so
// that one run reports every one (errors.Join).
type Errors []error

// Add reports a problem of field: the sentinel, with the formatted detail
// when format is not "".
func (e *Errors) Add(field string, sentinel error, format string, args ...any) {
	*e = append(*e, Errorf(field, sentinel, format, args...))
}

// Errorf builds the Error of field: the sentinel, with the formatted detail
// when format is not "".
func Errorf(field string, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	return &Error{Field: field, Err: err}
}

// Flatten lists the problems inside err: the leaves of every errors.Join,
// in order, so each can be located or reported on its own.
func Flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}
