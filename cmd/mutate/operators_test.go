package main

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

func TestGoMutants(t *testing.T) {
	src := []byte(`package p

import "strings"

func f(a, b string, n int) bool {
	if n < 0 {
		return false
	}
	ok := a == b && !strings.EqualFold(a, "x")
	return ok || n >= 3 || true
}
`)
	ms, err := goMutants("./p", "p/p.go", src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range ms {
		got[m.op+" "+m.from+" -> "+m.to] = true
		// Every mutant still parses: an operator never breaks the syntax.
		if _, err := parser.ParseFile(token.NewFileSet(), "m.go", m.apply(src), 0); err != nil {
			t.Errorf("%s %q -> %q does not parse: %v", m.op, m.from, m.to, err)
		}
	}
	for _, want := range []string{
		"BOUNDARY < -> <=", "GUARD_DROPPED n < 0 -> false", "BOOL_FLIPPED false -> true", "EQ_TO_NE == -> !=",
		"AND_TO_OR && -> ||", "NOT_REMOVED ! -> ", `EQUALFOLD_TO_EQ strings.EqualFold(a, "x") -> ((a) == ("x"))`,
		"OR_TO_AND || -> &&", "BOUNDARY >= -> >", "BOOL_FLIPPED true -> false",
	} {
		if !got[want] {
			t.Errorf("missing mutant %s; have %v", want, got)
		}
	}
	if len(ms) != 11 {
		t.Errorf("%d mutants, want 11", len(ms))
	}
}

func TestRegoMutants(t *testing.T) {
	src := []byte(`package x

# a comment with == in it
allow if {
	input.a == 1
	not denied
	some i in input.list
	v := input.b
	v != 2
}

obj := {
	"k": 1,
}
`)
	var got []string
	for _, m := range regoMutants("./rego", "x.rego", src) {
		got = append(got, m.op+" "+strings.TrimSpace(m.from)+" -> "+m.to)
		if m.start < 0 || m.end > len(src) || string(src[m.start:m.end]) != m.from {
			t.Errorf("%s: offsets [%d,%d) do not hold %q", m.op, m.start, m.end, m.from)
		}
	}
	want := []string{
		"EQ_TO_NE == -> !=", "CONDITION_DROPPED input.a == 1 -> true",
		"NOT_REMOVED not -> ", "CONDITION_DROPPED not denied -> true",
		"NE_TO_EQ != -> ==", "CONDITION_DROPPED v != 2 -> true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
