package authz

import (
	"fmt"
	"io"
	"strings"
)

// Step is one stage's verdict, for `vaultwall check --explain` and the
// control plane's Explain.
type Step struct {
	Stage   Stage
	Outcome string // "pass", "deny", "error", "skipped", "not reached"
	Detail  string
}

// Explain lists what each stage concluded. Details are sanitised (one line,
// UTF-8, bounded): they quote the path, the caller's claims and messages.
func (d *Decision) Explain() []Step {
	steps := d.explain()
	for i := range steps {
		steps[i].Detail = Sanitize(steps[i].Detail, MaxEchoMessage)
	}
	return steps
}

func (d *Decision) explain() []Step {
	steps := make([]Step, 0, 5)
	if d.Stage == StageVault { // no vault answers to the host: no stage ran
		host := ""
		if d.Request != nil {
			host = fmt.Sprintf("host %q", d.Request.Host)
		}
		steps = append(steps, Step{StageVault, "deny", d.detail(StageVault, host)})
		for s := StageClassify; s <= StageAuthorize; s++ {
			steps = append(steps, Step{s, "not reached", ""})
		}
		return steps
	}
	// A caller proves authentication ran: a held classifier refusal ends
	// the pass at classify after it.
	reached := func(s Stage) bool {
		return d.Stage >= s || (d.Allowed && s <= StageAuthorize) || (s == StageAuthenticate && d.Caller != nil)
	}
	outcome := func(s Stage) string {
		switch {
		case d.Stage == s && d.Err != nil:
			return "error"
		case d.Stage == s && !d.Allowed:
			return "deny"
		case s == StageClassify && d.ClassifyDenial != nil:
			return "deny"
		case !reached(s):
			return "not reached"
		}
		return "pass"
	}
	op := &d.Operation
	var cls string
	if op.Name != "" {
		cls = fmt.Sprintf("%s (%s %s): permission %s/%s, data action %s", op.Name, op.Method, pathOf(d.Request), op.Resource, op.Permission, op.DataAction)
		if op.Object != "" {
			cls += ", object " + op.Object
			if op.Version != "" {
				cls += "/" + op.Version
			}
			if op.ObjectRaw != "" && op.ObjectRaw != op.Object {
				// Rules see the canonical name; say what the client sent.
				cls += " (sent as " + op.ObjectRaw + ")"
			}
		}
		if op.APIVersion != "" {
			cls += ", api-version " + op.APIVersion
		}
		if op.Anonymous {
			cls = op.Name + ": served without a token, firewall or policy"
		}
	}
	clsDetail := d.detail(StageClassify, cls)
	if h := d.ClassifyDenial; h != nil && d.Stage != StageClassify {
		// Held behind the 401 (or a fail-closed 500): say what it would be.
		clsDetail = h.ErrorCode() + ": " + firstLine(h.Message) + " (held: answered only to an authenticated caller)"
	}
	steps = append(steps, Step{StageClassify, outcome(StageClassify), clsDetail})
	if op.Anonymous && d.Allowed {
		return steps
	}
	var authn string
	if d.Caller != nil {
		authn = "caller " + d.Caller.String() + " (tenant " + d.Caller.TenantID + ")"
	}
	steps = append(steps, Step{StageAuthenticate, outcome(StageAuthenticate), d.detail(StageAuthenticate, authn)})

	n := &d.Network
	var fw string
	if n.Evaluated || n.ClientAddr.IsValid() || n.Problem != "" {
		addr := "unknown"
		if n.ClientAddr.IsValid() {
			addr = n.ClientAddr.String()
		}
		fw = "client " + addr
		if n.Problem != "" {
			fw += " (" + n.Problem + ")"
		}
		if n.SubnetID != "" {
			fw += ", subnet " + n.SubnetID
		}
		if n.PrivateEndpointID != "" {
			fw += ", private endpoint " + n.PrivateEndpointID
		}
		if n.TrustedService != "" {
			scope := "in scope"
			if !n.TrustedInScope {
				scope = "out of scope"
			}
			fw += ", trusted service " + n.TrustedService + " (" + scope + ")"
		}
		if n.TrustedProblem != "" {
			fw += ", not a trusted service: " + n.TrustedProblem
		}
		if n.Evaluated {
			fw += "; rule " + n.Rule
			if n.AuthType != AddrUnknown {
				fw += " (" + n.AuthType.String() + ")"
			}
		}
	}
	fwOutcome := outcome(StageFirewall)
	if d.Operation.Plane == PlaneControl {
		fwOutcome, fw = "skipped", "the firewall never applies to the control plane"
	}
	steps = append(steps, Step{StageFirewall, fwOutcome, d.detail(StageFirewall, fw)})

	a := &d.Authz
	var az string
	if a.Evaluated {
		az = a.Model
		switch {
		case a.Reason != "" && a.Rule != "" && !strings.HasPrefix(a.Reason, a.Rule):
			az += ": " + a.Rule + " — " + a.Reason
		case a.Reason != "":
			az += ": " + a.Reason
		case a.Rule != "":
			az += ": " + a.Rule
		}
	}
	steps = append(steps, Step{StageAuthorize, outcome(StageAuthorize), d.detail(StageAuthorize, az)})
	return steps
}

func (d *Decision) detail(s Stage, base string) string {
	if d.Stage != s || d.Allowed || d.Denial == nil {
		return base
	}
	msg := d.Denial.ErrorCode() + ": " + firstLine(d.Denial.Message)
	if d.Err != nil {
		msg += " (" + firstLine(d.Err.Error()) + ")"
	}
	if base == "" {
		return msg
	}
	return base + "; " + msg
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func pathOf(r *Request) string {
	if r == nil {
		return ""
	}
	return r.Path
}

// WriteExplanation renders the decision and its steps as text.
func (d *Decision) WriteExplanation(w io.Writer) error {
	verdict := "ALLOWED"
	if !d.Allowed {
		status := 0
		code := ""
		if d.Denial != nil {
			status, code = d.Denial.Status, d.Denial.ErrorCode()
		}
		verdict = fmt.Sprintf("DENIED %d %s", status, code)
	}
	if _, err := fmt.Fprintf(w, "decision %s: %s (decided by %s)\n", d.ID, verdict, d.Stage); err != nil {
		return err
	}
	for _, s := range d.Explain() {
		if _, err := fmt.Fprintf(w, "  %-13s %-11s %s\n", s.Stage, s.Outcome, s.Detail); err != nil {
			return err
		}
	}
	return nil
}
