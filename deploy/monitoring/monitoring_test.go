package monitoring_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vaultwall/vaultwall/server"
	"github.com/vaultwall/vaultwall/server/servertest"
)

const (
	rulesFile     = "vaultwall-alerts.yaml"
	dashboardFile = "vaultwall-dashboard.json"
	exampleConfig = "../../examples/vault.yaml"
)

var promql = parser.NewParser(parser.Options{})

// exported collects the names of the series vaultwall's /metrics serves, from
// what a running `vaultwall serve` of the example configuration exports on
// /metrics (decisions, latency, keys, caches, audit, shadow, Go and process,
// the engine's status) once it has loaded.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	a, _ := servertest.Start(t, server.Options{ConfigPath: exampleConfig, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Stdout: io.Discard, Version: "test"})
	resp, err := http.Get("http://" + a.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	if !names["vaultwall_decisions_total"] || !names["vaultwall_config_generation"] {
		t.Fatalf("the registry lacks vaultwall's own metrics: %v", keys(names))
	}
	return names
}

// metricNames are the metric names an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: a selector without a metric name: %s", where, vs)
			}
			out = append(out, name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return out
}

// TestAlertRules parses the rules as Prometheus loads them (strict keys,
// PromQL, templates) and checks each names only exported metrics, and that
// the alerts the operator's guide promises are there.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	have := exported(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule %q (only alerts are expected)", g.Name, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: needs a severity label and a summary", r.Alert)
			}
			for _, n := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !have[n] {
					t.Errorf("alert %s: %s is not a metric vaultwall exports", r.Alert, n)
				}
			}
		}
	}
	for _, want := range []string{"VaultwallFailClosedRefusals", "VaultwallFailClosedRatioRising", "VaultwallReloadFailed",
		"VaultwallIssuerKeysStale", "VaultwallAuditDropping", "VaultwallCheckLatencyAboveTimeout"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Grafana's variables, replaced before parsing as Grafana would.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// TestDashboard: the dashboard is Grafana JSON whose every query parses as
// PromQL and names only exported metrics, with the panels the operator's
// guide describes.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("not a dashboard: title %q uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	have := exported(t)
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			for _, n := range metricNames(t, "variable "+v.Name, m[1]) {
				if !have[n] {
					t.Errorf("variable %s: %s is not a metric vaultwall exports", v.Name, n)
				}
			}
		}
	}
	var titles []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			titles = append(titles, p.Title)
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				for _, n := range metricNames(t, "panel "+p.Title, grafanaVars.Replace(tg.Expr)) {
					if !have[n] {
						t.Errorf("panel %q: %s is not a metric vaultwall exports", p.Title, n)
					}
				}
			}
		}
	}
	walk(d.Panels)
	for _, want := range []string{"Decisions by stage and code", "Check latency", "Token cache hit rate", "Decision (policy) cache hit rate",
		"Issuer key refreshes", "Configuration reload failures", "Audit records", "Configuration changes (file, control-plane writes, SIGHUP)"} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q (have %q)", want, titles)
		}
	}
}

// TestNamesCheckCatchesUnknownMetrics: the check above is not vacuous — a
// misspelt metric is reported.
func TestNamesCheckCatchesUnknownMetrics(t *testing.T) {
	have := exported(t)
	names := metricNames(t, "probe", `rate(vaultwall_decision_total[5m]) + vaultwall_config_loaded`)
	if len(names) != 2 || have[names[0]] || !have[names[1]] {
		t.Fatalf("names %v: want the misspelt one unknown and the real one known", names)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
