// Package harness holds what the load benchmarks' commands (bench/run,
// bench/envoyrun) and the reliability suite (bench/chaos) share to drive
// servers on loopback: progress lines, building the floor and vaultwall,
// free loopback addresses, starting a server with its output in a log
// file, waiting for it and stopping it, and the median of measured rounds.
//
// Imports: the standard library only.
package harness
