// Package authz holds vaultwall's decision model in plain Go: the Request a
// front proxy asks about, the Key Vault Operation it maps to, the Caller a
// token proves, the Decision that one pass of the Pipeline builds, and the
// Key Vault–shaped Response that a Decision turns into.
//
// Pipeline.Decide allocates the Decision; DecideInto fills one the caller
// allocated, so that an adapter can allocate it with the request and the
// response. A Decision made by the pipeline holds its id's bytes.
//
// It owns the order of the stages — classify, authenticate, firewall,
// authorize — and the rule that any error or panic ends in a deny. Key
// Vault answers 401 before anything about a request's shape, so a
// classifier's refusal is held until authentication has passed. The stages
// themselves live in sub-packages (route, token, peer, network) or elsewhere
// (rego) and plug in through the small interfaces declared here, as do
// those who watch decisions without taking part: Tracer and DecisionTracer
// (spans, ops/tracing) and Observer (audit, metrics, shadow — every
// decision the adapter makes).
//
// Before any stage, Vaults selects the vault whose Pipeline decides the
// request, by its host (NormalizeHost: ASCII lower case, no port, no
// trailing dot; one map lookup), and refuses a host no vault answers to, or
// a route whose context_extensions vault pin names another vault, with a
// 400 VaultNotFound (RefuseHost, StageVault) that names no vault.
//
// It also owns what may be echoed: Sanitize (echo.go) is the one function
// through which client-controlled values reach a response, an explanation or
// an audit record — valid UTF-8, no control characters, bounded.
//
// Imports: the standard library only. Never protobuf, gRPC or OPA: adapters
// translate at the edge.
package authz
