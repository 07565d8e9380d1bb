// Package procstat reads what the load benchmarks measure of a server
// process from Linux's /proc: its CPU time (all threads) and its peak
// resident set size.
//
// Imports: the standard library only.
package procstat
