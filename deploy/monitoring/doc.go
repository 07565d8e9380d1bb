// Package monitoring holds vaultwall's Grafana dashboard
// (vaultwall-dashboard.json) and Prometheus alerting rules
// (vaultwall-alerts.yaml), and nothing else: its tests parse the rules with
// Prometheus's own rule-file and PromQL parsers (github.com/prometheus/
// prometheus, used by this test package only, never by the product binary)
// and check that every metric the rules and the dashboard name is one
// vaultwall exports, as a running server.Serve exports them.
//
// Imports: test code only (server, to scrape a running process; Prometheus
// rule and PromQL parsers); nothing imports it.
package monitoring
