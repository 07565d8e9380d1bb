package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// MintFunc returns a bearer token for a token request — typically signed
// by the test's OIDC issuer for the tenant and scope the challenge named.
type MintFunc func(ctx context.Context, opts policy.TokenRequestOptions) (string, error)

// Credential is an azcore.TokenCredential backed by a MintFunc. It keeps
// every request so tests can assert what the challenge made the SDK ask
// for (scope https://vault.azure.net/.default, the challenge's tenant).
type Credential struct {
	mint MintFunc

	mu   sync.Mutex
	reqs []policy.TokenRequestOptions
}

var _ azcore.TokenCredential = (*Credential)(nil)

// NewCredential returns a credential minting with mint.
func NewCredential(mint MintFunc) *Credential { return &Credential{mint: mint} }

// StaticCredential always returns token.
func StaticCredential(token string) *Credential {
	return NewCredential(func(context.Context, policy.TokenRequestOptions) (string, error) { return token, nil })
}

// GetToken implements azcore.TokenCredential. Tokens are valid for an
// hour, so the SDK caches one per scope and tenant.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, opts)
	c.mu.Unlock()
	tok, err := c.mint(ctx, opts)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Requests are the token requests made so far.
func (c *Credential) Requests() []policy.TokenRequestOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]policy.TokenRequestOptions(nil), c.reqs...)
}

// Network is how SDK clients reach the test's servers.
type Network struct {
	// Routes maps host:port as the SDK dials it (e.g.
	// "contoso.vault.azure.net:443") to a loopback address. Anything else
	// fails: a test never leaves the machine.
	Routes map[string]netip.AddrPort
	// Client is the caller's TLS identity (trusted CAs, client
	// certificate) and PROXY header. ServerName is left to the URL.
	Client front.Client
}

// Route is a Network routing one vault host (port 443) to addr.
func Route(vaultHost string, addr netip.AddrPort, c front.Client) Network {
	return Network{Routes: map[string]netip.AddrPort{net.JoinHostPort(vaultHost, "443"): addr}, Client: c}
}

// HTTPClient is an http.Client over this network; idle connections close
// when the test ends.
func (n Network) HTTPClient(tb testing.TB) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, ok := n.Routes[addr]
			if !ok {
				return nil, fmt.Errorf("azure: no route to %s in this test", addr)
			}
			return front.DialFrom(ctx, n.Client.LocalAddr, to, n.Client.Proxy)
		},
		TLSClientConfig:     n.Client.TLSConfig(),
		ForceAttemptHTTP2:   !n.Client.HTTP1,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ClientOptions are azcore options over this network. Retries are off so a
// refusal or a fault surfaces at once and tests stay fast.
func (n Network) ClientOptions(tb testing.TB) azcore.ClientOptions {
	return azcore.ClientOptions{
		Transport: n.HTTPClient(tb),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// SecretsClient is an unmodified azsecrets client for vaultURL
// (https://<vault>.vault.azure.net) over n.
func SecretsClient(tb testing.TB, vaultURL string, cred azcore.TokenCredential, n Network) *azsecrets.Client {
	tb.Helper()
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: n.ClientOptions(tb)})
	if err != nil {
		tb.Fatalf("azure: azsecrets client: %v", err)
	}
	return c
}

// KeysClient is an unmodified azkeys client for vaultURL over n.
func KeysClient(tb testing.TB, vaultURL string, cred azcore.TokenCredential, n Network) *azkeys.Client {
	tb.Helper()
	c, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: n.ClientOptions(tb)})
	if err != nil {
		tb.Fatalf("azure: azkeys client: %v", err)
	}
	return c
}

// Error is a Key Vault error as an SDK call surfaced it.
type Error struct {
	StatusCode int
	ErrorCode  string // azcore's: x-ms-error-code, else error.code
	Code       string // the body's error.code
	InnerCode  string // the body's error.innererror.code (ForbiddenByFirewall, AccessDenied, …)
	Message    string
	Header     http.Header
}

// KeyVaultError unpacks an *azcore.ResponseError and its Key Vault JSON
// body; false when err is not a response error.
func KeyVaultError(err error) (Error, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return Error{}, false
	}
	e := Error{StatusCode: re.StatusCode, ErrorCode: re.ErrorCode}
	if re.RawResponse == nil {
		return e, true
	}
	e.Header = re.RawResponse.Header
	body, _ := runtime.Payload(re.RawResponse)
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Code, e.Message, e.InnerCode = env.Error.Code, env.Error.Message, env.Error.InnerError.Code
	}
	return e, true
}
