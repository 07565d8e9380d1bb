package config

import (
	"errors"
	"testing"
)

// TestSyntaxLine: the line number is read only after "line "; a message
// without one has no line, whatever digits it holds and however short.
func TestSyntaxLine(t *testing.T) {
	for msg, want := range map[string]int{
		"yaml: line 7: mapping values are not allowed in this context":            7,
		"error converting YAML to JSON: yaml: line 12: did not find expected key": 12,
		"line ":                        0,
		"ab":                           0,
		"abcd12: not a line number":    0,
		"10.0.0.300/8: invalid prefix": 0,
	} {
		if got := syntaxLine(errors.New(msg)); got != want {
			t.Errorf("syntaxLine(%q) = %d, want %d", msg, got, want)
		}
	}
}
