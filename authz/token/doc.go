// Package token is the pipeline's authenticate stage: it validates the
// bearer JWT of a request against the configured issuers' keys and maps its
// claims to an authz.Caller, answering Key Vault's 401s otherwise.
//
// It owns:
//   - the configuration's identity section (section.go: Identity, Issuer,
//     Challenge, TokenCache, Refresh) with its defaults and Validate, which
//     config composes;
//   - the issuers' signing keys (KeyStore): OIDC discovery
//     (<issuer>/.well-known/openid-configuration → jwks_uri, whose document
//     must name the configured issuer), an explicit jwksUri, or a local
//     jwksFile; background refresh; an unknown-kid refetch that is
//     single-flight and rate-limited (refresh.minInterval between any two
//     fetches), which the request waits for up to refresh.timeout; and the
//     last good keys kept through an issuer's outage (a failed refresh logs
//     WARN "the last good keys stay in use"; a failed first load, with no
//     keys to keep, logs ERROR "issuer keys not loaded");
//   - token checks: at most MaxTokenBytes, one Bearer credential, a compact
//     JWS in unpadded base64url (RFC 7515 §2: no '=', '+' or '/', which
//     jwx would otherwise decode), exp, nbf and iat JSON numbers when
//     present (RFC 7519 NumericDate; jwx would read a string), an algorithm from the allow-list (RS256/384/512, PS256/384/512,
//     ES256/384, narrowed per issuer; never none, never HMAC; a key's own
//     alg must agree), a kid, the issuer picked by the token's unverified
//     iss and the signature checked against that issuer's keys only, then
//     exp (required) and nbf with the clock skew, aud among the issuer's
//     audiences, tid equal to the vault's tenant (iat's value and typ are
//     not checked: exp and nbf bound a token's life, and Key Vault
//     documents nothing more);
//   - the claims → Caller mapping (keyvault-spec §4);
//   - the verified-token cache: token → sealed Caller, an authz/cache Map
//     (placed by a keyed 64-bit hash and served only when the stored token
//     equals the request's in full; bounded, single-flight per token) that
//     this package keeps never past the token's exp and invalidates when
//     the issuer's key set changes (cache.go). It holds tokens in memory
//     (as the request buffers do), and never logs or exposes them;
//   - the refused-token cache: another such Map, a tenth of the bound,
//     for final refusals only — those no later moment can turn into an
//     allow while the issuer's keys stay the same: a malformed token, an
//     algorithm, issuer or kid-less header the configuration refuses, a bad
//     signature under a published key, an expired token, a missing exp, a
//     wrong audience or tenant. Entries reached under an issuer's keys are
//     dropped when that issuer's key set changes (a kid may come to name
//     the key that signed a token refused for its signature); an unknown
//     kid (a refresh may bring it) and a token not yet valid (time will
//     make it so) are never kept. A hit answers a copy of the refusal, an
//     expiry's message with the current time; it can never answer a
//     caller. A flood of distinct bad tokens only evicts other refusals.
//
// # Lifecycle
//
// The KeyStore lives as long as the process (NewKeyStore at start, Close at
// shutdown). Each configuration builds an Authenticator with
// New(store, cfg.Identity, cfg.AuthzVault()), which acquires one key source
// per issuer from the store. A source is identified by its issuer entry (iss,
// discovery/jwksUri/jwksFile, the caFile's content) and the refresh
// settings: a reload that leaves them unchanged gets the running source, its
// keys and its refresh schedule — no refetch. After the new pipeline is in
// place, Close the previous Authenticator: sources it alone used stop. A
// jwksFile is re-read on every New, since a reload is how its keys change.
// The verified-token cache belongs to the Authenticator (audiences, tenant
// and skew may change with the configuration), so a reload starts it empty.
//
// jwx's jwk.Cache (httprc v1) is not used for the keys: its background
// fetch holds the entry's lock across the network call (Get blocks behind a
// slow issuer), each forced Refresh enqueues another perpetual refresh
// chain (unbounded growth under unknown-kid traffic), its fetches take no
// context, and a failed first load is retried only after a full interval.
// The source is the equivalent built on jwx's parser (jwk.Parse): one
// goroutine per network issuer refreshing at refresh.interval (with
// jitter), retrying with backoff from refresh.minInterval while no key was
// ever loaded, and publishing each set as an immutable snapshot read
// without locks on the hot path.
//
// # Denials and errors
//
// A deny is a value: every problem with the request or its token is a 401
// (*authz.Denial with Challenge set; the pipeline adds WWW-Authenticate).
// The texts of AKV10000 (missing token), AKV10022 (audience) and AKV10032
// (issuer) are Key Vault's; AKV10032 is also used, with vaultwall's wording
// after the code, for a trusted issuer's token of another tenant. All other
// messages (malformed, oversized, scheme, PoP, duplicate, alg, kid,
// signature, expiry) are vaultwall's own and carry no AKV code.
//
// An error means "could not decide" and becomes the pipeline's fail-closed
// 500: the token's issuer has never had keys loaded (ErrKeysUnavailable —
// the token may well be valid), the request ended while waiting for keys,
// or verification panicked. An unknown kid while the issuer has keys is a
// 401, also when the refetch it triggers fails.
//
// # Metrics
//
// No metrics library is imported: StoreOptions.OnRefresh receives every key
// fetch (issuer, trigger, error, duration, key count, changed), Status gives
// key age and readiness per issuer, and Authenticator.CacheStats the cache
// counters, for the metrics package to export.
//
// Imports: authz, authz/cache, authz/section, github.com/lestrrat-go/jwx/v2
// and the standard library. Never protobuf, gRPC, OPA or a metrics library.
package token
