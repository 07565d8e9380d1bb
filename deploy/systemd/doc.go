// Package systemd holds vaultwall.service, a hardened systemd unit for
// running vaultwall on a host (systemctl reload sends SIGHUP, which reloads
// the configuration), and nothing else: its test checks the unit's
// directives and, where systemd-analyze is installed, verifies it and
// bounds its exposure score.
//
// Imports: test code only (the standard library); nothing imports it.
package systemd
