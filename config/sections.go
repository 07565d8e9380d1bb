package config

import "github.com/vaultwall/vaultwall/authz/section"

// Duration is a time.Duration written as "30s" or "5m" (or a number of
// seconds).
type Duration = section.Duration

// IsGUID reports whether s is a GUID in 8-4-4-4-12 form.
func IsGUID(s string) bool { return section.IsGUID(s) }
