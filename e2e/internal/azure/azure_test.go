package azure_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
	"github.com/vaultwall/vaultwall/e2e/internal/azure"
	"github.com/vaultwall/vaultwall/e2e/internal/fakevault"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

const (
	tenant    = "00000000-0000-0000-0000-000000000001"
	vaultHost = "contoso.vault.azure.net"
	vaultURL  = "https://" + vaultHost
	challenge = `Bearer authorization="https://login.example.test/` + tenant + `", resource="https://vault.azure.net"`
)

// keyVaultLike answers like vaultwall would: the 401 challenge without a
// token, 403 ForbiddenByFirewall for a token it refuses, and an allow that
// sets the caller header (overwriting any forged copy) for the good one.
func keyVaultLike(good string) authzstub.Handler {
	return func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		auth := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"]
		switch auth {
		case "":
			return authzstub.Deny(code.Code_UNAUTHENTICATED, 401,
				`{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`,
				authzstub.Overwrite("www-authenticate", challenge),
				authzstub.Overwrite("content-type", "application/json; charset=utf-8"),
				authzstub.Overwrite("x-ms-error-code", "Unauthorized")), nil
		case "Bearer " + good:
			return authzstub.Allow(authzstub.Overwrite("x-vaultwall-caller", "oid=11111111-1111-1111-1111-111111111111")), nil
		default:
			return authzstub.Deny(code.Code_PERMISSION_DENIED, 403,
				`{"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.10","innererror":{"code":"ForbiddenByFirewall"}}}`,
				authzstub.Overwrite("content-type", "application/json; charset=utf-8")), nil
		}
	}
}

type setup struct {
	vault *fakevault.Vault
	authz *authzstub.Server
	front front.Front
	net   azure.Network
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "e2e CA"})
	upCert := ca.IssueServer("vault.internal").TLS()
	vault := fakevault.Start(t, fakevault.Options{Cert: &upCert, PageSize: 2})
	authz := authzstub.Start(t, keyVaultLike("tok-"+tenant))
	frontCert := ca.IssueServer("*.vault.azure.net").TLS()
	// The shipped file's knobs (timeout, status_on_error, mutation
	// validation, PROXY protocol, …), so that either front runs what users
	// deploy; only the environment is the test's. The stub speaks
	// plaintext, which a real Envoy's vaultwall cluster then does too.
	opts, err := front.Shipped(front.EnvoyL4)
	if err != nil {
		t.Fatal(err)
	}
	opts.AuthzAddr = authz.Addr()
	opts.Upstream, opts.UpstreamCAs, opts.UpstreamCAPEM = vault.URL(), ca.Pool(), []byte(ca.PEM())
	opts.ServerCert = &frontCert
	opts.ClientCAs, opts.ClientCAPEM = ca.Pool(), []byte(ca.PEM())
	f := front.NewFront(t, opts)
	client := front.Client{RootCAs: ca.Pool(), Proxy: &front.ProxyHeader{Source: netip.MustParseAddrPort("203.0.113.10:50000")}}
	return &setup{vault: vault, authz: authz, front: f, net: azure.Route(vaultHost, f.Addr(), client)}
}

// clientRequests are the requests the vault received from clients through
// the front, without a real Envoy's own health checks of the vault cluster
// (GET /healthstatus, host "vault", sent by Envoy itself, not through the
// listener).
func (s *setup) clientRequests() []fakevault.Request {
	var out []fakevault.Request
	for _, r := range s.vault.Requests() {
		if r.Host == vaultHost {
			out = append(out, r)
		}
	}
	return out
}

// forge adds a client-forged identity header to every SDK request — what a
// hostile client would try.
type forge struct{}

func (forge) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("X-Vaultwall-Caller", "oid=forged")
	return req.Next()
}

