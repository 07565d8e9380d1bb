// Command run is `make bench`: it builds the floor server and vaultwall,
// generates the workload, checks in-process that the request mix is what it
// claims, then starts the floor and vaultwall on loopback in turn and loads
// each with ghz (a warm-up, then the measured run), and prints rps, p50,
// p99, server CPU per Check (from /proc/<pid>/stat), peak RSS (VmHWM), the
// vaultwall/floor ratios and the cache hit rates. Last it runs the Go
// benchmarks of the Check path and its stages and prints them through
// benchstat.
//
// Imports: bench/workload, engine, envoy, grpc.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vaultwall/vaultwall/authz/config"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/bench/workload"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

type flags struct {
	out          string
	ghz          string
	benchstat    string
	vaultwallBin string
	concurrency  int
	connections  int
	warmup       int
	requests     int
	dataset      int
	pacedRPS     int
	pacedN       int
	callers      int
	load         bool
	goBench      bool
	benchCount   int
	benchTime    string
	baseline     string
}

func main() {
	var f flags
	flag.StringVar(&f.out, "out", ".bench", "directory for binaries, the workload, ghz reports and benchmark results")
	flag.StringVar(&f.ghz, "ghz", "bin/tools/ghz", "ghz binary")
	flag.StringVar(&f.benchstat, "benchstat", "bin/tools/benchstat", "benchstat binary")
	flag.StringVar(&f.vaultwallBin, "vaultwall", "", "a prebuilt vaultwall binary (default: build ./cmd/vaultwall)")
	flag.IntVar(&f.concurrency, "c", 16, "ghz concurrency")
	flag.IntVar(&f.connections, "connections", 1, "ghz connections (Envoy keeps one HTTP/2 connection per worker)")
	flag.IntVar(&f.warmup, "warmup", 20000, "warm-up requests per server (not measured)")
	flag.IntVar(&f.requests, "n", 200000, "measured requests per server")
	flag.IntVar(&f.pacedRPS, "paced-rps", 2000, "rate of the paced run (latency below saturation); 0 skips it")
	flag.IntVar(&f.pacedN, "paced-n", 20000, "requests of the paced run")
	flag.IntVar(&f.dataset, "dataset", 10000, "distinct CheckRequests in the data set (ghz sends them round-robin)")
	flag.IntVar(&f.callers, "callers", 1000, "distinct callers (tokens)")
	flag.BoolVar(&f.load, "load", true, "run the load benchmark (floor and vaultwall under ghz)")
	flag.BoolVar(&f.goBench, "gobench", true, "also run the Go benchmarks and benchstat")
	flag.IntVar(&f.benchCount, "count", 5, "go test -count for the Go benchmarks")
	flag.StringVar(&f.benchTime, "benchtime", "500ms", "go test -benchtime for the Go benchmarks")
	flag.StringVar(&f.baseline, "baseline", "", "earlier Go benchmark output to compare with (benchstat old new)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	var tools []string
	if f.load {
		tools = append(tools, f.ghz)
	}
	if f.goBench {
		tools = append(tools, f.benchstat)
	}
	for _, tool := range tools {
		if _, err := os.Stat(tool); err != nil {
			return fmt.Errorf("%s is missing: run `make bench`, which installs it", tool)
		}
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	if f.load {
		if err := loadBenchmark(ctx, f); err != nil {
			return err
		}
	}
	if f.goBench {
		if err := goBenchmarks(ctx, f); err != nil {
			return err
		}
	}
	fmt.Printf("\nbench took %s\n", time.Since(start).Round(time.Second))
	return nil
}

func loadBenchmark(ctx context.Context, f flags) error {
	step("building the floor and vaultwall")
	floorBin := filepath.Join(f.out, "floor")
	if err := goCmd(ctx, "build", "-o", floorBin, "./bench/floor"); err != nil {
		return err
	}
	vwBin := f.vaultwallBin
	if vwBin == "" {
		vwBin = filepath.Join(f.out, "vaultwall")
		if err := goCmd(ctx, "build", "-o", vwBin, "./cmd/vaultwall"); err != nil {
			return err
		}
	}

	step("generating the workload")
	w, err := workload.Generate(workload.Options{Requests: f.dataset, Callers: f.callers})
	if err != nil {
		return err
	}
	cfgPath, err := w.WriteDir(filepath.Join(f.out, "workload"))
	if err != nil {
		return err
	}
	if err := verify(ctx, w, cfgPath); err != nil {
		return err
	}
	printWorkload(w)

	dataFile := filepath.Join(filepath.Dir(cfgPath), workload.RequestsFile)
	var results []*result
	for _, s := range []server{
		{name: "floor", args: func(g, _ string) []string { return []string{floorBin, "-addr", g} }},
		{name: "vaultwall", metrics: true, args: func(g, h string) []string {
			return []string{vwBin, "serve", "--config", cfgPath, "--grpc-addr", g, "--http-addr", h}
		}},
	} {
		step("loading " + s.name)
		r, err := load(ctx, f, s, dataFile)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		results = append(results, r)
	}
	printTable(f, results[0], results[1])
	return nil
}

func step(s string) { fmt.Printf("== %s\n", s) }

func goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// verify runs every request of the data set through the real in-process
// path (engine.Builder, envoy.Server.Check) and fails unless each has the
// outcome the mix claims.
func verify(ctx context.Context, w *workload.Workload, cfgPath string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	keys := token.NewKeyStore(token.StoreOptions{})
	defer keys.Close()
	rt, err := (&engine.Builder{Keys: keys}).Build(ctx, cfg)
	if err != nil {
		return cfg.Annotate(err)
	}
	defer rt.Close()
	if err := rt.Authenticator.WaitReady(ctx); err != nil {
		return err
	}
	srv := envoy.NewServer(nil, nil)
	srv.SetPipeline(rt.Pipeline)
	return w.Verify(func(cr *authv3.CheckRequest) (*authv3.CheckResponse, error) { return srv.Check(ctx, cr) })
}

func printWorkload(w *workload.Workload) {
	o := w.Options
	fmt.Printf("vault: %d IP rules, %d subnet rules, %d access policies; %d callers (%d distinct tokens in the data set, RS256, JWKS file issuer)\n",
		o.IPRules, o.SubnetRules, o.AccessPolicies, o.Callers, w.Tokens)
	mix := w.Mix()
	var parts []string
	for _, k := range workload.Kinds() {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*float64(mix[k])/float64(len(w.Requests))))
	}
	fmt.Printf("mix of the %d CheckRequests (verified in-process): %s\n", len(w.Requests), strings.Join(parts, ", "))
	fmt.Println("  401s: a third without a token, a third expired, a third signed by an unknown key")
}

