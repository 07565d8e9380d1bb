package token

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz/section"
)

// The configuration's identity section. Exported fields hold what the user
// wrote; SetDefaults fills in what is omitted and Validate refuses what New
// cannot use.

// Defaults of the identity section.
const (
	DefaultAudience  = "https://vault.azure.net"
	DefaultAuthority = "https://login.microsoftonline.com/{tenantId}"
)

// Identity configures token validation.
type Identity struct {
	Issuers []Issuer `json:"issuers"`
	// ClockSkew tolerated on exp and nbf (default 5m, as Entra clients expect).
	ClockSkew section.Duration `json:"clockSkew,omitempty"`
	Challenge Challenge        `json:"challenge"`
	// TokenCache bounds the verified-token cache.
	TokenCache TokenCache `json:"tokenCache"`
	// Refresh governs background JWKS refresh.
	Refresh Refresh `json:"refresh"`
}

// Issuer is a trusted token issuer.
type Issuer struct {
	// Issuer is the exact iss value, e.g. https://sts.windows.net/<tid>/.
	Issuer string `json:"issuer"`
	// Discovery fetches <issuer>/.well-known/openid-configuration for the
	// jwks_uri. Exactly one of discovery, jwksUri and jwksFile is set.
	Discovery bool   `json:"discovery,omitempty"`
	JWKSURI   string `json:"jwksUri,omitempty"`
	// JWKSFile reads the keys from a local JSON Web Key Set (air-gapped
	// deployments and tests); reloaded with the configuration.
	JWKSFile string `json:"jwksFile,omitempty"`
	// Audiences accepted in aud (default: https://vault.azure.net).
	Audiences []string `json:"audiences,omitempty"`
	// CAFile is a PEM bundle trusted for this issuer's HTTPS endpoints
	// (default: the system roots).
	CAFile string `json:"caFile,omitempty"`
	// Algorithms narrows the signature algorithms accepted (default: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384).
	Algorithms []string `json:"algorithms,omitempty"`
}

// Challenge shapes the WWW-Authenticate header of every 401.
type Challenge struct {
	// Authorization is the authority URL whose path is exactly the tenant,
	// as Azure SDKs read it (the JavaScript and Python SDKs take the whole
	// path as the tenant). Accepted forms: "https://host/{tenantId}"
	// (replaced by the vault's tenant), a bare authority "https://host"
	// (the tenant is appended), or "https://host/<the vault's tenant>"
	// (kept as is). Any other path is refused, so the tenant is never
	// doubled. Default: https://login.microsoftonline.com/{tenantId}.
	Authorization string `json:"authorization,omitempty"`
	// Resource is the token audience clients should ask for
	// (default https://vault.azure.net).
	Resource string `json:"resource,omitempty"`
}

// Authority resolves the authorization URL for a tenant: the URL whose path
// is exactly "/<tenantID>", or an error saying why the configured value
// cannot give one.
func (c Challenge) Authority(tenantID string) (string, error) {
	raw := c.Authorization
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q: an authority is an https URL such as https://login.microsoftonline.com/{tenantId}", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", fmt.Errorf("%q: an authority has no query or fragment (Azure SDK clients read the tenant from its path)", raw)
	}
	if strings.ContainsAny(u.Host, "{}") {
		return "", fmt.Errorf("%q: {tenantId} may only be the whole path", raw)
	}
	path := strings.Trim(u.Path, "/")
	base := "https://" + u.Host + "/"
	switch {
	case path == "", path == "{tenantId}":
		return base + tenantID, nil
	case strings.EqualFold(path, tenantID):
		return base + path, nil
	case strings.Contains(path, "{tenantId}"):
		return "", fmt.Errorf("%q: {tenantId} must be the whole path (https://%s/{tenantId}): Azure SDK clients take the whole path as the tenant", raw, u.Host)
	}
	last := path[strings.LastIndex(path, "/")+1:]
	if section.IsGUID(last) && !strings.EqualFold(last, tenantID) {
		return "", fmt.Errorf("%q ends in tenant %s, not the vault's tenant %s: write https://%s/{tenantId}", raw, last, tenantID, u.Host)
	}
	return "", fmt.Errorf("%q: the path must be exactly the tenant (https://%s/{tenantId}, https://%s/%s or https://%s): Azure SDK clients take the whole path as the tenant", raw, u.Host, u.Host, tenantID, u.Host)
}

// Header renders the challenge for a tenant. It returns "" when the
// authority cannot give exactly one tenant (validation refuses such a
// configuration).
func (c Challenge) Header(tenantID string) string {
	auth, err := c.Authority(tenantID)
	if err != nil {
		return ""
	}
	return `Bearer authorization="` + auth + `", resource="` + c.Resource + `"`
}

