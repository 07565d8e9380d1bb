package replay_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/replay"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// traffic is a day of requests: allowed and refused at every stage.
func traffic(r *opstest.Rig) map[string]*authv3.CheckRequest {
	tok := r.Token()
	user := r.TokenWith(func(c map[string]any) {
		c["oid"] = "33333333-3333-3333-3333-333333333333"
		c["idtyp"] = "user"
		c["scp"] = "user_impersonation"
	})
	return map[string]*authv3.CheckRequest{
		"get-public":     opstest.Check(tok, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"),
		"get-public-2":   opstest.Check(tok, "203.0.113.99", "GET", "/secrets/api-key/0123456789abcdef0123456789abcdef?api-version=7.5"),
		"list-subnet":    opstest.Check(tok, "10.1.2.7", "GET", "/secrets?api-version=7.5"),
		"get-outside":    opstest.Check(tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5"),
		"set-denied":     opstest.Check(tok, "203.0.113.10", "PUT", "/secrets/db?api-version=7.5"),
		"no-token":       opstest.Check("", "203.0.113.10", "GET", "/secrets/db?api-version=7.5"),
		"bad-token":      opstest.Check(tok[:len(tok)-8]+"AAAAAAAA", "203.0.113.10", "GET", "/secrets/db?api-version=7.5"),
		"user-no-policy": opstest.Check(user, "203.0.113.10", "GET", "/secrets/db?api-version=7.5"),
		"bad-path":       opstest.Check(tok, "203.0.113.10", "GET", "/nosuch?api-version=7.5"),
		"health":         opstest.Check("", "192.0.2.1", "GET", "/healthstatus"),
		"xff-trusted":    opstest.Check(tok, "198.51.100.1", "GET", "/secrets/db?api-version=7.5", "x-forwarded-for", "203.0.113.50"),
		"override":       opstest.Check(tok, "203.0.113.10", "POST", "/secrets/db/0123456789abcdef0123456789abcdef?api-version=7.5", "x-http-method", "PATCH"),
	}
}

// record runs the traffic through the real path — envoy.Server, the
// pipeline built from path, the audit writer with a file sink — and
// returns the audit log and the decision id of each request.
func record(t *testing.T, r *opstest.Rig, path string) (string, map[string]string) {
	t.Helper()
	logPath := filepath.Join(r.Dir, "audit", "audit.json")
	w, err := audit.New(config.Audit{Enabled: true, Sink: config.AuditSinkFile, Path: logPath, MaxSizeMB: 10, QueueSize: 1024}, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obs := &opstest.Observer{}
	srv := r.Server(r.Runtime(path), fan{w, obs})
	ids := map[string]string{}
	names := make([]string, 0)
	reqs := traffic(r)
	for n := range reqs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := srv.Check(t.Context(), reqs[n]); err != nil {
			t.Fatal(err)
		}
		ids[obs.Last().ID] = n
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return logPath, ids
}

func run(t *testing.T, cfgPath, policyDir, logPath string) *replay.Report {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := replay.New(t.Context(), cfg, policyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rep replay.Report
	if err := rp.Run(t.Context(), logPath, f, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// changes maps request names to "before → after".
func changes(rep *replay.Report, ids map[string]string) map[string]string {
	out := map[string]string{}
	for _, c := range rep.Changes {
		out[ids[c.DecisionID]] = c.Before.String() + " → " + c.After.String()
	}
	return out
}

// The enforced configuration replayed against its own log changes nothing:
// the record holds everything a decision depends on.
func TestReplaySameConfigChangesNothing(t *testing.T) {
	r := opstest.New(t)
	path := r.Write("vault.yaml", strings.Replace(r.Render(opstest.Config, ""), "network:\n", "network:\n  trustedProxies: {hops: 1}\n", 1))
	logPath, ids := record(t, r, path)
	rep := run(t, path, "", logPath)
	if rep.Total != len(ids) || rep.Unchanged != len(ids) || rep.Changed() != 0 || rep.NotReplay != 0 || rep.Malformed != 0 {
		var out bytes.Buffer
		_ = rep.Write(&out)
		t.Fatalf("replay of the enforced configuration:\n%s", out.String())
	}
}

// A changed firewall and an operator rule: replay reports exactly the
// requests whose outcome changes.
func TestReplayChangedConfig(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	logPath, ids := record(t, r, path)

	// Candidate: 203.0.113.0/24 narrowed to 203.0.113.10, 192.0.2.0/24 added,
	// the user gets a policy, and an operator rule refuses listing.
	cand := r.Render(opstest.Config, "")
	cand = strings.Replace(cand, "ipRules: [{value: 203.0.113.0/24}]", "ipRules: [{value: 203.0.113.10}, {value: 192.0.2.0/24}]", 1)
	cand = strings.Replace(cand, "  accessPolicies:\n", "  accessPolicies:\n    - {tenantId: "+r.Issuer.Tenant()+", objectId: 33333333-3333-3333-3333-333333333333, permissions: {secrets: [get]}}\n", 1)
	candPath := r.Write("candidate/vault.yaml", cand)
	r.Write("candidate/policy/ops.rego", `package vaultwall.operator

deny contains "listing secrets is switched off" if input.operation.permission == "list"
`)
	rep := run(t, candPath, filepath.Join(r.Dir, "candidate", "policy"), logPath)
	got := changes(rep, ids)
	want := map[string]string{
		"get-public-2":   "allow → 403 ForbiddenByFirewall",
		"list-subnet":    "allow → 403 ForbiddenByPolicy",
		"get-outside":    "403 ForbiddenByFirewall → allow",
		"user-no-policy": "403 AccessDenied → allow",
	}
	if len(got) != len(want) {
		t.Errorf("changes = %v\nwant      %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if rep.Total != len(ids) || rep.Unchanged != len(ids)-len(want) || rep.NotReplay != 0 {
		t.Errorf("total %d unchanged %d not replayable %d", rep.Total, rep.Unchanged, rep.NotReplay)
	}
	if rep.ByKind[shadow.WouldDeny] != 2 || rep.ByKind[shadow.WouldAllow] != 2 {
		t.Errorf("by kind = %v", rep.ByKind)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, s := range []string{
		"allow → deny       2", "deny → allow       2",
		"allow → 403 ForbiddenByFirewall (firewall)  1",
		"403 ForbiddenByFirewall (firewall) → allow  1",
		"defaultAction=Deny", "appid=" + authztest.DefaultAppID,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("report lacks %q:\n%s", s, text)
		}
	}
}

// A candidate trusting another tenant refuses every recorded caller at
// authentication — from the recorded claims, no token needed — while
// recorded 401s stay 401s. A recorded 400 becomes the 401 too: Key Vault
// answers 401 before anything about the request's shape.
func TestReplayIdentityChange(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	logPath, ids := record(t, r, path)
	cand := strings.ReplaceAll(r.Render(opstest.Config, ""), r.Issuer.Tenant(), "00000000-0000-0000-0000-0000000000aa")
	rep := run(t, r.Write("other-tenant.yaml", cand), "", logPath)
	got := changes(rep, ids)
	for _, name := range []string{"get-public", "get-public-2", "list-subnet"} {
		if v := got[name]; v != "allow → 401 Unauthorized" {
			t.Errorf("%s: %q, want allow → 401", name, v)
		}
	}
	for _, name := range []string{"get-outside", "xff-trusted", "set-denied", "user-no-policy", "override"} {
		if v := got[name]; !strings.HasPrefix(v, "403 ") || !strings.HasSuffix(v, " → 401 Unauthorized") {
			t.Errorf("%s: %q, want 403 → 401", name, v)
		}
	}
	if v := got["bad-path"]; v != "400 UnknownOperation → 401 Unauthorized" {
		t.Errorf("bad-path: %q, want 400 → 401", v)
	}
	if len(got) != 9 {
		t.Errorf("changes = %v", got)
	}
	for _, name := range []string{"no-token", "bad-token", "health"} {
		if v, ok := got[name]; ok {
			t.Errorf("%s changed: %s", name, v)
		}
	}
}

// Lines that are not records are counted and reported, not fatal.
func TestReplayMalformed(t *testing.T) {
	r := opstest.New(t)
	path := r.WriteConfig("vault.yaml", "")
	cfg, _ := config.Load(path)
	rp, err := replay.New(t.Context(), cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	var rep replay.Report
	in := "garbage\n{\"vaultwall\":{\"decisionId\":\"x\",\"allowed\":true}}\n"
	if err := rp.Run(t.Context(), "in", strings.NewReader(in), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Malformed != 1 || rep.NotReplay != 1 || len(rep.Problems) != 2 {
		t.Fatalf("report = %+v", rep)
	}
}

type fan []authz.Observer

func (f fan) Observe(d *authz.Decision, e time.Duration) {
	for _, o := range f {
		o.Observe(d, e)
	}
}
