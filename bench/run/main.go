// Command run is `make bench`: it builds the floor server and vaultwall,
// generates the workload, checks in-process that the request mix is what it
// claims, then starts the floor and vaultwall on loopback in turn and loads
// each with ghz (a warm-up, then the measured run), and prints rps, p50,
// p99, server CPU per Check (from /proc/<pid>/stat), peak RSS (VmHWM), the
// vaultwall/floor ratios and the cache hit rates. Last it runs the Go
// benchmarks of the Check path and its stages and prints them through
// benchstat.
//
// Imports: bench/workload, bench/internal/harness, bench/internal/procstat,
// engine, envoy, grpc.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
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

	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/bench/internal/harness"
	"github.com/vaultwall/vaultwall/bench/internal/procstat"
	"github.com/vaultwall/vaultwall/bench/workload"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

type flags struct {
	out          string
	ghz          string
	benchstat    string
	vaultwallBin string
	serverEnv    string
	concurrency  int
	connections  int
	warmup       int
	requests     int
	dataset      int
	rounds       int
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
	flag.StringVar(&f.serverEnv, "server-env", "", "space-separated VAR=value settings for both servers (e.g. \"GOGC=200 GOMEMLIMIT=80MiB\")")
	flag.IntVar(&f.concurrency, "c", 16, "ghz concurrency")
	flag.IntVar(&f.connections, "connections", 1, "ghz connections (Envoy keeps one HTTP/2 connection per worker)")
	flag.IntVar(&f.warmup, "warmup", 20000, "warm-up requests per server (not measured)")
	flag.IntVar(&f.requests, "n", 100000, "measured requests per server and round")
	flag.IntVar(&f.rounds, "rounds", 3, "measured rounds, alternating the servers; the table shows medians")
	flag.IntVar(&f.pacedRPS, "paced-rps", 2000, "rate of the paced run (latency below saturation); 0 skips it")
	flag.IntVar(&f.pacedN, "paced-n", 20000, "requests of the paced run")
	flag.IntVar(&f.dataset, "dataset", 10000, "distinct CheckRequests in the data set (ghz sends them round-robin)")
	flag.IntVar(&f.callers, "callers", 1000, "distinct callers (tokens)")
	flag.BoolVar(&f.load, "load", true, "run the load benchmark (floor and vaultwall under ghz)")
	flag.BoolVar(&f.goBench, "gobench", true, "also run the Go benchmarks and benchstat")
	flag.IntVar(&f.benchCount, "count", 6, "go test -count for the Go benchmarks")
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
	floorBin, vwBin, err := harness.BuildServers(ctx, f.out, f.vaultwallBin)
	if err != nil {
		return err
	}

	harness.Step("generating the workload")
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
	servers := []server{
		{name: "floor", args: func(g, _ string) []string { return []string{floorBin, "-addr", g} }},
		{name: "vaultwall", metrics: true, args: func(g, h string) []string {
			return []string{vwBin, "serve", "--config", cfgPath, "--grpc-addr", g, "--http-addr", h}
		}},
	}
	harness.Step("starting the floor and vaultwall on loopback")
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for _, s := range servers {
		p, err := start(ctx, f, s)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	floor, vw := procs[0], procs[1]
	for _, p := range procs {
		harness.Step("warming up " + p.Name)
		if _, err := p.ghz(ctx, f, dataFile, f.warmup, "warmup"); err != nil {
			return err
		}
	}
	before, err := scrape(vw.httpAddr)
	if err != nil {
		return fmt.Errorf("vaultwall /metrics: %w", err)
	}
	for round := range f.rounds {
		order := procs
		if round%2 == 1 { // alternate, so that drift in the machine's load hits both alike
			order = []*proc{vw, floor}
		}
		for _, p := range order {
			harness.Step(fmt.Sprintf("round %d/%d: %s", round+1, f.rounds, p.Name))
			if err := p.measure(ctx, f, dataFile, round); err != nil {
				return err
			}
		}
	}
	after, err := scrape(vw.httpAddr)
	if err != nil {
		return fmt.Errorf("vaultwall /metrics: %w", err)
	}
	vw.tokenHits = rate(after, before, "vaultwall_token_cache_hits_total", "vaultwall_token_cache_misses_total")
	vw.policyHits = rate(after, before, "vaultwall_policy_cache_hits_total", "vaultwall_policy_cache_misses_total")
	for _, p := range procs {
		if f.pacedRPS > 0 {
			harness.Step(fmt.Sprintf("paced: %s at %d rps", p.Name, f.pacedRPS))
			if p.paced, err = p.ghz(ctx, f, dataFile, f.pacedN, "paced", "--rps", strconv.Itoa(f.pacedRPS)); err != nil {
				return err
			}
		}
		if p.rssKiB, err = procstat.HWM(p.Pid); err != nil {
			return err
		}
	}
	printTable(f, floor, vw)
	return nil
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

// proc is a running server and what was measured of it.
type proc struct {
	*harness.Proc
	grpcAddr, httpAddr string

	rounds     []ghzReport     // the measured closed-loop runs
	cpu        []time.Duration // the server's CPU over each
	paced      ghzReport       // at -paced-rps
	rssKiB     int64           // VmHWM at the end
	tokenHits  float64         // hit rates over the measured rounds, -1 when unknown
	policyHits float64
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

// start runs a server and waits until it is ready.
func start(ctx context.Context, f flags, s server) (*proc, error) {
	grpcAddr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	hp, err := harness.Start(f.out, s.name, strings.Fields(f.serverEnv), nil, s.args(grpcAddr, httpAddr)...)
	if err != nil {
		return nil, err
	}
	p := &proc{Proc: hp, grpcAddr: grpcAddr, httpAddr: httpAddr, tokenHits: -1, policyHits: -1}
	if err := p.waitReady(ctx, s.metrics); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// ghz runs ghz against the server and reads its JSON report.
func (p *proc) ghz(ctx context.Context, f flags, dataFile string, n int, label string, extra ...string) (ghzReport, error) {
	var rep ghzReport
	out := filepath.Join(f.out, p.Name+"-"+label+".json")
	args := []string{"--insecure", "--call", "envoy.service.auth.v3.Authorization.Check",
		"--data-file", dataFile, "-c", strconv.Itoa(f.concurrency), "--connections", strconv.Itoa(f.connections),
		"-n", strconv.Itoa(n), "--timeout", "10s", "--format", "json", "--output", out}
	args = append(append(args, extra...), p.grpcAddr)
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
		return rep, fmt.Errorf("%s: ghz saw errors: %v", p.Name, rep.Errors)
	}
	return rep, nil
}

// measure is one closed-loop run, with the server's CPU over it.
func (p *proc) measure(ctx context.Context, f flags, dataFile string, round int) error {
	cpu0, err := procstat.CPU(p.Pid)
	if err != nil {
		return err
	}
	rep, err := p.ghz(ctx, f, dataFile, f.requests, fmt.Sprintf("round%d", round+1))
	if err != nil {
		return err
	}
	cpu1, err := procstat.CPU(p.Pid)
	if err != nil {
		return err
	}
	p.rounds = append(p.rounds, rep)
	p.cpu = append(p.cpu, cpu1-cpu0)
	return nil
}

// waitReady waits for gRPC health SERVING and, with readyz (vaultwall),
// /readyz (every issuer has its keys).
func (p *proc) waitReady(ctx context.Context, readyz bool) error {
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	return p.Poll(ctx, "readiness", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: envoy.HealthService})
		cancel()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return false
		}
		if !readyz {
			return true
		}
		code, _ := harness.Get("http://" + p.httpAddr + "/readyz")
		return code == http.StatusOK
	})
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

