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
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// target is a package under mutation and the files of it that are.
type target struct {
	pkg   string   // ./authz/token
	files []string // nil: every non-test .go file; else these (relative to the module root)
	rego  string   // a directory of .rego files judged by this package's tests, or ""
}

// defaultTargets are the security-critical packages: every stage of
// authz/..., the Rego policy and its package, the control plane's
// authorization and mutation, the Envoy adapter.
var defaultTargets = []target{
	{pkg: "./authz"},
	{pkg: "./config"},
	{pkg: "./authz/network"},
	{pkg: "./authz/peer"},
	{pkg: "./authz/route"},
	{pkg: "./authz/token"},
	{pkg: "./rego", rego: "rego/policy"},
	{pkg: "./controlplane", files: []string{"controlplane/auth.go", "controlplane/mutate.go"}},
	{pkg: "./envoy"},
}

type outcome int

const (
	notRun outcome = iota
	killed
	survived
	notViable
	timedOut
)

type result struct {
	m   mutant
	out outcome
	dur time.Duration
}

func main() {
	var (
		budget   = flag.Duration("budget", 30*time.Minute, "stop starting mutants after this much wall time (0: no limit)")
		list     = flag.Bool("list", false, "list the mutants and estimate a full run's time; run nothing")
		pkgs     = flag.String("pkgs", "", "comma-separated package directories to mutate (default: the security-critical set)")
		seed     = flag.Uint64("seed", 1, "order in which mutants are drawn")
		maxN     = flag.Int("max", 0, "at most this many mutants per package (0: all)")
		timeoutF = flag.Duration("timeout", 0, "go test -timeout per mutant (default: 5x the package's baseline, at least 60s)")
		equiv    = flag.String("equivalent", "cmd/mutate/equivalent.txt", "file listing equivalent mutants")
		verbose  = flag.Bool("v", false, "print each mutant's outcome as it is known")
		files    = flag.String("files", "", "mutate only files whose path matches this regular expression (e.g. '\\.rego$')")
	)
	flag.Parse()
	fileRE, err := regexp.Compile(*files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate: -files:", err)
		os.Exit(2)
	}
	if err := run(os.Stdout, *budget, *list, *pkgs, fileRE, *seed, *maxN, *timeoutF, *equiv, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
}

func run(w io.Writer, budget time.Duration, list bool, pkgs string, fileRE *regexp.Regexp, seed uint64, maxN int, timeout time.Duration, equivFile string, verbose bool) error {
	targets := defaultTargets
	if pkgs != "" {
		var sel []target
		for _, p := range strings.Split(pkgs, ",") {
			p = "./" + strings.TrimPrefix(strings.TrimSpace(p), "./")
			i := slices.IndexFunc(defaultTargets, func(t target) bool { return t.pkg == p })
			if i < 0 {
				sel = append(sel, target{pkg: p})
			} else {
				sel = append(sel, defaultTargets[i])
			}
		}
		targets = sel
	}
	equivalent, err := readEquivalent(equivFile)
	if err != nil {
		return err
	}
	byPkg := map[string][]mutant{}
	for _, t := range targets {
		all, err := discover(t)
		if err != nil {
			return err
		}
		var ms []mutant
		for _, m := range all {
			if fileRE.MatchString(m.file) {
				ms = append(ms, m)
			}
		}
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		if maxN > 0 && len(ms) > maxN {
			ms = ms[:maxN]
		}
		byPkg[t.pkg] = ms
	}

	tmp, err := os.MkdirTemp("", "vaultwall-mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Baselines: the package passes unmutated, and how long it takes.
	base := map[string]time.Duration{}
	for _, t := range targets {
		if list {
			break
		}
		start := time.Now()
		out, code := goTest(context.Background(), t.pkg, "", 10*time.Minute)
		if code != 0 {
			return fmt.Errorf("%s fails without any mutant; fix it first:\n%s", t.pkg, tail(out, 20))
		}
		base[t.pkg] = time.Since(start)
		fmt.Fprintf(w, "baseline %-16s %5.1fs, %d mutants\n", t.pkg, base[t.pkg].Seconds(), len(byPkg[t.pkg]))
	}
	if list {
		total := 0
		for _, t := range targets {
			for _, m := range byPkg[t.pkg] {
				fmt.Fprintf(w, "%s:%d:%d %s %q -> %q\n", m.file, m.line, m.col, m.op, m.from, m.to)
			}
			total += len(byPkg[t.pkg])
		}
		fmt.Fprintf(w, "%d mutants in %d packages\n", total, len(targets))
		return nil
	}

	// Interleave packages so that a budget cut leaves each a fair sample.
	var queue []mutant
	for i := 0; ; i++ {
		more := false
		for _, t := range targets {
			if ms := byPkg[t.pkg]; i < len(ms) {
				queue = append(queue, ms[i])
				more = true
			}
		}
		if !more {
			break
		}
	}
	var est time.Duration
	for _, t := range targets {
		est += base[t.pkg] * time.Duration(len(byPkg[t.pkg]))
	}
	fmt.Fprintf(w, "%d mutants; a full run would take about %v at the baselines (a killed mutant usually stops sooner)\n",
		len(queue), est.Round(time.Second))

	start := time.Now()
	results := make([]result, 0, len(queue))
	for i, m := range queue {
		if budget > 0 && time.Since(start) > budget {
			for _, m := range queue[i:] {
				results = append(results, result{m: m, out: notRun})
			}
			break
		}
		to := timeout
		if to == 0 {
			to = max(5*base[m.pkg], time.Minute)
		}
		r := runMutant(tmp, m, to)
		results = append(results, r)
		if verbose {
			fmt.Fprintf(w, "%-10s %5.1fs %s:%d:%d %s %q -> %q\n", r.out, r.dur.Seconds(), m.file, m.line, m.col, m.op, m.from, m.to)
		}
	}
	report(w, targets, results, equivalent, time.Since(start))
	return nil
}

// discover lists a target's mutants.
func discover(t target) ([]mutant, error) {
	dir := strings.TrimPrefix(t.pkg, "./")
	files := t.files
	if files == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") && n != "doc.go" && !strings.HasSuffix(n, ".pb.go") {
				files = append(files, filepath.Join(dir, n))
			}
		}
	}
	var out []mutant
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(src, []byte("Code generated")) {
			continue
		}
		ms, err := goMutants(t.pkg, f, src)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	if t.rego != "" {
		regos, _ := filepath.Glob(filepath.Join(t.rego, "*.rego"))
		for _, f := range regos {
			if strings.HasSuffix(f, "_test.rego") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, regoMutants(t.pkg, f, src)...)
		}
	}
	return out, nil
}

