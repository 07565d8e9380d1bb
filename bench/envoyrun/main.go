package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vaultwall/vaultwall/bench/internal/harness"
	"github.com/vaultwall/vaultwall/bench/internal/procstat"
	"github.com/vaultwall/vaultwall/bench/workload"
)

type flags struct {
	out, envoyBin, vaultwallBin, shipped, serverEnv string
	envoyCPUs, authzCPUs                            string
	rounds, workers, sources, callers, dataset      int
	duration, warmup                                time.Duration
	rates                                           string
}

func main() {
	var f flags
	envoyDefault := os.Getenv("ENVOY_BIN")
	if envoyDefault == "" {
		envoyDefault = "bin/py/lib/python3.11/site-packages/envoy/_bin/envoy"
	}
	cpuE, cpuA := defaultPins(runtime.NumCPU())
	flag.StringVar(&f.out, "out", ".bench/envoy", "directory for binaries, rendered Envoy files, the workload and logs")
	flag.StringVar(&f.envoyBin, "envoy", envoyDefault, "Envoy binary (ENVOY_BIN; make bench-envoy installs the pinned one with make py)")
	flag.StringVar(&f.vaultwallBin, "vaultwall", "", "a prebuilt vaultwall binary (default: build ./cmd/vaultwall)")
	flag.StringVar(&f.shipped, "envoy-config", "envoy/envoy.yaml", "the shipped Envoy file to render")
	flag.StringVar(&f.serverEnv, "server-env", "", "space-separated VAR=value settings for the floor and vaultwall")
	flag.StringVar(&f.envoyCPUs, "envoy-cpus", cpuE, "taskset -c list for the Envoys (one worker each); empty: not pinned")
	flag.StringVar(&f.authzCPUs, "authz-cpus", cpuA, "taskset -c list for the floor and vaultwall; empty: not pinned")
	flag.IntVar(&f.rounds, "rounds", 3, "measured rounds, the configurations alternating; the table shows medians and the spread")
	flag.DurationVar(&f.duration, "d", 3*time.Second, "duration of each measured run")
	flag.DurationVar(&f.warmup, "warmup", 3*time.Second, "closed-loop warm-up per configuration (connections, caches), and (a)'s calibration run")
	flag.IntVar(&f.workers, "c", 16, "closed-loop workers (requests in flight) for the capacity runs; open-loop runs start with as many and add more as needed")
	flag.StringVar(&f.rates, "rates", "25,50,75", "open-loop rates, in percent of (a)'s measured capacity")
	flag.IntVar(&f.sources, "sources", 200, "distinct client addresses (each gets its own connections and PROXY header)")
	flag.IntVar(&f.callers, "callers", 1000, "distinct callers (tokens)")
	flag.IntVar(&f.dataset, "dataset", 10000, "distinct requests in the data set, sent round-robin")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "bench-envoy:", err)
		os.Exit(1)
	}
}

// defaultPins keeps Envoy and the authorizer on cores of their own where
// there are enough: Envoy on core 0, the authorizer on core 1; the load
// generator and the upstream (this process) are not pinned.
func defaultPins(n int) (envoyCPUs, authzCPUs string) {
	if n < 2 {
		return "", ""
	}
	return "0", "1"
}

// config is one of the three fronts.
type config struct {
	name, label string
	decides     bool // vaultwall answers 401/403 by kind
	envoy       *harness.Proc
	authz       *harness.Proc // nil for (a)
	client      *http.Client
	cursor      atomic.Uint64
	runs        map[string][]*outcome // by stage
}

