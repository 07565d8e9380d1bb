package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
)

// The answer goldens: what a client (and, for allowed requests, the vault)
// gets from a real Envoy behind envoy.yaml for each kind of ext_authz
// answer — a Key Vault denial, a denial without content type, a bare
// non-zero status, an RPC error (status_on_error), an invalid header
// mutation (validate_mutations) and allows with header mutations both ways.
// TestEnvoyAnswerGoldens checks them against the run's Envoy (-update
// rewrites them); TestStandInAnswerGoldens checks the stand-in against
// them on every machine.
const answerDir = "testdata/answers"

// answerScenarios name the stub's answer by the request path.
var answerScenarios = []struct {
	name   string
	http1  bool
	answer func() (*authv3.CheckResponse, error)
}{
	{"deny-keyvault-401", false, func() (*authv3.CheckResponse, error) {
		return authzstub.Deny(code.Code_UNAUTHENTICATED, 401,
			`{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`,
			authzstub.Overwrite("content-type", "application/json; charset=utf-8"),
			authzstub.Overwrite("x-ms-error-code", "Unauthorized"),
			authzstub.Overwrite("x-ms-request-id", "5f0c4d9e-0000-4000-8000-000000000001"),
			authzstub.Overwrite("www-authenticate", `Bearer authorization="https://login.microsoftonline.com/t1", resource="https://vault.azure.net"`)), nil
	}},
	{"deny-keyvault-403-http1", true, func() (*authv3.CheckResponse, error) {
		return authzstub.Deny(code.Code_PERMISSION_DENIED, 403,
			`{"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a trusted service.\r\nClient address: 8.8.8.8","innererror":{"code":"ForbiddenByFirewall"}}}`,
			authzstub.Overwrite("content-type", "application/json; charset=utf-8"),
			authzstub.Overwrite("x-ms-error-code", "ForbiddenByFirewall")), nil
	}},
	{"deny-no-content-type", false, func() (*authv3.CheckResponse, error) {
		return authzstub.Deny(code.Code_INTERNAL, 0, "nope"), nil
	}},
	{"deny-bare-status", false, func() (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED)}}, nil
	}},
	{"rpc-error", false, func() (*authv3.CheckResponse, error) {
		return nil, errors.New("could not decide")
	}},
	{"invalid-mutation", false, func() (*authv3.CheckResponse, error) {
		return authzstub.Allow(authzstub.Overwrite("x-vaultwall-caller-oid", "o1\r\nx-injected: 1")), nil
	}},
	{"allow-mutations", false, func() (*authv3.CheckResponse, error) {
		// Every way of mutating a header, each on a header the client sent
		// ("first") and on one it did not.
		var hs []*corev3.HeaderValueOption
		for _, a := range []struct {
			name   string
			action corev3.HeaderValueOption_HeaderAppendAction
		}{
			{"append", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
			{"add-if-absent", corev3.HeaderValueOption_ADD_IF_ABSENT},
			{"overwrite-if-exists", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS},
			{"overwrite", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		} {
			hs = append(hs,
				authzstub.Header("x-vaultwall-sent-"+a.name, "second", a.action),
				authzstub.Header("x-vaultwall-new-"+a.name, "second", a.action))
		}
		for _, legacy := range []bool{true, false} {
			for _, which := range []string{"sent", "new"} {
				hs = append(hs, &corev3.HeaderValueOption{
					Header: &corev3.HeaderValue{Key: "x-vaultwall-" + which + "-legacy-append-" + strconv.FormatBool(legacy), Value: "second"},
					Append: wrapperspb.Bool(legacy),
				})
			}
		}
		r := authzstub.Allow(append(hs,
			authzstub.Overwrite("x-vaultwall-caller-oid", "o1"),
			authzstub.Overwrite("x-vaultwall-decision-id", "d1"))...)
		ok := r.GetOkResponse()
		ok.HeadersToRemove = []string{"x-vaultwall-client-ip", "x-vaultwall-trusted-service"}
		ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{
			authzstub.Overwrite("x-ms-keyvault-network-info", "conn_type=Ipv4;addr=203.0.113.10;act_addr_fam=InterNetwork;"),
			authzstub.Header("server", "vault", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			authzstub.Header("content-type", "application/x-also", corev3.HeaderValueOption_ADD_IF_ABSENT),
		}
		return r, nil
	}},
}

// forgedAnswerHeaders are sent with every answer scenario: a hostile
// client's identity headers.
var forgedAnswerHeaders = http.Header{
	"X-Vaultwall-Caller-Oid":               {"forged"},
	"X-Vaultwall-Client-Ip":                {"198.51.100.7"},
	"X-Vaultwall-Trusted-Service":          {"Backup"},
	"X-Vaultwall-Sent-Append":              {"first"},
	"X-Vaultwall-Sent-Add-If-Absent":       {"first"},
	"X-Vaultwall-Sent-Overwrite-If-Exists": {"first"},
	"X-Vaultwall-Sent-Overwrite":           {"first"},
	"X-Vaultwall-Sent-Legacy-Append-True":  {"first"},
	"X-Vaultwall-Sent-Legacy-Append-False": {"first"},
}

// answer is one scenario's outcome, as recorded.
type answer struct {
	Status   int                 `json:"status"`
	Headers  map[string][]string `json:"headers"`
	Body     string              `json:"body"`
	Upstream map[string][]string `json:"upstream,omitempty"` // the vault's request headers, if it got one
}

func checkAnswerGoldens(t *testing.T, start func(Options) Front, write bool) {
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"})
	clientCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "client CA"})
	stub := authzstub.Start(t, func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		p := req.GetAttributes().GetRequest().GetHttp().GetPath()
		for _, sc := range answerScenarios {
			if strings.HasPrefix(p, "/"+sc.name+"?") {
				return sc.answer()
			}
		}
		return nil, errors.New("no scenario for " + p)
	})
	rec := &recorder{}
	up := httptest.NewUnstartedServer(rec)
	upCert := ca.IssueServer("vault.internal").TLS()
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	o, err := Shipped(EnvoyL4)
	if err != nil {
		t.Fatal(err)
	}
	serverCert := ca.IssueServer(vaultHost).TLS()
	o.ServerCert, o.ClientCAs, o.ClientCAPEM = &serverCert, clientCA.Pool(), []byte(clientCA.PEM())
	o.AuthzAddr, o.Upstream, o.UpstreamCAs, o.UpstreamCAPEM = stub.Addr(), upURL, ca.Pool(), []byte(ca.PEM())
	o.Domains = []string{vaultHost}
	f := start(o)

	for _, sc := range answerScenarios {
		t.Run(sc.name, func(t *testing.T) {
			c := Client{RootCAs: ca.Pool(), HTTP1: sc.http1, Proxy: &ProxyHeader{
				Source: mustAddrPort("203.0.113.10:50000"), Destination: mustAddrPort("192.0.2.1:8443")}}
			hc := c.HTTPClient(t, f.Addr())
			req, err := http.NewRequestWithContext(t.Context(), "GET", "https://"+vaultHost+"/"+sc.name+"?api-version=7.5", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range forgedAnswerHeaders {
				req.Header[k] = vs
			}
			req.Header.Set("X-Ms-Client-Request-Id", sc.name)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := answer{Status: resp.StatusCode, Headers: normaliseHeaders(resp.Header, "date"), Body: string(body)}
			for _, r := range rec.requests() {
				if r.Header.Get("X-Ms-Client-Request-Id") == sc.name {
					got.Upstream = normaliseHeaders(r.Header)
				}
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(got); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(answerDir, sc.name+".json")
			if write {
				if err := os.MkdirAll(answerDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestEnvoyAnswerGoldens ./e2e/internal/front/ -args -update, with a real Envoy, writes it)", err)
			}
			diff, err := goldenDiff(b.Bytes(), want)
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("%s: the answer differs from %s (- real Envoy, + %s):\n%s", sc.name, path, f.Name(), diff)
			}
		})
	}
}

