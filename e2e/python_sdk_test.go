package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// EnvPython names the Python of `make py` (bin/py/bin/python), which has
// the pinned Azure SDK for Python; `make test` and `make e2e` set it.
const EnvPython = "VAULTWALL_PYTHON"

// cryptoUser may use keys (wrap, unwrap, sign, verify) but not read them:
// the Python SDK's CryptographyClient then does every operation at the vault.
var cryptoUser = principal{name: "crypto user", oid: "c0c0c0c0-1111-4aaa-8bbb-cccccccccccc", appid: "e0e0e0e0-1111-4222-8333-444444444444"}

// pyPrincipals are the identities the Python program asks tokens for.
var pyPrincipals = map[string]principal{"app": app, "read-only": readOnly, "crypto-user": cryptoUser}

// TestPythonSDK drives the unmodified Azure SDK for Python
// (azure-keyvault-secrets, -keys, -certificates on azure-core, pinned in
// e2e/python/requirements.txt) through the front: e2e/python/keyvault_sdk.py
// keeps https://<vault>.vault.azure.net (port 443) in its URLs and only
// redirects the connection to the front's loopback port, writing the PROXY
// v2 header first, with the test CA trusted and the challenge-resource check
// on. Its credential asks this test's token endpoint for the issuer's
// tokens. The program asserts each scenario and reports it as a JSON line;
// this test checks the lines again, the token requests, and what reached
// the vault (vaultwall's identity headers on what was allowed; nothing
// refused got there).
func TestPythonSDK(t *testing.T) {
	t.Parallel()
	python := pythonBinary(t)

	s := newSystem(t, "contoso-py", front.EnvoyL4, func(c *config.Config) {
		// Named, not defaulted: the token endpoint's expiring token is
		// built from it.
		c.Identity.ClockSkew = config.Duration(5 * time.Minute)
		for i, ap := range c.Properties.AccessPolicies {
			if ap.ObjectID == app.oid {
				c.Properties.AccessPolicies[i].Permissions.Keys = append(slices.Clone(ap.Permissions.Keys), "sign", "verify")
			}
		}
		c.Properties.AccessPolicies = append(c.Properties.AccessPolicies, authz.AccessPolicy{TenantID: tenant, ObjectID: cryptoUser.oid,
			Permissions: authz.Permissions{Keys: []string{"wrapKey", "unwrapKey", "sign", "verify"}}})
	})
	r := newSystem(t, "contoso-py-rbac", front.EnvoyL4, func(c *config.Config) {
		c.Properties.EnableRbacAuthorization = true
		c.Properties.AccessPolicies = nil
		c.Properties.RoleAssignments = []authz.RoleAssignment{
			{ID: "ra-app-db", PrincipalID: app.oid, RoleDefinitionID: "Key Vault Secrets User", Scope: "/secrets/db-password"},
		}
	})
	r.vault.SetSecret("db-password", "s3cr3t")
	r.vault.SetSecret("other", "x")
	cert := s.vault.SeedCertificate(t, "py-web", "web.contoso.example")
	sum := sha1.Sum(cert.Raw)

	tokens := newTokenEndpoint(t, map[string]*system{"main": s, "rbac": r})
	dir := t.TempDir()
	cfg := map[string]any{
		"token_url": tokens.url,
		// Each group mints its own front CA: the client trusts both.
		"ca_file":   writeFile(t, dir, "front-cas.pem", []byte(s.frontCA.PEM()+r.frontCA.PEM())),
		"tenant":    tenant,
		"challenge": challenge,
		"vaults": map[string]any{
			"main": map[string]string{"url": "https://" + s.host, "front": s.front.Addr().String()},
			"rbac": map[string]string{"url": "https://" + r.host, "front": r.front.Addr().String()},
		},
		// The certificate's managed secret is listed with the others.
		"preexisting_secrets": []string{"py-web"},
		"certificate":         map[string]string{"name": "py-web", "common_name": "web.contoso.example", "sha1": hex.EncodeToString(sum[:])},
		"rbac":                map[string]string{"secret": "db-password", "value": "s3cr3t", "other": "other"},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reports, out := runPython(t, python, writeFile(t, dir, "config.json", b))
	byName := map[string]pyReport{}
	for _, rep := range reports {
		byName[rep.Scenario] = rep
	}

	// The credential's calls are the endpoint's requests, one for one, in
	// order (the scenarios run one after the other); each asked for Key
	// Vault's scope in the vault's tenant, as the challenge said.
	var asked []tokenRequest
	for _, rep := range reports {
		for _, tk := range rep.Tokens {
			asked = append(asked, tokenRequest{vault: tk.Vault, principal: tk.Principal, scope: strings.Join(tk.Scopes, " "), tenant: tk.Tenant, mode: tk.Mode})
		}
	}
	if served := tokens.requests(); !slices.Equal(asked, served) {
		t.Errorf("the credential reports the token requests\n%+v\nthe endpoint served\n%+v", asked, served)
	}
	for _, tr := range asked {
		if tr.scope != "https://vault.azure.net/.default" || tr.tenant != tenant {
			t.Errorf("token request %+v; want scope https://vault.azure.net/.default in tenant %s", tr, tenant)
		}
	}

	scenario := func(name string, check func(t *testing.T, rep pyReport)) {
		t.Run(name, func(t *testing.T) {
			rep, ok := byName[name]
			switch {
			case !ok:
				t.Fatalf("the Python program reported no scenario %s; its output:\n%s", name, out)
			case !rep.OK:
				t.Fatalf("the Python SDK scenario failed:\n%s", rep.Error)
			}
			check(t, rep)
		})
	}

	scenario("challenge_secrets", func(t *testing.T, rep pyReport) {
		if ex := rep.exchanges("app"); len(ex) == 0 || ex[0].auth || ex[0].status != http.StatusUnauthorized {
			t.Errorf("exchanges %+v; want the token-less 401 first", ex)
		}
		ops := s.wantAtVault(t, rep, "app", app, "203.0.113.10")
		if want := []string{"SecretSet", "SecretSet", "SecretSet", "SecretGet", "SecretList", "SecretList"}; !slices.Equal(ops, want) {
			t.Errorf("operations at the vault %v, want %v", ops, want)
		}
		for _, n := range []string{"py-db-password", "py-api-key", "py-tls-pass"} {
			if v, _ := s.vault.Secret(n); v != "value of "+n {
				t.Errorf("the vault holds %s = %q", n, v)
			}
		}
	})

	scenario("keys_crypto", func(t *testing.T, rep pyReport) {
		// The app holds keys/get: its CryptographyClient reads the key,
		// wraps and verifies locally, unwraps and signs at the vault.
		ops := s.wantAtVault(t, rep, "app", app, "2001:db8:1::10")
		if want := []string{"KeyCreate", "KeyGet", "KeyUnwrap", "KeySign"}; !slices.Equal(ops, want) {
			t.Errorf("the app's operations at the vault %v, want %v", ops, want)
		}
		// crypto-user lacks keys/get: refused the key, it does all at the vault.
		if ex := rep.exchanges("crypto-user"); len(ex) == 0 || ex[0].method != "GET" || ex[0].status != http.StatusForbidden {
			t.Errorf("crypto-user's exchanges %+v; want the key's GET refused first", ex)
		}
		ops = s.wantAtVault(t, rep, "crypto-user", cryptoUser, "2001:db8:1::10")
		if want := []string{"KeyWrap", "KeyUnwrap", "KeySign", "KeyVerify", "KeyVerify"}; !slices.Equal(ops, want) {
			t.Errorf("crypto-user's operations at the vault %v, want %v", ops, want)
		}
	})

	scenario("certificates", func(t *testing.T, rep pyReport) {
		ops := s.wantAtVault(t, rep, "app", app, "203.0.113.10")
		if want := []string{"CertificateGet"}; !slices.Equal(ops, want) {
			t.Errorf("operations at the vault %v, want %v", ops, want)
		}
	})

	scenario("token_expiry", func(t *testing.T, rep pyReport) {
		var rechallenged int
		for _, e := range rep.exchanges("app") {
			if e.auth && e.status == http.StatusUnauthorized && e.challenge == challenge {
				rechallenged++
			}
		}
		if rechallenged != 1 {
			t.Errorf("%d requests with a token met the challenge, want 1 (the expired token)", rechallenged)
		}
		ops := s.wantAtVault(t, rep, "app", app, "203.0.113.10")
		if want := []string{"SecretGet", "SecretGet"}; !slices.Equal(ops, want) {
			t.Errorf("operations at the vault %v, want %v", ops, want)
		}
	})

	scenario("refusals", func(t *testing.T, rep pyReport) {
		fw := s.firewallMessage("8.8.8.8", app)
		want := map[string]pyRefusal{
			"get_secret from outside the rules":        {Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: fw},
			"get_key from outside the rules":           {Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: fw},
			"unwrap_key from outside the rules":        {Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: s.firewallMessage("8.8.8.8", cryptoUser)},
			"set_secret without secrets/set":           {Status: 403, Code: "Forbidden", Inner: "AccessDenied", Message: s.accessDeniedMessage(readOnly, "secrets", "set")},
			"get_secret with another audience's token": {Status: 401, Code: "Unauthorized", Message: "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."},
		}
		wantRefusals(t, rep.Refusals, want)
		if v, _ := s.vault.Secret("py-db-password"); v != "value of py-db-password" {
			t.Errorf("the refused set_secret changed the secret to %q", v)
		}
		if ops := s.wantAtVault(t, rep, "read-only", readOnly, "203.0.113.10"); !slices.Equal(ops, []string{"SecretGet"}) {
			t.Errorf("read-only's operations at the vault %v, want [SecretGet]", ops)
		}
		for _, client := range []string{"app-outside", "app-outside-keys", "crypto-outside", "wrong-audience"} {
			if ops := s.wantAtVault(t, rep, client, app, "8.8.8.8"); len(ops) > 0 {
				t.Errorf("%s: operations at the vault %v, want none", client, ops)
			}
		}
	})

	scenario("rbac", func(t *testing.T, rep pyReport) {
		if ops := r.wantAtVault(t, rep, "app", app, "203.0.113.10"); !slices.Equal(ops, []string{"SecretGet"}) {
			t.Errorf("operations at the vault %v, want [SecretGet]", ops)
		}
		if ops := r.wantAtVault(t, rep, "app-outside", app, "8.8.8.8"); len(ops) > 0 {
			t.Errorf("operations from outside at the vault %v, want none", ops)
		}
		wantRefusals(t, rep.Refusals, map[string]pyRefusal{
			"get_secret out of the assignment's scope": {Status: 403, Code: "Forbidden", Inner: "ForbiddenByRbac", Message: r.rbacMessage("getSecret/action", "other")},
			"set_secret with Key Vault Secrets User":   {Status: 403, Code: "Forbidden", Inner: "ForbiddenByRbac", Message: r.rbacMessage("setSecret/action", "db-password")},
			"get_secret from outside the rules":        {Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: r.firewallMessage("8.8.8.8", app)},
		})
		if v, _ := r.vault.Secret("db-password"); v != "s3cr3t" {
			t.Errorf("the refused set_secret changed the secret to %q", v)
		}
	})
}

// wantAtVault checks one client's exchanges against the vault: each one
// answered 2xx reached it with vaultwall's headers for caller at clientIP,
// every other one never reached it. It returns the operations vaultwall
// named, in order.
func (s *system) wantAtVault(t *testing.T, rep pyReport, client string, caller principal, clientIP string) []string {
	t.Helper()
	var allowed []exchange
	for _, e := range rep.exchanges(client) {
		if e.status >= 200 && e.status < 300 {
			allowed = append(allowed, e)
		} else {
			s.wantNotAtVault(t, []exchange{e})
		}
	}
	return s.wantIdentityAtVault(t, allowed, caller, clientIP)
}

// pythonBinary is the Python with the Azure SDK: $VAULTWALL_PYTHON, else
// bin/py/bin/python of `make py`. Without one the test is skipped — except
// under E2E_FRONT=envoy (CI), where it fails.
func pythonBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvPython); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "bin", "py", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	why := "no " + EnvPython + " and no " + p + " (run make py)"
	if os.Getenv(front.EnvFront) == "envoy" {
		t.Fatalf("%s=envoy, but %s", front.EnvFront, why)
	}
	t.Skip(why)
	return ""
}

