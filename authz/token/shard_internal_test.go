package token

import (
	"testing"
	"unsafe"
)

func TestShardFillsACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n != 64 {
		t.Errorf("shard is %d bytes, want 64: adjust its padding", n)
	}
}
