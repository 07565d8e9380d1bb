package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/vaultwall/vaultwall/bench/internal/harness"
)

// per collects one number from each round of a stage.
func per(runs []*outcome, f func(*outcome) float64) []float64 {
	out := make([]float64, len(runs))
	for i, o := range runs {
		out[i] = f(o)
	}
	return out
}

func pctOf(p float64) func(*outcome) float64 {
	return func(o *outcome) float64 { return float64(o.pct(p)) }
}

func perReq(cpu func(*outcome) time.Duration) func(*outcome) float64 {
	return func(o *outcome) float64 {
		if o.requests == 0 {
			return 0
		}
		return float64(cpu(o)) / float64(o.requests)
	}
}

var (
	envoyCPU = perReq(func(o *outcome) time.Duration { return o.envoyCPU })
	authzCPU = perReq(func(o *outcome) time.Duration { return o.authzCPU })
	totalCPU = perReq(func(o *outcome) time.Duration { return o.envoyCPU + o.authzCPU })
)

func ms(ns float64) string { return fmt.Sprintf("%.2f", ns/1e6) }
func us(ns float64) string { return fmt.Sprintf("%.0f", ns/1e3) }

// cell is the median of the rounds and, with more than one round, their
// range.
func cell(v []float64, format func(float64) string) string {
	if len(v) < 2 {
		return format(harness.Median(v))
	}
	return fmt.Sprintf("%s [%s–%s]", format(harness.Median(v)), format(slices.Min(v)), format(slices.Max(v)))
}

func signed(format func(float64) string) func(float64) string {
	return func(v float64) string {
		if v >= 0 {
			return "+" + format(v)
		}
		return format(v)
	}
}

func printTable(f flags, configs []*config, stages []stage, capA float64, sources int) {
	pin := "not pinned"
	if f.envoyCPUs != "" || f.authzCPUs != "" {
		pin = fmt.Sprintf("Envoys on CPU %s, floor and vaultwall on CPU %s, load generator and upstream not pinned", f.envoyCPUs, f.authzCPUs)
	}
	fmt.Printf("\nHTTPS/1.1 through Envoy (shipped %s, one worker) to a Key Vault–shaped upstream; %d client addresses (PROXY v2), make bench's mix.\n"+
		"%d rounds of %s per configuration and stage, the configurations alternating; %d cores (%s).\n"+
		"Cells: median [min–max of the rounds]. Latency in ms, CPU in µs per request (/proc utime+stime). (a)'s capacity: %.0f rps.\n",
		f.shipped, sources, f.rounds, f.duration, runtime.NumCPU(), pin, capA)
	for _, s := range stages {
		if s.rate == 0 {
			fmt.Printf("\n%s: closed loop, %d requests in flight\n", s.name, f.workers)
		} else {
			fmt.Printf("\n%s of (a)'s capacity: open loop at %.0f rps\n", s.name, s.rate)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\trps\tp50\tp99\tp99.9\tEnvoy CPU\tauthz CPU\terrors\twrong\t")
		med := map[string]map[string]float64{}
		for _, c := range configs {
			runs := c.runs[s.name]
			errs, wrong := 0, 0
			for _, o := range runs {
				errs += o.errors
				wrong += o.wrong
			}
			authz := "-"
			if c.authz != nil {
				authz = cell(per(runs, authzCPU), us)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", c.label,
				cell(per(runs, (*outcome).rps), func(v float64) string { return fmt.Sprintf("%.0f", v) }),
				cell(per(runs, pctOf(50)), ms), cell(per(runs, pctOf(99)), ms), cell(per(runs, pctOf(99.9)), ms),
				cell(per(runs, envoyCPU), us), authz, errs, wrong)
			med[c.name] = map[string]float64{
				"p50": harness.Median(per(runs, pctOf(50))), "p99": harness.Median(per(runs, pctOf(99))), "p99.9": harness.Median(per(runs, pctOf(99.9))),
				"cpu": harness.Median(per(runs, totalCPU)),
			}
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
		fmt.Fprintln(tw, "added\t\tp50\tp99\tp99.9\tCPU (Envoy + authz)\t\t\t\t")
		add := func(label, x, y string) {
			fmt.Fprintf(tw, "%s\t\t%s\t%s\t%s\t%s\t\t\t\t\n", label,
				signed(ms)(med[x]["p50"]-med[y]["p50"]), signed(ms)(med[x]["p99"]-med[y]["p99"]),
				signed(ms)(med[x]["p99.9"]-med[y]["p99.9"]), signed(us)(med[x]["cpu"]-med[y]["cpu"]))
		}
		add("the floor over Envoy alone (b−a)", "b", "a")
		add("vaultwall over Envoy alone (c−a)", "c", "a")
		add("vaultwall over the floor (c−b)", "c", "b")
		ratio := func(k string) string {
			fl := med["b"][k] - med["a"][k]
			if fl <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", (med["c"][k]-med["a"][k])/fl)
		}
		fmt.Fprintf(tw, "vaultwall's added / the floor's\t\t%s\t%s\t%s\t%s\t\t\t\t\n", ratio("p50"), ratio("p99"), ratio("p99.9"), ratio("cpu"))
		tw.Flush()
		for _, c := range configs {
			for _, o := range c.runs[s.name] {
				if o.firstErr != "" {
					fmt.Printf("  %s, first error or wrong answer: %s\n", c.label, o.firstErr)
					break
				}
			}
		}
		if s.pct == 50 {
			fmt.Printf("targets at 50%%: vaultwall's added p50 ≤ 1.2× the floor's: %s; added p99 ≤ 1.5× the floor's: %s\n",
				ratio("p50"), ratio("p99"))
		}
	}
	fmt.Println("\nerrors: transport errors and 5xx over all rounds; wrong: answers other than the request's due one (200, or for (c) the kind's 401/403).")
}
