// Package opstest is the test kit of the operations packages (audit,
// metrics, shadow, replay, ops): a vault configuration with a firewall,
// access policies and a real OIDC issuer over HTTPS, built by the real
// engine.Builder, and CheckRequests as Envoy sends them.
//
// Imports: authz/authztest, engine, envoy, go-control-plane. Test code only.
package opstest
