package e2e_test

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/azure"
	"github.com/vaultwall/vaultwall/e2e/internal/fakevault"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestAzureSDK drives the unmodified Azure SDK for Go clients (azsecrets,
// azkeys) through the front: https://<vault>.vault.azure.net on port 443,
// only the dial redirected, no DisableChallengeResourceVerification. Their
// first request carries no token and meets vaultwall's real 401 challenge,
// from which they take the tenant and scope they ask the credential for;
// refusals surface as *azcore.ResponseError with Key Vault's codes.
func TestAzureSDK(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "contoso-sdk", front.EnvoyL4, nil)

	// Not parallel: it lists the vault's secrets, so it runs before the
	// subtests that add some.
	t.Run("challenge, then secrets set, get, list", func(t *testing.T) {
		sc, cred, w := s.sdk(t, app, "203.0.113.10")
		ctx := t.Context()
		names := []string{"sdk-db-password", "sdk-api-key", "sdk-tls-pass"}
		for _, n := range names {
			if _, err := sc.SetSecret(ctx, n, azsecrets.SetSecretParameters{Value: to.Ptr("value of " + n)}, nil); err != nil {
				t.Fatalf("SetSecret %s: %v", n, err)
			}
		}
		got, err := sc.GetSecret(ctx, "sdk-api-key", "", nil)
		if err != nil || *got.Value != "value of sdk-api-key" {
			t.Fatalf("GetSecret: %v, %v", got.Value, err)
		}
		if want := "https://" + s.host + "/secrets/sdk-api-key/" + got.ID.Version(); string(*got.ID) != want {
			t.Errorf("secret id %s, want %s", *got.ID, want)
		}
		var listed []string
		for p := sc.NewListSecretPropertiesPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			for _, it := range page.Value {
				listed = append(listed, it.ID.Name())
			}
		}
		slices.Sort(names)
		if !slices.Equal(listed, names) {
			t.Errorf("listed %v, want %v", listed, names)
		}

		// The challenge flow, on the wire: the first request went out
		// without a token or a body and got vaultwall's 401; the credential
		// was asked once, for Key Vault's scope in the challenge's tenant;
		// the SDK resent the request with the token and the body.
		ex := w.exchanges()
		first := ex[0]
		if first.method != "PUT" || first.auth || first.contentLength != 0 || first.status != 401 || first.challenge != challenge {
			t.Errorf("first exchange %+v; want a token-less, body-less PUT answered 401 with %q", first, challenge)
		}
		if second := ex[1]; second.method != "PUT" || !second.auth || second.contentLength == 0 || second.status != 200 {
			t.Errorf("second exchange %+v; want the PUT again, with token and body, 200", second)
		}
		wantTokenRequests(t, cred, 1)
		// 3 sets, 1 get, 2 list pages (the nextLink came back through the
		// front), each at the vault with vaultwall's identity headers.
		ops := s.wantIdentityAtVault(t, ex[1:], app, "203.0.113.10")
		if want := []string{"SecretSet", "SecretSet", "SecretSet", "SecretGet", "SecretList", "SecretList"}; !slices.Equal(ops, want) {
			t.Errorf("operations at the vault %v, want %v", ops, want)
		}
	})

	t.Run("challenge, then keys create, wrap, unwrap", func(t *testing.T) {
		t.Parallel()
		kc, cred, w := s.sdkKeys(t, app, "2001:db8:1::10")
		ctx := t.Context()
		k, err := kc.CreateKey(ctx, "sdk-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		alg := to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256)
		wrapped, err := kc.WrapKey(ctx, "sdk-kek", "", azkeys.KeyOperationParameters{Algorithm: alg, Value: []byte("a data key")}, nil)
		if err != nil {
			t.Fatalf("WrapKey: %v", err)
		}
		unwrapped, err := kc.UnwrapKey(ctx, "sdk-kek", k.Key.KID.Version(), azkeys.KeyOperationParameters{Algorithm: alg, Value: wrapped.Result}, nil)
		if err != nil || string(unwrapped.Result) != "a data key" {
			t.Fatalf("UnwrapKey: %q, %v", unwrapped.Result, err)
		}
		ex := w.exchanges()
		if ex[0].auth || ex[0].status != 401 || ex[0].challenge != challenge {
			t.Errorf("first exchange %+v, want the 401 challenge", ex[0])
		}
		wantTokenRequests(t, cred, 1)
		ops := s.wantIdentityAtVault(t, ex[1:], app, "2001:db8:1::10")
		if want := []string{"KeyCreate", "KeyWrap", "KeyUnwrap"}; !slices.Equal(ops, want) {
			t.Errorf("operations at the vault %v, want %v", ops, want)
		}
	})

	t.Run("refusals are ResponseErrors with Key Vault's codes", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s.vault.SetSecret("sdk-refusals", "x")

		sc, _, _ := s.sdk(t, app, "8.8.8.8")
		_, err := sc.GetSecret(ctx, "sdk-refusals", "", nil)
		wantResponseError(t, err, 403, "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))

		kc, _, _ := s.sdkKeys(t, app, "8.8.8.8")
		_, err = kc.WrapKey(ctx, "sdk-kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("k")}, nil)
		wantResponseError(t, err, 403, "ForbiddenByFirewall", s.firewallMessage("8.8.8.8", app))

		sc, _, _ = s.sdk(t, readOnly, "203.0.113.10")
		_, err = sc.SetSecret(ctx, "sdk-refusals", azsecrets.SetSecretParameters{Value: to.Ptr("y")}, nil)
		wantResponseError(t, err, 403, "AccessDenied", s.accessDeniedMessage(readOnly, "secrets", "set"))
		if v, _ := s.vault.Secret("sdk-refusals"); v != "x" {
			t.Errorf("the refused SetSecret changed the secret to %q", v)
		}

		// A token for another audience: the SDK surfaces the second 401.
		cred := azure.NewCredential(func(_ context.Context, o policy.TokenRequestOptions) (string, error) {
			c := s.claims(app, o.TenantID)
			c["aud"] = "https://management.azure.com/"
			return s.issuer.Mint(c), nil
		})
		sc = azure.SecretsClient(t, "https://"+s.host, cred, s.network("203.0.113.10"))
		_, err = sc.GetSecret(ctx, "sdk-refusals", "", nil)
		wantResponseError(t, err, 401, "Unauthorized", "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/.")
	})

	t.Run("RBAC vault: ForbiddenByRbac", func(t *testing.T) {
		t.Parallel()
		r := newSystem(t, "contoso-rbac", front.EnvoyL4, func(c *config.Config) {
			c.Properties.EnableRbacAuthorization = true
			c.Properties.AccessPolicies = nil
			c.Properties.RoleAssignments = []authz.RoleAssignment{
				{ID: "ra-app-db", PrincipalID: app.oid, RoleDefinitionID: "Key Vault Secrets User", Scope: "/secrets/db-password"},
			}
		})
		r.vault.SetSecret("db-password", "s3cr3t")
		r.vault.SetSecret("other", "x")
		ctx := t.Context()
		sc, _, w := r.sdk(t, app, "203.0.113.10")
		if got, err := sc.GetSecret(ctx, "db-password", "", nil); err != nil || *got.Value != "s3cr3t" {
			t.Fatalf("GetSecret in the assignment's scope: %v", err)
		}
		r.wantIdentityAtVault(t, w.exchanges()[1:], app, "203.0.113.10")
		_, err := sc.GetSecret(ctx, "other", "", nil)
		wantResponseError(t, err, 403, "ForbiddenByRbac", r.rbacMessage("getSecret/action", "other"))
		_, err = sc.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("y")}, nil)
		wantResponseError(t, err, 403, "ForbiddenByRbac", r.rbacMessage("setSecret/action", "db-password"))
		// The network still comes first on an RBAC vault.
		sc, _, _ = r.sdk(t, app, "8.8.8.8")
		_, err = sc.GetSecret(ctx, "db-password", "", nil)
		wantResponseError(t, err, 403, "ForbiddenByFirewall", r.firewallMessage("8.8.8.8", app))
	})
}

