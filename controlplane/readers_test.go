package controlplane_test

import (
	"crypto/tls"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// adminMethods lists the RPCs of VaultAdminService from the service
// descriptor itself, so that a new RPC is covered without editing a test.
// A method is a write when its request carries an etag: every write of the
// API names the state it was computed from, and no read does.
func adminMethods(t *testing.T) (writes, reads []protoreflect.MethodDescriptor) {
	t.Helper()
	svc := v1.File_vaultwall_v1_admin_proto.Services().ByName("VaultAdminService")
	if svc == nil {
		t.Fatal("no VaultAdminService in the descriptor")
	}
	for i := 0; i < svc.Methods().Len(); i++ {
		m := svc.Methods().Get(i)
		if m.Input().Fields().ByName("etag") != nil {
			writes = append(writes, m)
		} else {
			reads = append(reads, m)
		}
	}
	if len(writes) < 4 || len(reads) < 4 {
		t.Fatalf("%d writes and %d reads: the descriptor changed shape", len(writes), len(reads))
	}
	return writes, reads
}

func clientTLSConfig(r *rig) *tls.Config {
	return &tls.Config{RootCAs: r.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// invoke calls one method with an empty request of its input type.
func invoke(t *testing.T, cc *grpc.ClientConn, m protoreflect.MethodDescriptor, tok string) codes.Code {
	t.Helper()
	in, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	c := bearer(t.Context(), tok)
	full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	return codeOf(cc.Invoke(c, full, in.New().Interface(), out.New().Interface()))
}

// TestEveryWriteRefusedToReadersAndDataPlaneTokens: each write RPC of the
// service descriptor is refused to a Vault.Reader (PermissionDenied) and to
// a data-plane-audience token (Unauthenticated), before its handler runs;
// each read is open to the reader. An admin's empty write gets past
// authorization (its handler refuses the empty request), so the table
// reaches the handlers it guards.
func TestEveryWriteRefusedToReadersAndDataPlaneTokens(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	cc, err := grpc.NewClient(in.adminAddr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLSConfig(r))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	reader, admin, dataPlane := r.adminToken("Vault.Reader"), r.adminToken("Vault.Admin"), r.is.MintValid()
	writes, reads := adminMethods(t)
	for _, m := range writes {
		t.Run(string(m.Name()), func(t *testing.T) {
			if got := invoke(t, cc, m, reader); got != codes.PermissionDenied {
				t.Errorf("a Vault.Reader: %v, want PermissionDenied", got)
			}
			if got := invoke(t, cc, m, dataPlane); got != codes.Unauthenticated {
				t.Errorf("a data-plane token: %v, want Unauthenticated", got)
			}
			if got := invoke(t, cc, m, admin); got == codes.PermissionDenied || got == codes.Unauthenticated || got == codes.OK {
				t.Errorf("an admin's empty request: %v, want its handler's refusal", got)
			}
		})
	}
	for _, m := range reads {
		t.Run(string(m.Name()), func(t *testing.T) {
			if got := invoke(t, cc, m, reader); got == codes.PermissionDenied || got == codes.Unauthenticated {
				t.Errorf("a Vault.Reader reading: %v", got)
			}
			if got := invoke(t, cc, m, dataPlane); got != codes.Unauthenticated {
				t.Errorf("a data-plane token: %v, want Unauthenticated", got)
			}
		})
	}
}
