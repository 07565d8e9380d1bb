package section_test

import (
	"errors"
	"testing"

	"github.com/vaultwall/vaultwall/authz/section"
)

// TestErrorText: an Error reads file:line: field: problem, leaving out what
// it does not know; a line without a file says "line".
func TestErrorText(t *testing.T) {
	err := section.ErrRequired
	for _, tc := range []struct {
		e    section.Error
		want string
	}{
		{section.Error{Err: err}, "required"},
		{section.Error{Field: "vault.name", Err: err}, "vault.name: required"},
		{section.Error{File: "v.yaml", Err: err}, "v.yaml: required"},
		{section.Error{File: "v.yaml", Line: 3, Err: err}, "v.yaml:3: required"},
		{section.Error{File: "v.yaml", Line: 3, Field: "vault.name", Err: err}, "v.yaml:3: vault.name: required"},
		{section.Error{Line: 3, Field: "vault.name", Err: err}, "line:3: vault.name: required"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

// TestErrors: Add keeps the order of the problems, each an *Error naming
// its field and wrapping its sentinel, with the detail when there is one.
func TestErrors(t *testing.T) {
	var e section.Errors
	e.Add("a", section.ErrRequired, "")
	e.Add("b[1]", section.ErrInvalidValue, "%q: want %s", "x", "y")
	if len(e) != 2 {
		t.Fatalf("%d errors, want 2", len(e))
	}
	for i, want := range []struct {
		field, text string
		sentinel    error
	}{{"a", "a: required", section.ErrRequired}, {"b[1]", `b[1]: invalid value: "x": want y`, section.ErrInvalidValue}} {
		var fe *section.Error
		if !errors.As(e[i], &fe) || fe.Field != want.field || !errors.Is(e[i], want.sentinel) || e[i].Error() != want.text {
			t.Errorf("error %d = %v, want %q wrapping %v", i, e[i], want.text, want.sentinel)
		}
	}
}

func TestIsGUID(t *testing.T) {
	for s, want := range map[string]bool{
		"00000000-0000-0000-0000-000000000001": true,
		"ABCDEF01-2345-6789-abcd-ef0123456789": true,
		"00000000-0000-0000-0000-00000000001":  false,
		"00000000000000000000000000000001":     false,
		"":                                     false,
	} {
		if section.IsGUID(s) != want {
			t.Errorf("IsGUID(%q) = %v", s, !want)
		}
	}
}

// Flatten lists the leaves of nested joins in order, and an error that is
// no join as itself.
func TestFlatten(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := section.Flatten(errors.Join(a, errors.Join(b, c)))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Errorf("Flatten(join(a, join(b, c))) = %v", got)
	}
	if got := section.Flatten(a); len(got) != 1 || got[0] != a {
		t.Errorf("Flatten(a) = %v", got)
	}
}