func run(ctx context.Context, f flags) error {
	start := time.Now()
	for _, bin := range []string{f.envoyBin} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("envoy binary %s: %w (run make py, or set ENVOY_BIN)", bin, err)
		}
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("taskset"); err != nil && (f.envoyCPUs != "" || f.authzCPUs != "") {
		fmt.Println("taskset not found: processes are not pinned")
		f.envoyCPUs, f.authzCPUs = "", ""
	}

	floorBin, vwBin, err := harness.BuildServers(ctx, out, f.vaultwallBin)
	if err != nil {
		return err
	}

	harness.Step("generating the workload")
	w, err := workload.Generate(workload.Options{Requests: f.dataset, Callers: f.callers, Sources: f.sources})
	if err != nil {
		return err
	}
	cfgPath, err := w.WriteDir(filepath.Join(out, "workload"))
	if err != nil {
		return err
	}
	ts, nsrc, err := targets(w)
	if err != nil {
		return err
	}
	mix := w.Mix()
	fmt.Printf("%d requests from %d client addresses, %d tokens: ", len(ts), nsrc, w.Tokens)
	for _, k := range workload.Kinds() {
		fmt.Printf("%s %.1f%% ", k, 100*float64(mix[k])/float64(len(ts)))
	}
	fmt.Println()

	pki, err := newPKI(out)
	if err != nil {
		return err
	}
	upAddr, stopUp, err := startUpstream(pki)
	if err != nil {
		return err
	}
	defer stopUp()

	harness.Step("starting the floor, vaultwall and three Envoys")
	var procs []*harness.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	env := strings.Fields(f.serverEnv)
	floorAddr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	floor, err := startProc(out, "floor", f.authzCPUs, env, nil, floorBin, "-addr", floorAddr)
	if err != nil {
		return err
	}
	procs = append(procs, floor)
	vwAddr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	vwHTTP, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	vw, err := startProc(out, "vaultwall", f.authzCPUs, env, nil, vwBin, "serve", "--config", cfgPath, "--grpc-addr", vwAddr, "--http-addr", vwHTTP)
	if err != nil {
		return err
	}
	procs = append(procs, vw)
	if err := floor.WaitTCP(ctx, floorAddr); err != nil {
		return err
	}
	if err := vw.WaitHTTP(ctx, "http://"+vwHTTP+"/readyz"); err != nil {
		return err
	}

	configs := []*config{
		{name: "a", label: "(a) Envoy alone"},
		{name: "b", label: "(b) Envoy + floor", authz: floor},
		{name: "c", label: "(c) Envoy + vaultwall", authz: vw, decides: true},
	}
	authzAddr := map[string]string{"a": "", "b": floorAddr, "c": vwAddr}
	for _, c := range configs {
		path, err := render{shipped: f.shipped, dir: out, name: c.name, authzAddr: authzAddr[c.name], upstream: upAddr, pki: pki}.write()
		if err != nil {
			return err
		}
		adminFile := filepath.Join(out, "envoy-"+c.name+".admin")
		_ = os.Remove(adminFile)
		// The access log (stdout, one JSON line per request) goes to
		// /dev/null itself, not through a pipe this process would drain.
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer devNull.Close()
		e, err := startProc(out, "envoy-"+c.name, f.envoyCPUs, nil, devNull, f.envoyBin, "-c", path,
			"--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "--admin-address-path", adminFile)
		if err != nil {
			return err
		}
		procs = append(procs, e)
		addr, err := waitEnvoy(ctx, adminFile, e)
		if err != nil {
			return fmt.Errorf("envoy %s: %w", c.name, err)
		}
		c.envoy, c.client, c.runs = e, client(addr, pki), map[string][]*outcome{}
	}

	for _, c := range configs {
		harness.Step("warming up " + c.label)
		o := attack(c.client, ts, &c.cursor, 0, f.warmup, f.workers, c.decides)
		if o.errors+o.wrong > o.requests/100 {
			return fmt.Errorf("%s: warm-up: %d errors, %d wrong answers in %d requests (first: %s; logs in %s)", c.label, o.errors, o.wrong, o.requests, o.firstErr, out)
		}
	}
	harness.Step("calibrating: (a)'s capacity")
	capA := measure(configs[0], ts, 0, f.warmup, f.workers).rps()
	var stages []stage
	stages = append(stages, stage{name: "capacity"})
	for _, p := range strings.Split(f.rates, ",") {
		pct, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pct <= 0 {
			return fmt.Errorf("-rates: %q", p)
		}
		stages = append(stages, stage{name: fmt.Sprintf("%d%%", pct), pct: pct, rate: capA * float64(pct) / 100})
	}
	fmt.Printf("(a) closed-loop capacity %.0f rps; open-loop rates:", capA)
	for _, s := range stages[1:] {
		fmt.Printf(" %s = %.0f rps", s.name, s.rate)
	}
	fmt.Println()

	for round := range f.rounds {
		for _, s := range stages {
			for i := range configs {
				c := configs[(i+round)%len(configs)] // rotate, so drift hits all alike
				harness.Step(fmt.Sprintf("round %d/%d, %s: %s", round+1, f.rounds, s.name, c.label))
				o := measure(c, ts, s.rate, f.duration, f.workers)
				if err := ctx.Err(); err != nil {
					return err
				}
				c.runs[s.name] = append(c.runs[s.name], o)
			}
		}
	}
	printTable(f, configs, stages, capA, nsrc)
	fmt.Printf("\nbench-envoy took %s\n", time.Since(start).Round(time.Second))
	return nil
}

type stage struct {
	name string
	pct  int
	rate float64 // 0: closed loop
}

// measure is one run with Envoy's and the authorizer's CPU over it.
func measure(c *config, ts []target, rate float64, du time.Duration, workers int) *outcome {
	e0, _ := procstat.CPU(c.envoy.Pid)
	var a0 time.Duration
	if c.authz != nil {
		a0, _ = procstat.CPU(c.authz.Pid)
	}
	o := attack(c.client, ts, &c.cursor, rate, du, workers, c.decides)
	e1, _ := procstat.CPU(c.envoy.Pid)
	o.envoyCPU = e1 - e0
	if c.authz != nil {
		a1, _ := procstat.CPU(c.authz.Pid)
		o.authzCPU = a1 - a0
	}
	return o
}

// startProc starts argv as harness.Start does, pinned with taskset -c
// cpus when cpus is set (taskset execs the program, so the pid is the
// program's).
func startProc(out, name, cpus string, env []string, stdout *os.File, argv ...string) (*harness.Proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	return harness.Start(out, name, env, stdout, argv...)
}

// waitEnvoy waits for Envoy's admin to say LIVE and returns the front
// listener's address, read from the admin's /listeners.
func waitEnvoy(ctx context.Context, adminFile string, p *harness.Proc) (netip.AddrPort, error) {
	var admin string
	err := p.Poll(ctx, "LIVE", func() bool {
		b, err := os.ReadFile(adminFile)
		if admin = strings.TrimSpace(string(b)); err != nil || admin == "" {
			return false
		}
		code, body := harness.Get("http://" + admin + "/ready")
		return code == http.StatusOK && body == "LIVE"
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	// "vault_https::127.0.0.1:PORT"
	_, body := harness.Get("http://" + admin + "/listeners")
	_, addr, ok := strings.Cut(body, "::")
	if !ok {
		return netip.AddrPort{}, errors.New("admin /listeners: " + body)
	}
	return netip.ParseAddrPort(strings.TrimSpace(addr))
}
