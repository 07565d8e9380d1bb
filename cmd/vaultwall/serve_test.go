package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/server"
)

// configs for the --addr-file tests: the example, the example with the
// control plane on (its admin listener opens last), and Azure's own
// documents served as they are.
func addrFileConfigs(t *testing.T) map[string]string {
	t.Helper()
	example, err := filepath.Abs("../../examples/vault.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwks, _ := filepath.Abs("../../examples/demo/jwks.json")
	cp := strings.Replace(string(data), "jwksFile: demo/jwks.json", "jwksFile: "+jwks, 1) + `
controlPlane:
  enabled: true
  listenAddr: 127.0.0.1:0
  audiences: [https://management.vaultwall.test]
  store: {path: ` + filepath.Join(dir, "state.json") + `}
`
	cpPath := filepath.Join(dir, "vault.yaml")
	if err := os.WriteFile(cpPath, []byte(cp), 0o600); err != nil {
		t.Fatal(err)
	}
	show, _ := filepath.Abs("../../config/testdata/azure/keyvault-show.json")
	tmpl, _ := filepath.Abs("../../config/testdata/azure/group-export.json")
	return map[string]string{"example": example, "control plane": cpPath, "az keyvault show": show, "ARM template": tmpl}
}

// TestServeAddrFile runs `serve` on port 0 with --addr-file: the file names
// the addresses actually bound (the control plane's too when it is on),
// /readyz answers on the HTTP one, and nothing but the file is left in its
// directory.
func TestServeAddrFile(t *testing.T) {
	for name, cfgPath := range addrFileConfigs(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			addrFile := filepath.Join(dir, "addrs.json")
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				root := newRoot()
				root.SetArgs([]string{"serve", "--config", cfgPath,
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

			var addrs server.Addrs
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
			bound := []string{addrs.GRPC, addrs.HTTP}
			if name == "control plane" {
				bound = append(bound, addrs.Admin)
			} else if addrs.Admin != "" {
				t.Errorf("admin %q without a control plane", addrs.Admin)
			}
			for _, a := range bound {
				if !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
					t.Errorf("address %q: want the bound loopback port", a)
				}
				c, err := net.DialTimeout("tcp", a, 5*time.Second)
				if err != nil {
					t.Errorf("nothing listens on %s: %v", a, err)
					continue
				}
				c.Close()
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
		})
	}
}

// TestServeAddrFileUnwritable: an address file that cannot be written stops
// serve with an error naming the flag, instead of serving while the
// supervisor waits forever — also when it is written late, once the control
// plane listens.
func TestServeAddrFileUnwritable(t *testing.T) {
	for name, cfgPath := range addrFileConfigs(t) {
		t.Run(name, func(t *testing.T) {
			root := newRoot()
			root.SetArgs([]string{"serve", "--config", cfgPath,
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
		})
	}
}
