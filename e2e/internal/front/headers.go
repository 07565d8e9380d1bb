package front

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/uuid"
)

// headerMap is Envoy's request header map: ordered, lower-case keys,
// duplicates kept as separate entries, pseudo-headers included.
type headerMap []header

type header struct{ key, value string }

func (h headerMap) get(key string) (string, bool) {
	for _, e := range h {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// joined is every value of key joined with "," — the form the
// CheckRequest's headers map carries.
func (h headerMap) joined(key string) string {
	var vs []string
	for _, e := range h {
		if e.key == key {
			vs = append(vs, e.value)
		}
	}
	return strings.Join(vs, ",")
}

func (h *headerMap) add(key, value string) { *h = append(*h, header{key, value}) }

// set is Envoy's setCopy: drop every entry of key, then add one.
func (h *headerMap) set(key, value string) {
	h.remove(key)
	h.add(key, value)
}

// appendValue is Envoy's appendCopy: the first entry's value gains
// ",value"; nothing happens when the header is absent.
func (h headerMap) appendValue(key, value string) {
	for i := range h {
		if h[i].key == key {
			if h[i].value == "" {
				h[i].value = value
			} else {
				h[i].value += "," + value
			}
			return
		}
	}
}

func (h *headerMap) remove(key string) {
	out := (*h)[:0]
	for _, e := range *h {
		if e.key != key {
			out = append(out, e)
		}
	}
	*h = out
}

// fromRequest builds the map the HCM sees: pseudo-headers first (an
// HTTP/1 Host becomes :authority), then every header line.
func fromRequest(r *http.Request, scheme string) headerMap {
	h := make(headerMap, 0, 4+len(r.Header))
	h.add(":authority", r.Host)
	h.add(":path", requestPath(r))
	h.add(":method", r.Method)
	h.add(":scheme", scheme)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		for _, v := range vs {
			h.add(lk, v)
		}
	}
	return h
}

// requestPath is :path verbatim. An HTTP/1 absolute-form target is reduced
// to its path and query, as Envoy's codec does.
func requestPath(r *http.Request) string {
	p := r.RequestURI
	if strings.HasPrefix(p, "/") || p == "*" {
		return p
	}
	if u, err := url.Parse(p); err == nil && u.IsAbs() {
		return u.RequestURI()
	}
	return p
}

// hopByHop are removed on every request (conn_manager_utility.cc).
var hopByHop = []string{"connection", "upgrade", "x-envoy-internal", "keep-alive", "proxy-connection", "transfer-encoding"}

// edgeOnly are removed from edge requests; envoyControl from every
// external request (cleanInternalHeaders).
var (
	edgeOnly     = []string{"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"}
	envoyControl = []string{
		"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on",
		"x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
		"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
		"x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
	}
)

// mutateRequestHeaders applies the HTTP connection manager's rules for an
// edge listener with use_remote_address: true, before any filter runs
// (ConnectionManagerUtility::mutateRequestHeaders). peer is the
// connection's remote address (the PROXY source when one was sent).
func mutateRequestHeaders(h *headerMap, peer netip.Addr, tls bool, trustedHops int, local netip.Addr) {
	for _, k := range hopByHop {
		h.remove(k)
	}
	// A referer that is repeated or not an absolute URL is dropped.
	var refs []string
	for _, e := range *h {
		if e.key == "referer" {
			refs = append(refs, e.value)
		}
	}
	if len(refs) > 1 || len(refs) == 1 && !absoluteURL(refs[0]) {
		h.remove("referer")
	}

	trusted := netip.Addr{}
	if trustedHops > 0 {
		trusted = lastAddressFromXFF(h.joined("x-forwarded-for"), trustedHops-1)
	}
	if !trusted.IsValid() {
		trusted = peer
	}
	appended := peer
	if peer.IsLoopback() {
		appended = local
	}
	xff := h.joined("x-forwarded-for")
	if xff != "" {
		xff += ","
	}
	h.set("x-forwarded-for", xff+appended.String())
	if _, ok := h.get("x-forwarded-proto"); trustedHops == 0 || !ok {
		h.set("x-forwarded-proto", schemeOf(tls))
	}
	// Every request is an edge request: "internal" needs an
	// internal_address_config, which envoy.yaml does not set.
	for _, k := range edgeOnly {
		h.remove(k)
	}
	for _, k := range envoyControl {
		h.remove(k)
	}
	h.set("x-envoy-external-address", trusted.String())
	h.set("x-request-id", uuid.NewString())
	h.remove("x-forwarded-client-cert") // forward_client_cert_details: SANITIZE
}

func schemeOf(tls bool) string {
	if tls {
		return "https"
	}
	return "http"
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != ""
}

// lastAddressFromXFF is Envoy's getLastAddressFromXFF: skip the last
// `skip` entries, then parse the next one from the right.
func lastAddressFromXFF(xff string, skip int) netip.Addr {
	if xff == "" {
		return netip.Addr{}
	}
	for range skip {
		i := strings.LastIndexByte(xff, ',')
		if i < 0 {
			return netip.Addr{}
		}
		xff = xff[:i]
	}
	if i := strings.LastIndexByte(xff, ','); i >= 0 {
		xff = xff[i+1:]
	}
	a, err := netip.ParseAddr(strings.TrimSpace(xff))
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// action is how one HeaderValueOption mutates a header map, as
// ext_authz_grpc_impl.cc resolves it.
type action int

const (
	actSet action = iota
	actAdd
	actAppend // the deprecated append: true on a request header
	actAddIfAbsent
	actOverwriteIfExists
)

// actionOf resolves a HeaderValueOption. For request headers
// (ok_response.headers) Envoy 1.40 reads only the deprecated append bool,
// as its API documents for that message: true appends ",v" to an existing
// value (or adds), unset or false sets — append_action is ignored (recorded
// in testdata/answers/allow-mutations.json). Response and local-reply
// headers honour append_action and treat append: true as "add". invalid
// reports an append_action outside the enum.
func actionOf(o *corev3.HeaderValueOption, response bool) (a action, invalid bool) {
	_, badAction := corev3.HeaderValueOption_HeaderAppendAction_name[int32(o.GetAppendAction())]
	if !response {
		if o.GetAppend().GetValue() {
			return actAppend, !badAction
		}
		return actSet, !badAction
	}
	if o.GetAppend() != nil {
		switch {
		case !o.GetAppend().GetValue():
			return actSet, false
		case response:
			return actAdd, false
		default:
			return actAppend, false
		}
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		return actAdd, false
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return actAddIfAbsent, false
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return actOverwriteIfExists, false
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		return actSet, false
	default:
		return actSet, true
	}
}

// applyToMap applies one mutation to a request header map. "host" is
// Envoy's alias of :authority.
func applyToMap(h *headerMap, o *corev3.HeaderValueOption, response bool) {
	a, _ := actionOf(o, response)
	key := strings.ToLower(o.GetHeader().GetKey())
	if key == "host" {
		key = ":authority"
	}
	val := headerValue(o.GetHeader())
	_, exists := h.get(key)
	switch a {
	case actSet:
		h.set(key, val)
	case actAdd:
		h.add(key, val)
	case actAppend:
		h.appendValue(key, val)
	case actAddIfAbsent:
		if !exists {
			h.add(key, val)
		}
	case actOverwriteIfExists:
		if exists {
			h.set(key, val)
		}
	}
}

// applyToHeader applies one mutation to a response's http.Header.
func applyToHeader(h http.Header, o *corev3.HeaderValueOption) {
	a, _ := actionOf(o, true)
	key := o.GetHeader().GetKey()
	val := headerValue(o.GetHeader())
	exists := len(h.Values(key)) > 0
	switch a {
	case actSet:
		h.Set(key, val)
	case actAdd, actAppend:
		h.Add(key, val)
	case actAddIfAbsent:
		if !exists {
			h.Add(key, val)
		}
	case actOverwriteIfExists:
		if exists {
			h.Set(key, val)
		}
	}
}

func headerValue(hv *corev3.HeaderValue) string {
	if len(hv.GetRawValue()) > 0 {
		return string(hv.GetRawValue())
	}
	return hv.GetValue()
}

// removable is Envoy's isRemovableHeader: never a pseudo-header or host.
func removable(key string) bool {
	k := strings.ToLower(key)
	return k != "" && k[0] != ':' && k != "host"
}

// validHeader is what validate_mutations checks: a token name and a value
// without NUL, CR or LF.
func validHeader(key, value string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == ':' && i == 0 {
			continue
		}
		if !isTokenChar(c) {
			return false
		}
	}
	return !strings.ContainsAny(value, "\x00\r\n")
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
