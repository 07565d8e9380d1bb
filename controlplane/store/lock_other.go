//go:build !unix

package store

// lock is a no-op where advisory locks are not available: one process per
// state file.
func (f *File) lock() (unlock func(), err error) { return func() {}, nil }