// network routes <vault>.vault.azure.net:443 to the front, as a client at
// from (sent in the PROXY header the L4 load balancer would add).
func (s *system) network(from string) azure.Network {
	return azure.Route(s.host, s.front.Addr(), front.Client{
		RootCAs: s.frontCA.Pool(),
		Proxy:   &front.ProxyHeader{Source: netip.AddrPortFrom(addr(from), 50000)},
	})
}

// credential mints p's tokens for whatever tenant the SDK asks for.
func (s *system) credential(p principal) *azure.Credential {
	return azure.NewCredential(func(_ context.Context, o policy.TokenRequestOptions) (string, error) {
		return s.issuer.Mint(s.claims(p, o.TenantID)), nil
	})
}

// sdkOptions are the network's client options with the transport wrapped
// to record the exchanges.
func (s *system) sdkOptions(t *testing.T, from string) (azcore.ClientOptions, *wire) {
	o := s.network(from).ClientOptions(t)
	w := &wire{next: o.Transport}
	o.Transport = w
	return o, w
}

func (s *system) sdk(t *testing.T, p principal, from string) (*azsecrets.Client, *azure.Credential, *wire) {
	t.Helper()
	o, w := s.sdkOptions(t, from)
	cred := s.credential(p)
	c, err := azsecrets.NewClient("https://"+s.host, cred, &azsecrets.ClientOptions{ClientOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	return c, cred, w
}

func (s *system) sdkKeys(t *testing.T, p principal, from string) (*azkeys.Client, *azure.Credential, *wire) {
	t.Helper()
	o, w := s.sdkOptions(t, from)
	cred := s.credential(p)
	c, err := azkeys.NewClient("https://"+s.host, cred, &azkeys.ClientOptions{ClientOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	return c, cred, w
}

// wire records what the SDK sent and got, below all its policies. It tags
// each request with an x-ms-client-request-id (the Go SDK sends none by
// default) so the test can find it at the vault.
type wire struct {
	next policy.Transporter
	mu   sync.Mutex
	log  []exchange
}

type exchange struct {
	method, path  string
	auth          bool
	contentLength int64
	status        int
	challenge     string
	requestID     string
}

func (w *wire) Do(r *http.Request) (*http.Response, error) {
	id := uuid.NewString()
	r.Header.Set("X-Ms-Client-Request-Id", id)
	e := exchange{method: r.Method, path: r.URL.RequestURI(), auth: r.Header.Get("Authorization") != "", contentLength: r.ContentLength, requestID: id}
	resp, err := w.next.Do(r)
	if resp != nil {
		e.status, e.challenge = resp.StatusCode, resp.Header.Get("Www-Authenticate")
	}
	w.mu.Lock()
	w.log = append(w.log, e)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) exchanges() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// wantIdentityAtVault checks that every exchange reached the vault with
// vaultwall's headers for caller from clientIP, and returns the operations
// vaultwall named, in order.
func (s *system) wantIdentityAtVault(t *testing.T, ex []exchange, caller principal, clientIP string) []string {
	t.Helper()
	reqs := s.vault.Requests()
	var ops []string
	for _, e := range ex {
		i := slices.IndexFunc(reqs, func(r fakevault.Request) bool { return r.Header.Get("X-Ms-Client-Request-Id") == e.requestID })
		if i < 0 {
			t.Errorf("%s %s (status %d) never reached the vault", e.method, e.path, e.status)
			continue
		}
		res := result{status: e.status, upstream: &reqs[i], desc: e.method + " " + e.path}
		op := reqs[i].Header.Get(authz.HeaderOperation)
		res.wantAllowed(t, e.status, upstream{op: op, caller: caller, clientIP: clientIP})
		ops = append(ops, op)
	}
	return ops
}

func wantTokenRequests(t *testing.T, cred *azure.Credential, n int) {
	t.Helper()
	trs := cred.Requests()
	if len(trs) != n {
		t.Fatalf("%d token requests, want %d: %+v", len(trs), n, trs)
	}
	for _, tr := range trs {
		if tr.TenantID != tenant || !slices.Equal(tr.Scopes, []string{"https://vault.azure.net/.default"}) {
			t.Errorf("token request %+v; want scope https://vault.azure.net/.default in tenant %s", tr, tenant)
		}
	}
}

// wantResponseError asserts an SDK error is Key Vault's refusal: an
// *azcore.ResponseError with the status and ErrorCode (from
// x-ms-error-code), and a body with error.code Forbidden (Unauthorized for
// 401), the inner code and the exact message.
func wantResponseError(t *testing.T, err error, status int, code, message string) {
	t.Helper()
	kv, ok := azure.KeyVaultError(err)
	if !ok {
		t.Fatalf("error %v is not an *azcore.ResponseError", err)
	}
	bodyCode, inner := "Forbidden", code
	if status == 401 {
		bodyCode, inner = "Unauthorized", ""
	}
	if kv.StatusCode != status || kv.ErrorCode != code || kv.Code != bodyCode || kv.InnerCode != inner {
		t.Errorf("ResponseError status %d ErrorCode %q, body code %q inner %q; want %d %q, %q %q",
			kv.StatusCode, kv.ErrorCode, kv.Code, kv.InnerCode, status, code, bodyCode, inner)
	}
	if kv.Message != message {
		t.Errorf("message\n%q\nwant\n%q", kv.Message, message)
	}
}
