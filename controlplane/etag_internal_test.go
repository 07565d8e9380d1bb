package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// racingStore lets another writer win the first compare-and-swap: just
// before it, the other writer disables public network access.
type racingStore struct {
	store.Store
	mu    sync.Mutex
	raced bool
}

func (r *racingStore) CompareAndSwap(ctx context.Context, rev int64, st store.State) (int64, error) {
	r.mu.Lock()
	if !r.raced {
		r.raced = true
		cur, err := r.Store.Get(ctx)
		if err != nil {
			r.mu.Unlock()
			return 0, err
		}
		other := cur.State.Clone()
		other.PublicNetworkAccess = "Disabled"
		if _, err := r.Store.CompareAndSwap(ctx, cur.Revision, other); err != nil {
			r.mu.Unlock()
			return 0, err
		}
	}
	r.mu.Unlock()
	return r.Store.CompareAndSwap(ctx, rev, st)
}

func racing(t *testing.T) func(*Options) {
	return func(o *Options) {
		fs, err := store.OpenFile(filepath.Join(t.TempDir(), "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		o.Store = &racingStore{Store: fs}
	}
}

func addList(ctx context.Context, s *Server, etag string) (*v1.UpdateAccessPoliciesResponse, error) {
	return updatePolicies(ctx, s, kindAdd, etag, &v1.AccessPolicy{ObjectId: testOID, Permissions: &v1.Permissions{Secrets: []string{"list"}}})
}

// TestEtagStarRetries: "*" writes unconditionally, as documented: a
// compare-and-swap lost to another writer is retried from a fresh read, and
// both writes are in force; the attempt is audited once.
func TestEtagStarRetries(t *testing.T) {
	s, rec := testServer(t, racing(t))
	resp, err := addList(admin(t), s, "*")
	if err != nil {
		t.Fatalf(`"*" under contention: %v`, err)
	}
	p := resp.GetVault().GetProperties()
	if p.GetPublicNetworkAccess() != v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED ||
		strings.Join(p.GetAccessPolicies()[0].GetPermissions().GetSecrets(), ",") != "get,list" {
		t.Fatalf("after the retried write: %v", p)
	}
	if got := rec.all(); len(got) != 1 || got[0].Outcome != "applied" {
		t.Fatalf("want one applied record, got %+v", got)
	}
}

// TestEtagStaleUnderContention: a named etag is never retried: the lost
// compare-and-swap answers ABORTED with the etag as sent and the current
// one.
func TestEtagStaleUnderContention(t *testing.T) {
	s, _ := testServer(t, racing(t))
	v := getVault(t, s)
	_, err := addList(admin(t), s, v.GetEtag())
	if status.Code(err) != codes.Aborted {
		t.Fatalf("lost compare-and-swap: %v, want Aborted", err)
	}
	info := etagInfo(t, err)
	if cur := getVault(t, s).GetEtag(); info["requestEtag"] != v.GetEtag() || info["currentEtag"] != cur {
		t.Fatalf("error info %v, want requestEtag %s, currentEtag %s", info, v.GetEtag(), cur)
	}
}

func etagInfo(t *testing.T, err error) map[string]string {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(interface{ GetMetadata() map[string]string }); ok {
			return info.GetMetadata()
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return nil
}

// TestEtagCanonical: only the etag as issued is accepted; anything else —
// aliases of the revision, other spellings of the digest, the bare
// revision — is refused with ABORTED and echoed exactly as sent.
func TestEtagCanonical(t *testing.T) {
	s, _ := testServer(t)
	cur := getVault(t, s).GetEtag()
	malformed := []string{"+0", "00", "-0", " 0", "abc", "0x0", "0\n", "+" + cur, "0" + cur, cur + " ", " " + cur}
	if rev, digest, ok := strings.Cut(cur, "-"); ok && len(digest) == 16 {
		malformed = append(malformed, rev, rev+"-"+strings.ToUpper(digest), rev+"-"+digest[:15],
			rev+"--"+digest, rev+"-"+digest+"0", "\u0660-"+digest)
	} else {
		t.Errorf("etag %q is not <revision>-<16 hex digits>", cur)
	}
	for _, sent := range malformed {
		_, err := addList(admin(t), s, sent)
		if status.Code(err) != codes.Aborted {
			t.Errorf("etag %q: %v, want Aborted", sent, err)
			continue
		}
		if info := etagInfo(t, err); info["requestEtag"] != sent || info["currentEtag"] != cur {
			t.Errorf("etag %q: error info %q, want requestEtag echoed and currentEtag %s", sent, info, cur)
		}
	}
	if got := getVault(t, s).GetEtag(); got != cur {
		t.Fatalf("a malformed etag wrote: %s -> %s", cur, got)
	}
	if _, err := addList(admin(t), s, cur); err != nil {
		t.Fatalf("the etag as issued: %v", err)
	}
}

// TestEtagCoversFile: the etag covers the effective configuration. A
// read-modify-write computed before an edit of a property the file still
// owns fails with ABORTED instead of silently dropping the edit.
func TestEtagCoversFile(t *testing.T) {
	s, _ := testServer(t)
	before := getVault(t, s).GetEtag()
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "secrets: [get]", "secrets: [get, delete]", 1)
	if edited == string(data) {
		t.Fatal("the test configuration changed shape")
	}
	if err := os.WriteFile(s.path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	// The caller read accessPolicies (get) before the edit and writes back
	// its own full list.
	_, err = updatePolicies(admin(t), s, kindReplace, before, &v1.AccessPolicy{ObjectId: testOID,
		Permissions: &v1.Permissions{Secrets: []string{"get", "list"}}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("a write computed before the file's edit: %v, want Aborted", err)
	}
	after := getVault(t, s)
	if after.GetEtag() == before {
		t.Fatal("the etag did not change with the file")
	}
	if got := after.GetProperties().GetAccessPolicies()[0].GetPermissions().GetSecrets(); strings.Join(got, ",") != "get,delete" {
		t.Fatalf("the file's edit is not in force: %v", got)
	}
	// A property the store owns does not move with the file: editing the
	// file's value of it leaves the etag alone.
	if _, err := call(admin(t), s, "UpdateVaultProperties", &v1.UpdateVaultPropertiesRequest{Etag: after.GetEtag(),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"public_network_access"}},
		Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED}}, s.UpdateVaultProperties); err != nil {
		t.Fatal(err)
	}
	owned := getVault(t, s).GetEtag()
	edited = strings.Replace(edited, "properties:\n", "properties:\n  publicNetworkAccess: Enabled\n", 1)
	if err := os.WriteFile(s.path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := getVault(t, s).GetEtag(); got != owned {
		t.Fatalf("an edit the store overrides changed the etag: %s -> %s", owned, got)
	}
}