// TokenCache bounds the verified-token cache and the refused-token cache.
type TokenCache struct {
	// MaxEntries is the number of verified tokens kept (default 10000; 0
	// keeps the default, -1 disables the cache); the refused-token cache
	// keeps a tenth as many final refusals, and is disabled with it.
	MaxEntries int `json:"maxEntries,omitempty"`
}

// Refresh governs JWKS refresh.
type Refresh struct {
	// Interval between background refreshes (default 15m).
	Interval section.Duration `json:"interval,omitempty"`
	// MinInterval is the least time between two refetches triggered by an
	// unknown kid (default 10s).
	MinInterval section.Duration `json:"minInterval,omitempty"`
	// Timeout of one fetch (default 5s).
	Timeout section.Duration `json:"timeout,omitempty"`
}

// SetDefaults fills in what the section omits.
func (id *Identity) SetDefaults() {
	if id.ClockSkew == 0 {
		id.ClockSkew = section.Duration(5 * time.Minute)
	}
	if id.Challenge.Authorization == "" {
		id.Challenge.Authorization = DefaultAuthority
	}
	if id.Challenge.Resource == "" {
		id.Challenge.Resource = DefaultAudience
	}
	if id.TokenCache.MaxEntries == 0 {
		id.TokenCache.MaxEntries = defaultCacheEntries
	}
	if id.Refresh.Interval == 0 {
		id.Refresh.Interval = section.Duration(15 * time.Minute)
	}
	if id.Refresh.MinInterval == 0 {
		id.Refresh.MinInterval = section.Duration(10 * time.Second)
	}
	if id.Refresh.Timeout == 0 {
		id.Refresh.Timeout = section.Duration(5 * time.Second)
	}
	for i := range id.Issuers {
		if len(id.Issuers[i].Audiences) == 0 {
			id.Issuers[i].Audiences = []string{DefaultAudience}
		}
	}
}

// Validate checks the identity section of a vault in tenantID.
func (id *Identity) Validate(e *section.Errors, tenantID string) {
	seen := map[string]int{}
	for i := range id.Issuers {
		is := &id.Issuers[i]
		base := fmt.Sprintf("identity.issuers[%d]", i)
		u, err := url.Parse(is.Issuer)
		if is.Issuer == "" {
			e.Add(base+".issuer", section.ErrRequired, "")
		} else if err != nil || u.Scheme != "https" || u.Host == "" {
			e.Add(base+".issuer", section.ErrInvalidValue, "%q: an issuer is an https URL", is.Issuer)
		}
		if j, dup := seen[is.Issuer]; dup {
			e.Add(base+".issuer", section.ErrDuplicate, "same issuer as issuers[%d]", j)
		}
		seen[is.Issuer] = i
		sources := 0
		if is.Discovery {
			sources++
		}
		if is.JWKSURI != "" {
			sources++
			if u, err := url.Parse(is.JWKSURI); err != nil || u.Scheme != "https" || u.Host == "" {
				e.Add(base+".jwksUri", section.ErrInvalidValue, "%q: a JWKS endpoint is an https URL", is.JWKSURI)
			}
		}
		if is.JWKSFile != "" {
			sources++
		}
		if sources != 1 {
			e.Add(base, section.ErrConflict, "set exactly one of discovery: true, jwksUri and jwksFile")
		}
		for j, a := range is.Audiences {
			if a == "" {
				e.Add(fmt.Sprintf("%s.audiences[%d]", base, j), section.ErrRequired, "")
			}
		}
		for j, a := range is.Algorithms {
			switch a {
			case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384":
			default:
				e.Add(fmt.Sprintf("%s.algorithms[%d]", base, j), section.ErrInvalidValue,
					"%q: want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 (never none or HMAC)", a)
			}
		}
	}
	if section.IsGUID(tenantID) {
		if _, err := id.Challenge.Authority(tenantID); err != nil {
			e.Add("identity.challenge.authorization", section.ErrInvalidValue, "%v", err)
		}
	}
	if u, err := url.Parse(id.Challenge.Resource); err != nil || u.Scheme != "https" || u.Host == "" {
		e.Add("identity.challenge.resource", section.ErrInvalidValue, "%q: the resource is an https URL such as https://vault.azure.net", id.Challenge.Resource)
	}
	if id.ClockSkew < 0 || id.ClockSkew.D() > time.Hour {
		e.Add("identity.clockSkew", section.ErrInvalidValue, "%s: want 0 to 1h", id.ClockSkew.D())
	}
	if id.TokenCache.MaxEntries < -1 {
		e.Add("identity.tokenCache.maxEntries", section.ErrInvalidValue, "%d: want -1 (off) or more", id.TokenCache.MaxEntries)
	}
	if id.Refresh.MinInterval.D() < time.Second {
		e.Add("identity.refresh.minInterval", section.ErrInvalidValue, "%s: at least 1s, so a stream of unknown kids cannot hammer the issuer", id.Refresh.MinInterval.D())
	}
}
