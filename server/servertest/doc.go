// Package servertest runs a whole vaultwall process in-process for a test:
// server.Serve on the options given, stopped when the test ends.
//
// Imports: server. Test code only.
package servertest
