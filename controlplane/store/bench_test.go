package store_test

import (
	"path/filepath"
	"testing"

	"github.com/vaultwall/vaultwall/controlplane/store"
)

// BenchmarkFileCompareAndSwap is one durable write: temp file, fsync,
// rename, directory fsync.
func BenchmarkFileCompareAndSwap(b *testing.B) {
	f, err := store.OpenFile(filepath.Join(b.TempDir(), "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	st := withPolicies(policy("a"), policy("b"))
	rev := int64(0)
	for b.Loop() {
		if rev, err = f.CompareAndSwap(b.Context(), rev, st); err != nil {
			b.Fatal(err)
		}
	}
}
