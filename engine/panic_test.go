package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
)

// panicky builds with b, except that a configuration whose location is
// "panic" makes the build panic, as a bug in a stage's compile step would.
func panicky(b *Builder) BuildFunc {
	return func(ctx context.Context, cfg *config.Config) (*Runtime, error) {
		if cfg.Vault.Location == "panic" {
			var m map[string]int
			m["boom"] = 1 // assignment to entry in nil map
		}
		return b.Build(ctx, cfg)
	}
}

// TestHotReloadSurvivesPanic: a hot reload to a configuration whose build
// panics is a refused reload — logged with the file, shown by /readyz as
// the last error (Status), not counted as loaded — and the process keeps serving
// the configuration in force.
func TestHotReloadSurvivesPanic(t *testing.T) {
	is := authztest.NewIssuer(t)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vault.yaml")
	write(t, cfgPath, liveConfig(is, dir))
	_ = os.MkdirAll(filepath.Join(dir, "policy"), 0o755)
	var logs authztest.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	e := New(cfgPath, panicky(b), log)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	watching := make(chan error, 1)
	go func() { watching <- e.Watch(ctx, 50*time.Millisecond) }()
	t.Cleanup(func() { stop(); <-watching })
	tok := is.MintValid()
	allowed := func() bool {
		t.Helper()
		srv := envoy.NewServer(nil, nil)
		srv.SetPipeline(e.Current().Pipeline)
		resp, err := srv.Check(t.Context(), secretCheck(tok, "203.0.113.10", "/secrets/db?api-version=7.5"))
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return resp.GetStatus().GetCode() == int32(code.Code_OK)
	}
	readyz := e.Status
	if !allowed() {
		t.Fatal("allowed request refused before the reload")
	}

	write(t, cfgPath, strings.Replace(liveConfig(is, dir), "westeurope", "panic", 1))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(readyz().LastError, "panic") {
		if time.Now().After(deadline) {
			t.Fatalf("the panicking reload was not reported: %+v", readyz())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := readyz()
	if !st.Loaded || st.Generation != 1 || !strings.Contains(st.LastError, cfgPath) {
		t.Errorf("after a panicking reload /readyz config = %+v; want generation 1 still loaded, the error naming %s", st, cfgPath)
	}
	if !allowed() {
		t.Error("the running configuration stopped serving after a panicking reload")
	}
	if l := logs.String(); !strings.Contains(l, `"msg":"panic while loading the configuration; load refused"`) ||
		!strings.Contains(l, `"file":"`+cfgPath+`"`) || !strings.Contains(l, "assignment to entry in nil map") {
		t.Errorf("the panic was not logged with the file:\n%s", l)
	}

	// A good configuration afterwards loads as usual.
	write(t, cfgPath, strings.Replace(liveConfig(is, dir), "westeurope", "northeurope", 1))
	for readyz().Generation != 2 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("the good configuration after the panic was not loaded: %+v", readyz())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := readyz(); st.LastError != "" {
		t.Errorf("last error kept after a good load: %+v", st)
	}
}

// panicOverlay panics while laying itself over the file.
type panicOverlay struct{}

func (panicOverlay) Parse(string, []byte) (*config.Config, error) { panic("overlay bug") }
func (panicOverlay) Version() string                              { return "1" }

// A panic in the overlay's parse (the control plane's stored state) is a
// refused load too; the first load failing that way leaves nothing loaded.
func TestLoadRefusesPanickingOverlay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	e := New(path, stubBuild, nil)
	e.SetOverlay(panicOverlay{})
	err := e.Load(t.Context())
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), "overlay bug") {
		t.Fatalf("Load = %v; want ErrPanic naming %s", err, path)
	}
	if st := e.Status(); st.Loaded || st.Failures != 1 || st.LastError == "" {
		t.Errorf("status = %+v", st)
	}
}

// Compile (config validate, check) returns a build's panic as an error.
func TestCompileRefusesPanic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, strings.Replace(goodConfig, "westeurope", "panic", 1))
	_, err := Compile(t.Context(), path, panicky(&Builder{}), nil)
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), path+": ") {
		t.Fatalf("Compile = %v; want ErrPanic naming %s", err, path)
	}
	write(t, path, goodConfig)
	rt, err := Compile(t.Context(), path, stubBuild, nil)
	if err != nil || rt.Config.Vault.Name != "contoso-vault" {
		t.Fatalf("Compile = %+v, %v", rt, err)
	}
}
