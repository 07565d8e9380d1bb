package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/server"
)

// startControlPlaneExample serves examples/controlplane.yaml in-process on
// free loopback ports (its listenAddr and state file moved into a temporary
// directory, its key files made absolute) and returns the bound addresses.
func startControlPlaneExample(t *testing.T) server.Addrs {
	t.Helper()
	data, err := os.ReadFile("../../examples/controlplane.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	demo, _ := filepath.Abs("../../examples/demo")
	cfg := string(data)
	for _, r := range [][2]string{
		{"jwksFile: demo/", "jwksFile: " + demo + "/"},
		{`listenAddr: "127.0.0.1:9292"`, `listenAddr: "127.0.0.1:0"`},
		{"    type: file ", "    path: " + filepath.Join(dir, "state.json") + "\n    type: file "},
		{"  sink: stdout ", "  enabled: false\n  sink: stdout "},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("examples/controlplane.yaml no longer holds %q", r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1])
	}
	cfg = strings.Replace(cfg, "audit:                                # one Key Vault AuditEvent record per decision\n  enabled: true\n", "audit:\n", 1)
	cfgPath := filepath.Join(dir, "controlplane.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(dir, "addrs.json")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--config", cfgPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--addr-file", addrFile})
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		var a server.Addrs
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, &a) == nil && a.Admin != "" {
			return a
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no address file within 15s")
		}
	}
}

// TestExampleControlPlane: with examples/controlplane.yaml served, the demo
// admin credential (examples/demo/admin.jwt) can `admin show` and write, as
// the example's comments and the README say; a data-plane demo token
// cannot manage the vault.
func TestExampleControlPlane(t *testing.T) {
	addrs := startControlPlaneExample(t)
	adminJWT, _ := filepath.Abs("../../examples/demo/admin.jwt")
	appJWT, _ := filepath.Abs("../../examples/demo/app.jwt")
	out, err := run(t, "admin", "show", "--server", addrs.Admin, "--plaintext", "--token-file", adminJWT)
	if err != nil || !strings.Contains(out, "203.0.113.0/24") {
		t.Fatalf("admin show with the demo admin token: %v\n%s", err, out)
	}
	out, err = run(t, "admin", "network-rule", "add", "--server", addrs.Admin, "--plaintext", "--token-file", adminJWT, "--ip-address", "198.51.100.8")
	if err != nil || !strings.Contains(out, "198.51.100.8") {
		t.Fatalf("network-rule add with the demo admin token: %v\n%s", err, out)
	}
	if out, err := run(t, "admin", "show", "--server", addrs.Admin, "--plaintext", "--token-file", appJWT); err == nil {
		t.Fatalf("a data-plane token managed the vault:\n%s", out)
	}
}

// TestExampleGrpcurl: the README's grpcurl call works against the example
// with the control plane: reflection lists and describes ext_authz, and the
// example request is allowed — what grpcurl does, without grpcurl.
func TestExampleGrpcurl(t *testing.T) {
	addrs := startControlPlaneExample(t)
	cc, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var services []string
	for _, s := range ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	if !slices.Contains(services, "envoy.service.auth.v3.Authorization") {
		t.Fatalf("reflection lists %v, not ext_authz", services)
	}
	if fd := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "envoy.service.auth.v3.Authorization"}}).GetFileDescriptorResponse(); len(fd.GetFileDescriptorProto()) == 0 {
		t.Fatal("reflection does not describe ext_authz")
	}
	_ = stream.CloseSend()

	body, err := os.ReadFile("../../examples/requests/secret-get.json")
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(body, req); err != nil {
		t.Fatal(err)
	}
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, req)
	if err != nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("Check(secret-get.json) = %v, %v: want allowed", resp.GetStatus(), err)
	}
}
