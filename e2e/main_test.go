package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// vaultwallBin is the binary built from this tree for the run.
var vaultwallBin string

// TestMain builds vaultwall once for every scenario. The binary is built
// with the race detector exactly when this test binary is: `go test -race
// ./e2e/...` (what `make e2e` and `make test` run) then also catches data
// races inside the vaultwall processes, at a cost that stays small — the
// race-instrumented packages are in the build cache from the unit tests, and
// a race-built vaultwall is ready in well under a second — while a plain
// `go test ./e2e/...` stays plain.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vaultwall-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vaultwallBin = filepath.Join(dir, "vaultwall")
	args := []string{"build", "-o", vaultwallBin, "-ldflags", "-X main.version=e2e"}
	if raceEnabled {
		args = append(args, "-race")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is needed to build vaultwall:", err)
		return 1
	}
	cmd := exec.Command(gobin, append(args, "./cmd/vaultwall")...)
	cmd.Dir = ".." // the module root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building vaultwall:", err)
		return 1
	}
	fmt.Printf("e2e: vaultwall built in %v (race detector: %v); front: %s\n",
		time.Since(began).Round(time.Millisecond), raceEnabled, front.Which())
	return m.Run()
}