type server struct {
	name    string
	metrics bool
	args    func(grpcAddr, httpAddr string) []string
}

type result struct {
	name      string
	report    ghzReport
	paced     ghzReport     // at -paced-rps
	cpu       time.Duration // server CPU over the measured run
	rssKiB    int64         // VmHWM at the end
	tokenHits float64       // hit rate over the measured run, -1 when unknown
	policy    float64
	metricsOK bool
}

type ghzReport struct {
	Count   uint64          `json:"count"`
	Total   time.Duration   `json:"total"`
	Average time.Duration   `json:"average"`
	Rps     float64         `json:"rps"`
	Errors  map[string]int  `json:"errorDistribution"`
	Status  map[string]int  `json:"statusCodeDistribution"`
	Latency []latencyBucket `json:"latencyDistribution"`
}

type latencyBucket struct {
	Percentage int           `json:"percentage"`
	Latency    time.Duration `json:"latency"`
}

func (r *ghzReport) percentile(p int) time.Duration {
	for _, l := range r.Latency {
		if l.Percentage == p {
			return l.Latency
		}
	}
	return 0
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func load(ctx context.Context, f flags, s server, dataFile string) (*result, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	argv := s.args(grpcAddr, httpAddr)
	logPath := filepath.Join(f.out, s.name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	if err := waitReady(ctx, grpcAddr, httpAddr, s.metrics, exited); err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}

	ghz := func(n int, out string, extra ...string) (ghzReport, error) {
		var rep ghzReport
		args := []string{"--insecure", "--call", "envoy.service.auth.v3.Authorization.Check",
			"--data-file", dataFile, "-c", strconv.Itoa(f.concurrency), "--connections", strconv.Itoa(f.connections),
			"-n", strconv.Itoa(n), "--timeout", "10s", "--format", "json", "--output", out}
		args = append(append(args, extra...), grpcAddr)
		cmd := exec.CommandContext(ctx, f.ghz, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return rep, fmt.Errorf("ghz: %v: %s", err, stderr.String())
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			return rep, err
		}
		if err := json.Unmarshal(raw, &rep); err != nil {
			return rep, fmt.Errorf("ghz report %s: %w", out, err)
		}
		if len(rep.Errors) > 0 {
			return rep, fmt.Errorf("ghz saw errors: %v", rep.Errors)
		}
		return rep, nil
	}
	if _, err := ghz(f.warmup, filepath.Join(f.out, s.name+"-warmup.json")); err != nil {
		return nil, err
	}
	r := &result{name: s.name, tokenHits: -1, policy: -1}
	var before metrics
	if s.metrics {
		before, _ = scrape(httpAddr)
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	if r.report, err = ghz(f.requests, filepath.Join(f.out, s.name+".json")); err != nil {
		return nil, err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	r.cpu = cpu1 - cpu0
	if r.rssKiB, err = procHWM(pid); err != nil {
		return nil, err
	}
	if f.pacedRPS > 0 {
		if r.paced, err = ghz(f.pacedN, filepath.Join(f.out, s.name+"-paced.json"), "--rps", strconv.Itoa(f.pacedRPS)); err != nil {
			return nil, err
		}
	}
	if s.metrics {
		after, err := scrape(httpAddr)
		if err == nil && before != nil {
			r.metricsOK = true
			r.tokenHits = rate(after, before, "vaultwall_token_cache_hits_total", "vaultwall_token_cache_misses_total")
			r.policy = rate(after, before, "vaultwall_policy_cache_hits_total", "vaultwall_policy_cache_misses_total")
		}
	}
	return r, nil
}

// waitReady waits for gRPC health SERVING and, for vaultwall, /readyz
// (every issuer has its keys).
func waitReady(ctx context.Context, grpcAddr, httpAddr string, readyz bool, exited <-chan error) error {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the server exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the server did not become ready within 60s")
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: envoy.HealthService})
		cancel()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			continue
		}
		if !readyz {
			return nil
		}
		if r, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100

// procCPU is the process's utime+stime, all threads.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	rest := raw[bytes.LastIndexByte(raw, ')')+2:]
	fields := strings.Fields(string(rest))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procHWM is the process's peak resident set size (VmHWM), in KiB.
func procHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}