// runPython runs e2e/python/keyvault_sdk.py on the config file and returns
// its reports in the order printed, and its whole output. A non-zero exit or a line
// that is not a report fails the test, with the output shown.
func runPython(t *testing.T, python, configPath string) ([]pyReport, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("python", "keyvault_sdk.py"), configPath)
	// Only what the program needs: no proxies, no Azure settings, no
	// bytecode files in the source tree.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	t.Logf("python: %s in %v", python, time.Since(began).Round(time.Millisecond))
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Errorf("the Python program failed (%v); its output:\n%s", err, out)
		} else {
			t.Fatalf("running %s: %v", python, err)
		}
	}
	var reports []pyReport
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rep pyReport
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil || rep.Scenario == "" {
			t.Errorf("the Python program printed a line that is not a report: %q", sc.Text())
			continue
		}
		reports = append(reports, rep)
	}
	return reports, out
}

// pyReport is one scenario's JSON line.
type pyReport struct {
	Scenario  string       `json:"scenario"`
	OK        bool         `json:"ok"`
	Error     string       `json:"error"`
	Exchanges []pyExchange `json:"exchanges"`
	Tokens    []pyToken    `json:"tokens"`
	Refusals  []pyRefusal  `json:"refusals"`
}

// exchanges are one client's exchanges, oldest first.
func (r pyReport) exchanges(client string) []exchange {
	var ex []exchange
	for _, e := range r.Exchanges {
		if e.Client == client {
			ex = append(ex, e.exchange())
		}
	}
	return ex
}