// cpuPerCheck is the server's CPU per request in each round.
func (p *proc) cpuPerCheck() []float64 {
	out := make([]float64, len(p.rounds))
	for i, r := range p.rounds {
		if r.Count > 0 {
			out[i] = float64(p.cpu[i]) / float64(r.Count)
		}
	}
	return out
}

// per collects one number from each round.
func (p *proc) per(f func(r *ghzReport) float64) []float64 {
	out := make([]float64, len(p.rounds))
	for i := range p.rounds {
		out[i] = f(&p.rounds[i])
	}
	return out
}

func printTable(f flags, floor, vw *proc) {
	if f.serverEnv != "" {
		fmt.Printf("\nboth servers ran with %s", f.serverEnv)
	}
	fmt.Printf("\nghz -c %d --connections %d; per server a %d-request warm-up, then %d rounds of %d requests as fast as they go\n"+
		"(closed loop, servers alternating), then %d requests at %d rps. %d cores shared by ghz and both servers.\n"+
		"Medians of the rounds; CPU per Check and peak RSS are the server process's.\n\n",
		f.concurrency, f.connections, f.warmup, f.rounds, f.requests, f.pacedN, f.pacedRPS, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfloor\tvaultwall\tvaultwall/floor\ttarget\t")
	ms := func(ns float64) string { return fmt.Sprintf("%.3f ms", ns/1e6) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	pct := func(p int) func(r *ghzReport) float64 {
		return func(r *ghzReport) float64 { return float64(r.percentile(p)) }
	}
	rps := func(r *ghzReport) float64 { return r.Rps }
	row := func(name string, fv, vv float64, format func(float64) string, target string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", name, format(fv), format(vv), ratio(vv, fv), target)
	}
	row("rps", harness.Median(floor.per(rps)), harness.Median(vw.per(rps)), func(v float64) string { return fmt.Sprintf("%.0f", v) }, "")
	row("p50", harness.Median(floor.per(pct(50))), harness.Median(vw.per(pct(50))), ms, "")
	p99 := harness.Median(vw.per(pct(99)))
	row("p99", harness.Median(floor.per(pct(99))), p99, ms, verdict(p99 <= 3e6, "≤ 3 ms"))
	cf, cv := harness.Median(floor.cpuPerCheck()), harness.Median(vw.cpuPerCheck())
	row("CPU per Check", cf, cv, func(v float64) string { return fmt.Sprintf("%.1f µs", v/1e3) }, verdict(cv <= 1.5*cf, "≤ 1.50×"))
	row("peak RSS", float64(floor.rssKiB), float64(vw.rssKiB), func(v float64) string { return fmt.Sprintf("%.1f MiB", v/1024) },
		verdict(float64(vw.rssKiB)/1024 <= 100, "≤ 100 MiB"))
	if f.pacedRPS > 0 {
		fmt.Fprintf(tw, "\t\t\t\t\t\n")
		fmt.Fprintf(tw, "paced at %d rps:\t\t\t\t\t\n", f.pacedRPS)
		row("p50", float64(floor.paced.percentile(50)), float64(vw.paced.percentile(50)), ms, "")
		row("p99", float64(floor.paced.percentile(99)), float64(vw.paced.percentile(99)), ms, verdict(vw.paced.percentile(99) <= 3*time.Millisecond, "≤ 3 ms"))
	}
	tw.Flush()
	var ratios []string
	fc, vc := floor.cpuPerCheck(), vw.cpuPerCheck()
	for i := range fc {
		ratios = append(ratios, fmt.Sprintf("%.1f/%.1f µs = %.2f×", vc[i]/1e3, fc[i]/1e3, vc[i]/fc[i]))
	}
	fmt.Printf("\nCPU per Check by round (vaultwall/floor): %s\n", strings.Join(ratios, ", "))
	if vw.tokenHits >= 0 {
		fmt.Printf("verified-token cache hit rate over the measured rounds: %.1f%% %s\n", vw.tokenHits, verdict(vw.tokenHits >= 90, "≥ 90%"))
	} else {
		fmt.Println("verified-token cache hit rate: not exported by this vaultwall's /metrics")
	}
	if vw.policyHits >= 0 {
		fmt.Printf("authorization decision cache hit rate over the measured rounds: %.1f%%\n", vw.policyHits)
	}
	fmt.Printf("status codes: floor %v, vaultwall %v (ext_authz refusals are OK RPCs carrying a denied response)\n",
		floor.rounds[0].Status, vw.rounds[0].Status)
}

func verdict(ok bool, target string) string {
	if ok {
		return "ok (" + target + ")"
	}
	return "MISSED (" + target + ")"
}

// goBenchmarks runs the Check benchmark and the stages' benchmarks and
// prints them through benchstat (against -baseline when given).
func goBenchmarks(ctx context.Context, f flags) error {
	harness.Step(fmt.Sprintf("Go benchmarks (-count %d -benchtime %s)", f.benchCount, f.benchTime))
	out := filepath.Join(f.out, "gobench.txt")
	args := []string{"test", "-run", "^$", "-benchmem", "-count", strconv.Itoa(f.benchCount), "-benchtime", f.benchTime,
		"-bench", "^(BenchmarkCheck|BenchmarkCheckVaults|BenchmarkAuthorize|BenchmarkAuthorizeCached|BenchmarkCached|BenchmarkFirewall|BenchmarkClassify|BenchmarkRequestFrom|BenchmarkResponseFrom)$",
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
	if err := bs.Run(); err != nil {
		return err
	}
	small, large := benchMetric(buf.Bytes(), "BenchmarkCheck/rules=10-", "cpu-ns/op"), benchMetric(buf.Bytes(), "BenchmarkCheck/rules=10000-", "cpu-ns/op")
	if small > 0 && large > 0 {
		fmt.Printf("\nCPU per in-process Check, 10,000 rules and policies vs 10 (medians): %.1f / %.1f µs = %.2f× %s\n",
			large/1e3, small/1e3, large/small, verdict(large <= 1.2*small, "≤ 1.20×"))
	}
	one, many := benchMetric(buf.Bytes(), "BenchmarkCheckVaults/vaults=1-", "cpu-ns/op"), benchMetric(buf.Bytes(), "BenchmarkCheckVaults/vaults=1000-", "cpu-ns/op")
	if one > 0 && many > 0 {
		fmt.Printf("CPU per in-process Check, 1,000 vaults of 100 rules vs one vault (medians): %.1f / %.1f µs = %.2f× %s\n",
			many/1e3, one/1e3, many/one, verdict(many <= 1.1*one, "≤ 1.10×"))
		fmt.Printf("building 1,000 vaults: %.1f s; heap per vault: %.0f KiB\n",
			benchMetric(buf.Bytes(), "BenchmarkCheckVaults/vaults=1000-", "build-ms")/1e3,
			benchMetric(buf.Bytes(), "BenchmarkCheckVaults/vaults=1000-", "heap-KiB/vault"))
	}
	return nil
}

// benchMetric is the median of a metric over the lines of a benchmark.
func benchMetric(out []byte, prefix, unit string) float64 {
	var v []float64
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		for i := 1; i < len(fields); i++ {
			if fields[i] == unit {
				if x, err := strconv.ParseFloat(fields[i-1], 64); err == nil {
					v = append(v, x)
				}
			}
		}
	}
	return harness.Median(v)
}
