// Package peer recognises the platform services a vault trusts (Key
// Vault's "Allow trusted Microsoft services", bypass: AzureServices) from
// their mTLS client certificate, and says whether an operation lies inside
// the scope of the service's scenario. It owns the built-in trusted-service
// catalog (Catalog, WriteTable), principal patterns (ParsePattern), the
// Matcher that implements authz.TrustedServices, and Principals, the same
// certificate matcher for a flat set of patterns (the control plane's admin
// principals): both planes match certificates with one piece of code.
// It owns the configuration's trustedServices section (section.go), whose
// Validate checks its shape and New the rest.
//
// # Principal patterns
//
// Config binds patterns to catalog names (trustedServices.services[]):
//
//	spiffe://trust.domain/path      exactly this SPIFFE ID
//	spiffe://trust.domain/path/*    any SPIFFE ID strictly below path, whole
//	                                segments only (spiffe://trust.domain/*:
//	                                every workload of the trust domain)
//	dns:host.example                a DNS SAN; ASCII case-insensitive
//	subject:CN=svc,O=Example        the subject DN (RFC 4514, most specific
//	                                RDN first), compared in canonical form
//
// SPIFFE IDs follow the SPIFFE-ID spec and are compared byte for byte: a
// lower-case scheme and trust domain, case-sensitive path segments of
// [A-Za-z0-9._-], no empty, "." or ".." segment, no trailing "/", and no
// percent-encoding, userinfo, port, query or fragment. A principal that
// breaks a rule is never recognised, so no spelling of an ID can pose as
// another. DNS names are LDH host names without a trailing dot (a
// certificate's dNSName never has one, so "name." is a look-alike, not an
// alias); wildcards and IP literals are refused. Subject DNs compare
// attribute types by OID (CN ≡ cn ≡ 2.5.4.3), multi-valued RDNs in any
// order, and values byte for byte after unescaping (\, \2C and Envoy's \XX
// for non-ASCII bytes), without case or space folding. A principal bound
// twice, or a SPIFFE pattern covering another one, is refused at load time,
// so one principal reaches at most one binding.
//
// # What is matched
//
// With the client certificate (authz.Request.CertificatePEM, Envoy's
// source.certificate decoded) each pattern is matched against the name type
// it names: SPIFFE patterns against the certificate's URI SAN (exactly one,
// as in an X.509-SVID), DNS patterns against every DNS SAN, subject
// patterns against the subject; the raw SAN bytes are used, never a URL
// parser's normalisation. A certificate with more than one URI SAN is not
// an X.509-SVID and is never recognised (Envoy's principal, its first URI
// SAN, would name another identity than the SVID reading), and a
// certificate that reaches two bindings is not recognised either. With trustedServices.caFile the certificate is required and
// must chain to that bundle (every certificate in it a trust anchor) with
// the clientAuth extended key usage stated in the leaf. Without the
// certificate, Envoy's source.principal (first URI SAN, else first DNS SAN,
// else subject DN) is matched by its form; that path trusts the client CA
// behind Envoy not to issue, say, a DNS SAN spelled like a SPIFFE ID, so
// deployments that can should send the certificate and set caFile.
//
// Verdicts per certificate are cached by a hash of the PEM (the PEM itself
// is compared on a hit), bounded with CLOCK eviction; validity is checked
// against the clock on every request. A certificate that does not parse,
// verify or match, or is expired, is not recognised: Recognize never errs
// and never panics. When a certificate names a trusted service but lacks
// the clientAuth extended key usage or does not chain to the caFile,
// Unrecognized (authz.TrustedProblems) says so — the pipeline records it
// as NetworkVerdict.TrustedProblem, shown by explain and the audit record's
// vaultwall.trustedServiceProblem — and the Matcher logs it at WARN once
// per certificate (WithLogger).
//
// # Scope
//
// A catalog scope is a set of access-policy permissions per family, never
// "all". A binding's scope replaces it and may only narrow it: every
// permission must be in the catalog's, and families not named are
// dropped. "all" is refused in a binding (it would widen). An operation is
// in scope when its family and permission are in the set; control-plane
// operations never are.
//
// Imports: authz, authz/section and the standard library.
package peer