// pyExchange is a request the SDK sent and the status it got, recorded by
// the program's transport below every SDK policy.
type pyExchange struct {
	Client        string `json:"client"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	Auth          bool   `json:"auth"`
	ContentLength int64  `json:"content_length"`
	RequestID     string `json:"request_id"`
	Status        int    `json:"status"`
	Challenge     string `json:"challenge"`
	ErrorCode     string `json:"error_code"`
}

func (e pyExchange) exchange() exchange {
	return exchange{method: e.Method, path: e.Path, auth: e.Auth, contentLength: e.ContentLength,
		status: e.Status, challenge: e.Challenge, requestID: e.RequestID}
}

// pyToken is one call of the program's credential.
type pyToken struct {
	Vault     string   `json:"vault"` // the system whose issuer mints
	Principal string   `json:"principal"`
	Method    string   `json:"method"` // get_token or get_token_info
	Scopes    []string `json:"scopes"`
	Tenant    string   `json:"tenant"`
	Mode      string   `json:"mode"`
}

// pyRefusal is an HttpResponseError as the SDK raised it.
type pyRefusal struct {
	Call         string `json:"call"`
	Exception    string `json:"exception"`
	Status       int    `json:"status"`
	Code         string `json:"code"`  // error.code
	Inner        string `json:"inner"` // error.innererror.code
	Message      string `json:"message"`
	XMSErrorCode string `json:"x_ms_error_code"`
}

// wantRefusals asserts the SDK raised exactly the refusals in want, by call,
// each with Key Vault's status, codes, x-ms-error-code and message.
func wantRefusals(t *testing.T, got []pyRefusal, want map[string]pyRefusal) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d refusals, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w, ok := want[g.Call]
		if !ok {
			t.Errorf("unexpected refusal %+v", g)
			continue
		}
		wantHeader, wantClass := w.Inner, "HttpResponseError"
		if w.Status == http.StatusUnauthorized {
			wantHeader, wantClass = w.Code, "ClientAuthenticationError"
		}
		if g.Status != w.Status || g.Code != w.Code || g.Inner != w.Inner || g.XMSErrorCode != wantHeader || g.Exception != wantClass {
			t.Errorf("%s: %s %d, error.code %q, innererror.code %q, x-ms-error-code %q; want %s %d %q %q %q",
				g.Call, g.Exception, g.Status, g.Code, g.Inner, g.XMSErrorCode, wantClass, w.Status, w.Code, w.Inner, wantHeader)
		}
		if g.Message != w.Message {
			t.Errorf("%s: message\n%q\nwant\n%q", g.Call, g.Message, w.Message)
		}
	}
}

// wantNotAtVault asserts that none of the exchanges reached the vault.
func (s *system) wantNotAtVault(t *testing.T, ex []exchange) {
	t.Helper()
	for _, e := range ex {
		for _, r := range s.vault.Requests() {
			if r.Header.Get("X-Ms-Client-Request-Id") == e.requestID {
				t.Errorf("%s %s (status %d) was refused, yet the vault saw it", e.method, e.path, e.status)
			}
		}
	}
}

// rbacMessage is Key Vault's ForbiddenByRbac message for a secrets action.
func (s *system) rbacMessage(action, resource string) string {
	return "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: " + s.callerString(app) + "\r\n" +
		"Action: 'Microsoft.KeyVault/vaults/secrets/" + action + "'\r\n" +
		"Resource: '/subscriptions/" + subscriptionID + "/resourcegroups/" + strings.ToLower(resourceGroup) +
		"/providers/microsoft.keyvault/vaults/" + s.name + "/secrets/" + resource + "'\r\n" +
		"Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n" +
		"Vault: " + s.vaultLabel() + "\r\n"
}

// tokenEndpoint serves the issuers' tokens to the Python credential over
// loopback HTTP: GET /token?vault=&principal=&scope=&tenant=&mode= answers
// {"access_token", "expires_on", "valid_until"} (Unix seconds; valid_until
// is when vaultwall stops accepting the token: its exp plus the clock
// skew), minted by the issuer of the named vault's system (each group has
// its own). mode "audience" mints for another audience; "expiring" mints a
// token vaultwall accepts for about two more seconds although expires_on
// says an hour, as a token cut short mid-session.
type tokenEndpoint struct {
	url  string
	mu   sync.Mutex
	reqs []tokenRequest
}

type tokenRequest struct{ vault, principal, scope, tenant, mode string }

func newTokenEndpoint(t *testing.T, vaults map[string]*system) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tr := tokenRequest{vault: q.Get("vault"), principal: q.Get("principal"), scope: q.Get("scope"), tenant: q.Get("tenant"), mode: q.Get("mode")}
		s, okVault := vaults[tr.vault]
		p, okPrincipal := pyPrincipals[tr.principal]
		if r.URL.Path != "/token" || !okVault || !okPrincipal {
			http.Error(w, "unknown path, vault or principal", http.StatusBadRequest)
			return
		}
		te.mu.Lock()
		te.reqs = append(te.reqs, tr)
		te.mu.Unlock()
		now := time.Now()
		c := s.claims(p, tr.tenant)
		exp, skew := now.Add(time.Hour), s.cfg.Identity.ClockSkew.D()
		switch tr.mode {
		case "":
		case "audience":
			c["aud"] = "https://management.azure.com/"
		case "expiring":
			if skew == 0 {
				http.Error(w, "an expiring token needs the group's identity.clockSkew set", http.StatusBadRequest)
				return
			}
			// exp is whole seconds: accepted until exp+skew, 1.5–2.5 s from now.
			exp = time.Unix(int64(math.Ceil(float64(now.Add(1500*time.Millisecond-skew).UnixNano())/1e9)), 0)
			c["exp"], c["iat"], c["nbf"] = exp.Unix(), exp.Add(-time.Hour).Unix(), exp.Add(-time.Hour).Unix()
		default:
			http.Error(w, "unknown mode", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": s.issuer.Mint(c),
			"expires_on":   now.Add(time.Hour).Unix(),
			"valid_until":  float64(exp.Add(skew).UnixNano()) / 1e9,
		})
	}))
	t.Cleanup(srv.Close)
	te.url = srv.URL + "/token"
	return te
}

func (te *tokenEndpoint) requests() []tokenRequest {
	te.mu.Lock()
	defer te.mu.Unlock()
	return slices.Clone(te.reqs)
}
