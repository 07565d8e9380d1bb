package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionFallsBackToBuildInfo: a stamped version wins; without one, the
// module version of the build info; a checkout build's "(devel)" gives the
// VCS revision (+dirty); nothing at all gives "dev".
func TestVersionFallsBackToBuildInfo(t *testing.T) {
	info := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "53bbf54e2c0a9d1f00aa11bb22cc33dd44ee55ff"}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}}, "v1.2.3"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202054600-53bbf54e2c0a+dirty"}}, "v0.0.0-20261202054600-53bbf54e2c0a+dirty"},
		{"devel with vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "53bbf54e2c0a+dirty"},
		{"devel without vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "", nil, "dev"},
	}
	for _, tt := range tests {
		if got := versionOf(tt.stamped, info(tt.bi)); got != tt.want {
			t.Errorf("%s: versionOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionFlagAndCompletion: --version prints what `version` prints, and
// cobra's completion command prints a script for each shell.
func TestVersionFlagAndCompletion(t *testing.T) {
	byCmd, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	byFlag, err := run(t, "--version")
	if err != nil || byFlag != byCmd || !strings.HasPrefix(byFlag, "vaultwall ") {
		t.Fatalf("--version = %q (%v), version = %q", byFlag, err, byCmd)
	}
	for shell, want := range map[string]string{
		"bash": "__start_vaultwall",
		"zsh":  "#compdef vaultwall",
		"fish": "complete -c vaultwall",
	} {
		out, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v; output lacks %q:\n%.300s", shell, err, want, out)
		}
	}
}
