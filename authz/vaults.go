package authz

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ContextVault is the context_extensions key through which the front proxy
// may pin the vault of a route (Envoy: ExtAuthzPerRoute.check_settings).
const ContextVault = "vault"

// Vaults selects the vault a request is for, by its host, and decides it
// with that vault's pipeline. It is built once from every vault's pipeline
// and never changed: a reload of any vault builds a new Vaults. A nil
// *Vaults refuses every request as not ready.
//
// Selection is one map lookup on the normalised host (see NormalizeHost):
// the cost of a check does not grow with the number of vaults.
type Vaults struct {
	byHost map[string]*Pipeline
	byName map[string]*Pipeline
	list   []*Pipeline // by name
	// any is the pipeline that answers every host: a single vault that
	// lists no hostnames (the one-vault configuration, as before vaults
	// were selected by host). nil when hosts are enforced.
	any *Pipeline
}

// VaultEntry is one vault for NewVaults: its pipeline and the hostnames it
// answers to.
type VaultEntry struct {
	Pipeline  *Pipeline
	Hostnames []string
}

// SingleVault serves p for every host: the one-vault configuration that
// lists no hostnames. A context_extensions pin must still name p's vault.
func SingleVault(p *Pipeline) *Vaults {
	if p == nil {
		return nil
	}
	name := strings.ToLower(p.Vault.Name)
	return &Vaults{byName: map[string]*Pipeline{name: p}, list: []*Pipeline{p}, any: p}
}

// NewVaults builds the host table. Every hostname is normalised; two
// vaults claiming one hostname, or one name, are an error (configuration
// refuses them first; this guards the table itself).
func NewVaults(entries []VaultEntry) (*Vaults, error) {
	v := &Vaults{byHost: map[string]*Pipeline{}, byName: map[string]*Pipeline{}}
	for _, e := range entries {
		name := strings.ToLower(e.Pipeline.Vault.Name)
		if o, dup := v.byName[name]; dup && o != e.Pipeline {
			return nil, fmt.Errorf("two vaults are named %q", e.Pipeline.Vault.Name)
		}
		v.byName[name] = e.Pipeline
		v.list = append(v.list, e.Pipeline)
		for _, h := range e.Hostnames {
			n, ok := NormalizeHost(h)
			if !ok {
				return nil, fmt.Errorf("vault %s: hostname %q is not a host name", e.Pipeline.Vault.Name, h)
			}
			if o, dup := v.byHost[n]; dup && o != e.Pipeline {
				return nil, fmt.Errorf("hostname %s is claimed by vaults %s and %s", n, o.Vault.Name, e.Pipeline.Vault.Name)
			}
			v.byHost[n] = e.Pipeline
		}
	}
	sort.Slice(v.list, func(i, j int) bool { return v.list[i].Vault.Name < v.list[j].Vault.Name })
	return v, nil
}

// Len is the number of vaults.
func (v *Vaults) Len() int {
	if v == nil {
		return 0
	}
	return len(v.list)
}

// List returns every vault's pipeline, by name.
func (v *Vaults) List() []*Pipeline {
	if v == nil {
		return nil
	}
	return v.list
}

// Named returns the pipeline of the vault called name (any case), nil if
// none.
func (v *Vaults) Named(name string) *Pipeline {
	if v == nil {
		return nil
	}
	return v.byName[strings.ToLower(name)]
}

// Select returns the pipeline for a request to host, pinned to a vault by
// the front proxy's context_extensions when pin is not "". The refusal
// explains, for logs and explain, why no vault was selected.
func (v *Vaults) Select(host, pin string) (*Pipeline, string) {
	p := v.any
	if p == nil {
		n, ok := hostKey(host)
		switch {
		case host == "":
			return nil, "the request names no host"
		case !ok:
			return nil, "the request's host is not a host name"
		}
		if p = v.byHost[n]; p == nil {
			return nil, "no vault answers to this host"
		}
	}
	if pin != "" && !strings.EqualFold(pin, p.Vault.Name) {
		return nil, "the route is pinned to another vault (context_extensions vault)"
	}
	return p, ""
}

// DecideInto selects the request's vault and runs its pipeline; a request
// no vault answers to is refused before any stage runs (StageVault), with
// Key Vault's answer to a Host that is not a vault hostname.
func (v *Vaults) DecideInto(ctx context.Context, d *Decision, req *Request) {
	var p *Pipeline
	why := "no vault is loaded"
	if v != nil {
		p, why = v.Select(req.Host, req.ContextExtensions[ContextVault])
	}
	if p != nil {
		p.DecideInto(ctx, d, req)
		return
	}
	RefuseHost(d, req, why, time.Now())
}

// unknownVault stands for the vault of a request no vault answered: its
// decision names none.
var unknownVault = Vault{}

// RefuseHost makes d the refusal of a request whose host names no vault
// this service answers for. Key Vault documents that the Host header "must
// specify the vault hostname" and answers malformed requests with 400
// BadRequest; the host is echoed, sanitised, so the client sees what was
// sent.
func RefuseHost(d *Decision, req *Request, why string, now time.Time) {
	reused := d.ID != ""
	*d = Decision{Vault: &unknownVault, Request: req, idBuf: d.idBuf, Time: now, Stage: StageVault}
	if reused {
		d.ID = NewID()
	} else {
		d.ID = d.newID()
	}
	d.Err = nil
	d.Denial = &Denial{Status: 400, Code: "BadRequest", Inner: "VaultNotFound",
		Message: "The Host header must name a vault this service answers for (" + why + ").\r\nHost: " + Sanitize(req.Host, MaxEchoValue)}
}

// NormalizeHost is a hostname as the host table keys it: ASCII lower case,
// without a port and without the trailing dot of a fully qualified name.
// ok is false for "" and for anything that is not a plain host name or IP
// literal (spaces, control characters, a userinfo "@", a path).
func NormalizeHost(h string) (string, bool) {
	k, ok := hostKey(h)
	if !ok {
		return "", false
	}
	return strings.Clone(k), true
}

// hostKey normalises without allocating when the host is already in its
// normal form (the common case): the result may share h's bytes.
func hostKey(h string) (string, bool) {
	if strings.HasPrefix(h, "[") { // [v6]:port
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		rest := h[end+1:]
		if rest != "" && !isPort(rest) {
			return "", false
		}
		h = h[:end+1]
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !isPort(h[i:]) {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", false
	}
	upper := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		case c >= 'A' && c <= 'Z':
			upper = true
		case c == '[' || c == ']' || c == ':':
			if h[0] != '[' {
				return "", false
			}
		default:
			return "", false
		}
	}
	if upper {
		h = strings.ToLower(h)
	}
	return h, true
}

// isPort reports whether s is ":" followed by 1–5 digits.
func isPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
