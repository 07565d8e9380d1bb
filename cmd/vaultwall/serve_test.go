package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeAddrFile runs `serve` on port 0 with --addr-file: the file names
// the addresses actually bound, /readyz answers on the HTTP one, and nothing
// but the file is left in its directory.
func TestServeAddrFile(t *testing.T) {
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addrs.json")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--config", "../../examples/vault.yaml",
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrFile})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})

	var addrs Addrs
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			if err := json.Unmarshal(b, &addrs); err != nil {
				t.Fatalf("%s is not whole JSON: %q: %v", addrFile, b, err)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped before writing the address file: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no address file within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, a := range []string{addrs.GRPC, addrs.HTTP} {
		if !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Errorf("address %q: want the bound loopback port", a)
		}
	}
	resp, err := http.Get("http://" + addrs.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only addrs.json", names)
	}
}

// TestServeAddrFileUnwritable: an address file that cannot be written stops
// serve with an error naming the flag, instead of serving while the
// supervisor waits forever.
func TestServeAddrFileUnwritable(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"serve", "--config", "../../examples/vault.yaml",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--addr-file", filepath.Join(t.TempDir(), "missing", "addrs.json")})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "--addr-file") {
		t.Fatalf("serve = %v, want an --addr-file error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("serve ran until the deadline instead of failing")
	}
}