type metrics map[string]float64

// scrape reads the unlabelled samples of vaultwall's /metrics.
func scrape(httpAddr string) (metrics, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

// rate is hits/(hits+misses) over the measured run, in percent; -1 when
// the metrics are absent.
func rate(after, before metrics, hits, misses string) float64 {
	h1, ok1 := after[hits]
	m1, ok2 := after[misses]
	if !ok1 || !ok2 {
		return -1
	}
	h, m := h1-before[hits], m1-before[misses]
	if h+m == 0 {
		return -1
	}
	return 100 * h / (h + m)
}

func (r *result) cpuPerCheck() time.Duration {
	if r.report.Count == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.report.Count)
}

func printTable(f flags, floor, vw *result) {
	fmt.Printf("\nghz -c %d --connections %d, %d warm-up + %d measured requests per server as fast as they go (closed loop),\n"+
		"then %d at %d rps; %d cores shared by ghz and the server. CPU per Check and peak RSS are the server's.\n\n",
		f.concurrency, f.connections, f.warmup, f.requests, f.pacedN, f.pacedRPS, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfloor\tvaultwall\tvaultwall/floor\ttarget\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	p50f, p50v := floor.report.percentile(50), vw.report.percentile(50)
	p99f, p99v := floor.report.percentile(99), vw.report.percentile(99)
	cf, cv := floor.cpuPerCheck(), vw.cpuPerCheck()
	fmt.Fprintf(tw, "rps\t%.0f\t%.0f\t%s\t\t\n", floor.report.Rps, vw.report.Rps, ratio(vw.report.Rps, floor.report.Rps))
	fmt.Fprintf(tw, "p50\t%s\t%s\t%s\t\t\n", ms(p50f), ms(p50v), ratio(float64(p50v), float64(p50f)))
	fmt.Fprintf(tw, "p99\t%s\t%s\t%s\t%s\t\n", ms(p99f), ms(p99v), ratio(float64(p99v), float64(p99f)), verdict(p99v <= 3*time.Millisecond, "≤ 3 ms"))
	fmt.Fprintf(tw, "CPU per Check\t%.1f µs\t%.1f µs\t%s\t%s\t\n", us(cf), us(cv), ratio(float64(cv), float64(cf)), verdict(float64(cv) <= 1.5*float64(cf), "≤ 1.50×"))
	fmt.Fprintf(tw, "peak RSS\t%.1f MiB\t%.1f MiB\t%s\t%s\t\n", mib(floor.rssKiB), mib(vw.rssKiB), ratio(float64(vw.rssKiB), float64(floor.rssKiB)), verdict(mib(vw.rssKiB) <= 100, "≤ 100 MiB"))
	if f.pacedRPS > 0 {
		fmt.Fprintf(tw, "\t\t\t\t\t\n")
		fmt.Fprintf(tw, "paced at %d rps:\t\t\t\t\t\n", f.pacedRPS)
		p50f, p50v := floor.paced.percentile(50), vw.paced.percentile(50)
		p99f, p99v := floor.paced.percentile(99), vw.paced.percentile(99)
		fmt.Fprintf(tw, "p50\t%s\t%s\t%s\t\t\n", ms(p50f), ms(p50v), ratio(float64(p50v), float64(p50f)))
		fmt.Fprintf(tw, "p99\t%s\t%s\t%s\t%s\t\n", ms(p99f), ms(p99v), ratio(float64(p99v), float64(p99f)), verdict(p99v <= 3*time.Millisecond, "≤ 3 ms"))
	}
	tw.Flush()
	fmt.Println()
	if vw.tokenHits >= 0 {
		fmt.Printf("verified-token cache hit rate over the measured run: %.1f%% %s\n", vw.tokenHits, verdict(vw.tokenHits >= 90, "≥ 90%"))
	} else {
		fmt.Println("verified-token cache hit rate: not exported by this vaultwall's /metrics")
	}
	if vw.policy >= 0 {
		fmt.Printf("authorization decision cache hit rate over the measured run: %.1f%%\n", vw.policy)
	}
	fmt.Printf("status codes: floor %v, vaultwall %v (ext_authz refusals are OK RPCs carrying a denied response)\n",
		floor.report.Status, vw.report.Status)
}

func verdict(ok bool, target string) string {
	if ok {
		return "ok (" + target + ")"
	}
	return "MISSED (" + target + ")"
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
func mib(kib int64) float64      { return float64(kib) / 1024 }

// goBenchmarks runs the Check benchmark and the stages' benchmarks and
// prints them through benchstat (against -baseline when given).
func goBenchmarks(ctx context.Context, f flags) error {
	step(fmt.Sprintf("Go benchmarks (-count %d -benchtime %s)", f.benchCount, f.benchTime))
	out := filepath.Join(f.out, "gobench.txt")
	args := []string{"test", "-run", "^$", "-benchmem", "-count", strconv.Itoa(f.benchCount), "-benchtime", f.benchTime,
		"-bench", "^(BenchmarkCheck|BenchmarkAuthorize|BenchmarkAuthorizeCached|BenchmarkCached|BenchmarkFirewall|BenchmarkClassify|BenchmarkRequestFrom|BenchmarkResponseFrom)$",
		"./bench", "./rego", "./authz/token", "./authz/network", "./authz/route", "./envoy"}
	cmd := exec.CommandContext(ctx, "go", args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	if werr := os.WriteFile(out, buf.Bytes(), 0o644); werr != nil {
		return werr
	}
	if err != nil {
		os.Stdout.Write(buf.Bytes())
		return fmt.Errorf("go test -bench: %w", err)
	}
	files := []string{out}
	if f.baseline != "" {
		files = []string{"before=" + f.baseline, "after=" + out}
	}
	bs := exec.CommandContext(ctx, f.benchstat, files...)
	bs.Stdout, bs.Stderr = os.Stdout, os.Stderr
	fmt.Printf("(raw output: %s)\n", out)
	return bs.Run()
}
