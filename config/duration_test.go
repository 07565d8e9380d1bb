package config_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/config"
)

// TestDurationJSON: a duration reads from JSON as Go's string form or as a
// number of seconds, and anything else is an error.
func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"1m30s"`: 90 * time.Second,
		`"300ms"`: 300 * time.Millisecond,
		`90`:      90 * time.Second,
		`1.5`:     1500 * time.Millisecond,
	} {
		var d config.Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("%s: %v, %v; want %v", in, d.D(), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `"30"`, `true`} {
		var d config.Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: accepted as %v", in, d.D())
		}
	}
	b, err := json.Marshal(config.Duration(90 * time.Second))
	if err != nil || string(b) != `"1m30s"` {
		t.Errorf("Marshal: %s, %v", b, err)
	}
}