var (
	buildFailed  = regexp.MustCompile(`\[build failed\]|\[setup failed\]|^# `)
	regoNotValid = regexp.MustCompile(`rego_(parse|compile|type|unsafe_var|recursion)_error`)
)

// runMutant runs the package's tests with the mutant overlaid.
func runMutant(tmp string, m mutant, timeout time.Duration) result {
	start := time.Now()
	src, err := os.ReadFile(m.file)
	if err != nil {
		return result{m: m, out: notViable}
	}
	abs, _ := filepath.Abs(m.file)
	mutated := filepath.Join(tmp, "mutant"+filepath.Ext(m.file))
	overlay := filepath.Join(tmp, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: mutated}})
	if os.WriteFile(mutated, m.apply(src), 0o600) != nil || os.WriteFile(overlay, ov, 0o600) != nil {
		return result{m: m, out: notViable}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	out, code := goTest(ctx, m.pkg, overlay, timeout)
	r := result{m: m, dur: time.Since(start)}
	switch {
	case code == 0:
		r.out = survived
	case ctx.Err() != nil || bytes.Contains(out, []byte("panic: test timed out")):
		r.out = timedOut
	case buildFailed.Match(out) || regoNotValid.Match(out):
		r.out = notViable
	default:
		r.out = killed
	}
	return r
}

func goTest(ctx context.Context, pkg, overlay string, timeout time.Duration) ([]byte, int) {
	args := []string{"test", "-count=1", "-failfast", "-timeout", timeout.String()}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return buf.Bytes(), 0
	case errors.As(err, &ee):
		return buf.Bytes(), max(ee.ExitCode(), 1)
	}
	return append(buf.Bytes(), err.Error()...), 1
}

// readEquivalent reads "file:line OPERATOR  # reason" lines.
func readEquivalent(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, reason, _ := strings.Cut(sc.Text(), "#")
		if fields := strings.Fields(line); len(fields) == 2 {
			out[fields[0]+" "+fields[1]] = strings.TrimSpace(reason)
		}
	}
	return out, sc.Err()
}

func (o outcome) String() string {
	return [...]string{"not run", "killed", "SURVIVED", "not viable", "timed out"}[o]
}

func report(w io.Writer, targets []target, results []result, equivalent map[string]string, took time.Duration) {
	type counts struct{ total, killed, survived, equiv, notViable, timedOut, notRun int }
	per := map[string]*counts{}
	for _, t := range targets {
		per[t.pkg] = &counts{}
	}
	var survivors, equivs []result
	for _, r := range results {
		c := per[r.m.pkg]
		c.total++
		switch r.out {
		case killed:
			c.killed++
		case timedOut:
			c.timedOut++
		case notViable:
			c.notViable++
		case notRun:
			c.notRun++
		case survived:
			if _, ok := equivalent[r.m.site()+" "+r.m.op]; ok {
				c.equiv++
				equivs = append(equivs, r)
			} else {
				c.survived++
				survivors = append(survivors, r)
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package\tmutants\tkilled\ttimed out\tsurvived\tequivalent\tnot viable\tnot run\tscore\t")
	var all counts
	for _, t := range targets {
		c := per[t.pkg]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", t.pkg, c.total, c.killed, c.timedOut, c.survived, c.equiv, c.notViable, c.notRun,
			score(c.killed+c.timedOut, c.survived))
		all.total += c.total
		all.killed += c.killed
		all.timedOut += c.timedOut
		all.survived += c.survived
		all.equiv += c.equiv
		all.notViable += c.notViable
		all.notRun += c.notRun
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", all.total, all.killed, all.timedOut, all.survived, all.equiv, all.notViable, all.notRun,
		score(all.killed+all.timedOut, all.survived))
	tw.Flush()
	fmt.Fprintf(w, "took %v; score = (killed + timed out) / (killed + timed out + survived), equivalent mutants left out\n", took.Round(time.Second))
	sort.Slice(survivors, func(i, j int) bool { return survivors[i].m.site() < survivors[j].m.site() })
	if len(survivors) > 0 {
		fmt.Fprintf(w, "\nsurviving mutants (%d): no test fails on them\n", len(survivors))
		for _, r := range survivors {
			fmt.Fprintf(w, "  %s:%d:%d %s %q -> %q\n", r.m.file, r.m.line, r.m.col, r.m.op, r.m.from, r.m.to)
		}
	}
	if len(equivs) > 0 {
		fmt.Fprintf(w, "\nequivalent mutants (%d), from %s\n", len(equivs), "equivalent.txt")
		for _, r := range equivs {
			fmt.Fprintf(w, "  %s:%d:%d %s: %s\n", r.m.file, r.m.line, r.m.col, r.m.op, equivalent[r.m.site()+" "+r.m.op])
		}
	}
}

func score(k, s int) string {
	if k+s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(k)/float64(k+s))
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
