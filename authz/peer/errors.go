package peer

import (
	"fmt"

	"github.com/vaultwall/vaultwall/authz/section"
)

// Sentinel errors of New, each wrapping the section sentinel of its kind so
// callers can test either with errors.Is.
var (
	// ErrUnknownService: a binding names no catalog entry.
	ErrUnknownService = fmt.Errorf("%w: not a trusted service of the catalog (vaultwall trusted-services list)", section.ErrUnresolved)
	// ErrPrincipal: a principal pattern does not parse.
	ErrPrincipal = fmt.Errorf("%w: not a principal pattern", section.ErrInvalidValue)
	// ErrDuplicatePrincipal: a principal is bound twice, or overlaps one
	// bound elsewhere, so the caller's service would be ambiguous.
	ErrDuplicatePrincipal = fmt.Errorf("%w: principal bound twice", section.ErrDuplicate)
	// ErrWidens: a binding's scope grants what the catalog's does not.
	ErrWidens = fmt.Errorf("%w: a binding may only narrow the catalog's scope", section.ErrConflict)
	// ErrScope: a scope names an unknown family or permission, or grants
	// nothing.
	ErrScope = fmt.Errorf("%w: not a bypass scope", section.ErrInvalidValue)
	// ErrApplicationID: an applicationIds entry is not a GUID.
	ErrApplicationID = fmt.Errorf("%w: not an application id (GUID)", section.ErrInvalidValue)
	// ErrCAFile: the caFile cannot be read or holds no usable certificate.
	ErrCAFile = fmt.Errorf("%w: not a usable CA bundle", section.ErrInvalidValue)
)
