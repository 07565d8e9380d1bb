package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
)

// Three versions of one vault: the running one grants 198.51.100.7, the
// new one revokes it, and an invalid edit in between.
var (
	granting = strings.Replace(goodConfig, "[{value: 203.0.113.0/24}]", "[{value: 203.0.113.0/24}, {value: 198.51.100.7}]", 1)
	revoking = goodConfig
	invalid  = strings.Replace(goodConfig, "203.0.113.0/24", "203.0.113.300/24", 1)
)

func grants(rt *Runtime) bool {
	return slices.ContainsFunc(rt.Config.Properties.NetworkAcls.IPRules, func(r config.IPRule) bool { return r.Value == "198.51.100.7" })
}

// renames is a scripted configuration file: each read returns the next
// content in turn, the last one for good — renames landing between reads.
type renames struct {
	mu    sync.Mutex
	path  string
	queue []string
}

func (r *renames) land(contents ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = contents
}

func (r *renames) read(p string) ([]byte, error) {
	if p != r.path {
		return os.ReadFile(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.queue[0]
	if len(r.queue) > 1 {
		r.queue = r.queue[1:]
	}
	return []byte(c), nil
}

// TestReloadDigestMatchesParsedBytes: the revoking file is read, then an
// invalid file lands (read by anything after the first read), then the
// revoking file lands again. The revocation must be in force and no error
// left: the failure marker may never hold the digest of bytes that were
// not the ones parsed (issue 19, bug 2).
func TestReloadDigestMatchesParsedBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	r := &renames{path: path}
	e := New(path, stubBuild, nil)
	e.readFile = r.read
	r.land(granting)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !grants(e.Current()) {
		t.Fatal("the first configuration does not grant 198.51.100.7")
	}

	r.land(revoking, invalid) // the invalid file lands right after the first read
	_ = e.Load(t.Context())
	r.land(revoking) // and the revoking one again, for good
	for range 3 {    // the watcher's next polls
		_ = e.Load(t.Context())
	}
	if rt := e.Current(); grants(rt) {
		t.Errorf("generation %d still grants 198.51.100.7: the revocation was never applied", rt.Generation)
	}
	if st := e.Status(); st.LastError != "" {
		t.Errorf("the file in place is valid, yet /readyz shows %q", st.LastError)
	}
}

// TestReloadRetriesWhenPolicyChangedMidBuild: the operator policy read for
// the digest is valid, the one the build compiles is broken, then the
// valid one lands again. The failure must not be pinned to the valid
// policy's digest, or the next polls would never build it.
func TestReloadRetriesWhenPolicyChangedMidBuild(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.yaml")
	policyDir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(policyDir, "ops.rego")
	write(t, path, goodConfig+"policy: {dir: policy}\n")
	write(t, policy, "package vaultwall.operator\n")
	keys := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { keys.Close() })
	e := New(path, (&Builder{Keys: keys}).Build, nil)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	fake := denyLists // what the digest sees on its first read of the policy
	e.readFile = func(p string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if p == policy && fake != "" {
			b := fake
			fake = ""
			return []byte(b), nil
		}
		return os.ReadFile(p)
	}
	write(t, policy, denyLists+"\nthis is not rego {\n") // what the build compiles
	if err := e.Load(t.Context()); err == nil {
		t.Fatal("a broken policy was built")
	}
	write(t, policy, denyLists)
	if err := e.Load(t.Context()); err != nil {
		t.Fatalf("the valid policy in place was not built: %v", err)
	}
	if rt := e.Current(); rt.Generation != 2 || len(rt.PolicyFiles) != 1 {
		t.Errorf("current = generation %d, files %v", rt.Generation, rt.PolicyFiles)
	}
}

// TestReloadConvergesUnderRacingRenames: while files are renamed into
// place as fast as possible — granting, invalid, revoking, invalid, … —
// loads run concurrently; once the renames stop, one more load (the next
// poll) must leave exactly the last file in force, without an error.
func TestReloadConvergesUnderRacingRenames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.yaml")
	write(t, path, granting)
	e := New(path, stubBuild, nil)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	seq := []string{revoking, invalid, granting, invalid}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 400 {
			tmp := filepath.Join(dir, fmt.Sprintf(".vault.yaml.%d", i))
			if err := os.WriteFile(tmp, []byte(seq[i%len(seq)]), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Error(err)
				return
			}
		}
		// End on the revoking file, which the loads have seen before.
		tmp := filepath.Join(dir, ".vault.yaml.last")
		write(t, tmp, revoking)
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
	})
	loads := 0
	for running := true; running; loads++ {
		select {
		case <-done:
			running = false
		default:
		}
		_ = e.Load(t.Context())
	}
	wg.Wait()
	if err := e.Load(t.Context()); err != nil {
		t.Fatalf("after %d racing loads, the valid file in place is refused: %v", loads, err)
	}
	if rt := e.Current(); grants(rt) {
		t.Errorf("after %d racing loads, generation %d still grants 198.51.100.7", loads, rt.Generation)
	}
	if st := e.Status(); st.LastError != "" {
		t.Errorf("last error %q with a valid file in place", st.LastError)
	}
}