// TestSDKThroughFront runs the unmodified azsecrets and azkeys clients
// against the fake vault through the front: the SDK's token-less first
// request meets the 401 challenge, it takes a token for the challenge's
// tenant and scope, and every later call passes — with no client option
// bending the challenge check.
func TestSDKThroughFront(t *testing.T) {
	s := newSetup(t)
	cred := azure.NewCredential(func(_ context.Context, o policy.TokenRequestOptions) (string, error) {
		return "tok-" + o.TenantID, nil
	})
	opts := s.net.ClientOptions(t)
	opts.PerCallPolicies = []policy.Policy{forge{}}
	sc, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	for _, name := range []string{"db-password", "api-key", "tls-pass"} {
		if _, err := sc.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("value-of-" + name)}, nil); err != nil {
			t.Fatalf("SetSecret %s: %v", name, err)
		}
	}
	got, err := sc.GetSecret(ctx, "api-key", "", nil)
	if err != nil || *got.Value != "value-of-api-key" || string(*got.ID) != vaultURL+"/secrets/api-key/"+got.ID.Version() {
		t.Fatalf("GetSecret: %+v, %v", got, err)
	}
	var names []string
	for p := sc.NewListSecretPropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, it := range page.Value {
			names = append(names, it.ID.Name())
		}
	}
	if strings.Join(names, ",") != "api-key,db-password,tls-pass" {
		t.Errorf("list %v", names)
	}

	// The challenge flow: one token request, for Key Vault's scope in the
	// challenge's tenant.
	trs := cred.Requests()
	if len(trs) != 1 || trs[0].TenantID != tenant || len(trs[0].Scopes) != 1 || trs[0].Scopes[0] != "https://vault.azure.net/.default" {
		t.Errorf("token requests %+v", trs)
	}
	// What the authorizer was asked (recorded by the stub, so this holds on
	// either front): first the token-less request it answered with the
	// challenge, then 3 sets + 1 get + 2 list pages (the nextLink went
	// through the front too), each with the token it allows.
	checks := s.authz.Requests()
	if len(checks) == 0 || checks[0].GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"] != "" {
		t.Fatalf("%d checks; the first must carry no token", len(checks))
	}
	var ok int
	for _, c := range checks[1:] {
		h := c.GetAttributes().GetRequest().GetHttp()
		if h.GetHeaders()["authorization"] != "Bearer tok-"+tenant {
			t.Errorf("check %s %s: not the token the stub allows", h.GetMethod(), h.GetPath())
		}
		if src := c.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); src != "203.0.113.10" {
			t.Errorf("source.address %q, want the PROXY source", src)
		}
		ok++
	}
	reqs := s.clientRequests()
	if ok != 6 || len(reqs) != ok {
		t.Errorf("%d allowed checks, %d vault requests, want 6 each", ok, len(reqs))
	}
	for _, r := range reqs {
		if vs := r.Header.Values("X-Vaultwall-Caller"); len(vs) != 1 || vs[0] != "oid=11111111-1111-1111-1111-111111111111" {
			t.Errorf("%s %s reached the vault with x-vaultwall-caller %q", r.Method, r.RequestURI, vs)
		}
		if r.Host != vaultHost {
			t.Errorf("vault saw host %q", r.Host)
		}
	}

	kc := azure.KeysClient(t, vaultURL, cred, s.net)
	k, err := kc.CreateKey(ctx, "kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	w, err := kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("data key")}, nil)
	if err != nil {
		t.Fatalf("WrapKey: %v", err)
	}
	u, err := kc.UnwrapKey(ctx, "kek", k.Key.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil)
	if err != nil || string(u.Result) != "data key" {
		t.Fatalf("UnwrapKey: %q, %v", u.Result, err)
	}
}

// TestSDKRefusal: a refusal surfaces as azcore.ResponseError with Key
// Vault's status, code and inner code.
func TestSDKRefusal(t *testing.T) {
	s := newSetup(t)
	sc := azure.SecretsClient(t, vaultURL, azure.StaticCredential("someone-else"), s.net)
	_, err := sc.GetSecret(t.Context(), "db-password", "", nil)
	kv, ok := azure.KeyVaultError(err)
	if !ok {
		t.Fatalf("error %v is not a response error", err)
	}
	if kv.StatusCode != 403 || kv.ErrorCode != "Forbidden" || kv.InnerCode != "ForbiddenByFirewall" || !strings.Contains(kv.Message, "Client address: 203.0.113.10") {
		t.Errorf("refusal %+v", kv)
	}
	if n := len(s.clientRequests()); n != 0 {
		t.Errorf("a refused request reached the vault (%d)", n)
	}
}

func TestNoRouteLeavesTheMachine(t *testing.T) {
	s := newSetup(t)
	sc := azure.SecretsClient(t, "https://elsewhere.vault.azure.net", azure.StaticCredential("x"), s.net)
	_, err := sc.GetSecret(t.Context(), "x", "", nil)
	if err == nil || !strings.Contains(err.Error(), "no route to elsewhere.vault.azure.net:443") {
		t.Errorf("err %v, want no route", err)
	}
}