// normaliseHeaders lower-cases names, drops the named ones (a response's
// date), and replaces values that vary from run to run: x-request-id (a
// UUID), x-envoy-upstream-service-time and x-envoy-expected-rq-timeout-ms
// (milliseconds), x-forwarded-client-cert never appears (SANITIZE).
func normaliseHeaders(h http.Header, drop ...string) map[string][]string {
	out := map[string][]string{}
	for k, vs := range h {
		k = strings.ToLower(k)
		if contains(drop, k) {
			continue
		}
		vs = append([]string(nil), vs...)
		for i, v := range vs {
			switch k {
			case "x-request-id":
				vs[i] = uuidOr(v)
			case "x-envoy-upstream-service-time":
				if strings.Trim(v, "0123456789") == "" {
					vs[i] = "<ms>"
				}
			}
		}
		out[k] = vs
	}
	return out
}

func contains(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}

// TestEnvoyAnswerGoldens: the committed answer goldens are what the real
// Envoy of this run does (-update rewrites them from it).
func TestEnvoyAnswerGoldens(t *testing.T) {
	bin := RealEnvoy(t)
	checkAnswerGoldens(t, func(o Options) Front { return StartEnvoy(t, bin, o) }, *update)
}

// TestStandInAnswerGoldens: the stand-in answers clients, and forwards to
// the vault, what the real Envoy did (the committed goldens).
func TestStandInAnswerGoldens(t *testing.T) {
	if *update {
		t.Skip("-update writes goldens from a real Envoy only")
	}
	checkAnswerGoldens(t, func(o Options) Front { return StartStandIn(t, o) }, false)
}
