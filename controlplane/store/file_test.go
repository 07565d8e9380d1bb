package store_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

func policy(oid string) authz.AccessPolicy {
	return authz.AccessPolicy{TenantID: "t", ObjectID: oid, Permissions: authz.Permissions{Secrets: []string{"get"}}}
}

func withPolicies(ps ...authz.AccessPolicy) store.State {
	return store.State{AccessPolicies: &ps}
}

func TestFileCompareAndSwap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := store.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.Get(t.Context())
	if err != nil || snap.Revision != 0 || snap.State.AccessPolicies != nil {
		t.Fatalf("empty store: %+v %v", snap, err)
	}
	rev, err := f.CompareAndSwap(t.Context(), 0, withPolicies(policy("a")))
	if err != nil || rev != 1 {
		t.Fatalf("first write: %d %v", rev, err)
	}
	// A writer that read revision 0 is refused, and nothing is stored.
	_, err = f.CompareAndSwap(t.Context(), 0, withPolicies(policy("b")))
	var ce *store.ConflictError
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.Current != 1 || ce.Want != 0 {
		t.Fatalf("stale write: %v", err)
	}
	snap, _ = f.Get(t.Context())
	if snap.Revision != 1 || (*snap.State.AccessPolicies)[0].ObjectID != "a" {
		t.Fatalf("after a refused write: %+v", snap)
	}
	// A second process opening the same file sees the write and continues
	// the revisions.
	g, err := store.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := g.CompareAndSwap(t.Context(), 1, withPolicies(policy("c"))); err != nil || rev != 2 {
		t.Fatalf("second handle: %d %v", rev, err)
	}
	if _, err := f.CompareAndSwap(t.Context(), 1, withPolicies(policy("d"))); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("first handle wrote over the second's write: %v", err)
	}
}

func TestFileRefusesCorruptFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"truncated":     `{"format":"vaultwall.state/v1","revision":3,"state":{"accessPol`,
		"unknown field": `{"format":"vaultwall.state/v1","revision":3,"state":{"futureThing":1}}`,
		"other format":  `{"format":"vaultwall.state/v9","revision":3,"state":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := store.OpenFile(path); err == nil {
				t.Fatal("a corrupt state file was opened as if it were fine")
			}
		})
	}
}

func TestFileWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := store.OpenFile(path, store.WithPoll(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ch := f.Watch(t.Context())
	if s := <-ch; s.Revision != 0 {
		t.Fatalf("first snapshot: %+v", s)
	}
	if _, err := f.CompareAndSwap(t.Context(), 0, withPolicies(policy("a"))); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-ch:
		if s.Revision != 1 {
			t.Fatalf("after a local write: %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("local write not seen")
	}
	// Another process's write arrives through fsnotify (poll is an hour).
	other, _ := store.OpenFile(path)
	if _, err := other.CompareAndSwap(t.Context(), 1, withPolicies(policy("b"))); err != nil {
		t.Fatal(err)
	}
	// other's write closes other's channel only; f sees it via the file system.
	select {
	case s := <-ch:
		if s.Revision != 2 {
			t.Fatalf("after another handle's write: %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write of another handle not seen")
	}
}

// crashChildEnv makes the test binary a writer that appends one access
// policy per write, forever, printing "ack N" once write N has returned.
const crashChildEnv = "VAULTWALL_FILESTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

func crashChild(path string) {
	f, err := store.OpenFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := contextBackground()
	for {
		snap, err := f.Get(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		var ps []authz.AccessPolicy
		if snap.State.AccessPolicies != nil {
			ps = *snap.State.AccessPolicies
		}
		next := snap.Revision + 1
		ps = append(ps, policy("w-"+strconv.FormatInt(next, 10)))
		rev, err := f.CompareAndSwap(ctx, snap.Revision, store.State{AccessPolicies: &ps})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		// os.Stdout is unbuffered: the line leaves with one write(2) after
		// the write is durable.
		fmt.Fprintf(os.Stdout, "ack %d\n", rev)
	}
}

// TestFileCrash kills a writer with SIGKILL at random moments, many times.
// After each kill the file must parse and hold every write the writer
// acknowledged (and each write exactly once).
func TestFileCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "state.json")
	rounds, acked := 25, int64(0)
	for round := range rounds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan int64, 1024)
		go func() {
			defer close(acks)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					v, _ := strconv.ParseInt(n, 10, 64)
					acks <- v
				}
			}
		}()
		// Let it start and write for a random while, then kill it mid-flight.
		time.Sleep(time.Duration(30+rand.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		maxAck := int64(0)
		for a := range acks {
			maxAck = max(maxAck, a)
		}
		if strings.Contains(stderr.String(), "state file") {
			t.Fatalf("round %d: writer failed: %s", round, stderr.String())
		}
		f, err := store.OpenFile(path)
		if err != nil {
			t.Fatalf("round %d: the file does not open after SIGKILL: %v", round, err)
		}
		snap, err := f.Get(t.Context())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if snap.Revision < maxAck {
			t.Fatalf("round %d: write %d was acknowledged, the file holds revision %d", round, maxAck, snap.Revision)
		}
		var ps []authz.AccessPolicy
		if snap.State.AccessPolicies != nil {
			ps = *snap.State.AccessPolicies
		}
		if int64(len(ps)) != snap.Revision {
			t.Fatalf("round %d: revision %d holds %d writes", round, snap.Revision, len(ps))
		}
		for i, p := range ps {
			if want := "w-" + strconv.Itoa(i+1); p.ObjectID != want {
				t.Fatalf("round %d: entry %d is %q, want %q", round, i, p.ObjectID, want)
			}
		}
		acked = snap.Revision
		temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.tmp-*"))
		if len(temps) > 0 {
			t.Fatalf("round %d: OpenFile left temporary files: %v", round, temps)
		}
	}
	if acked < int64(rounds) {
		t.Fatalf("only %d writes in %d rounds: the writer hardly ran", acked, rounds)
	}
	t.Logf("%d rounds killed with SIGKILL, %d writes, none lost", rounds, acked)
}
