// Command vaultwall is an Envoy ext_authz service that gives a secrets vault
// Azure Key Vault's firewall and access model. This package holds the CLI's
// verbs only — serve, check, config, policy, replay, admin — each parsing
// its flags and calling the package that does the work: server.Serve for
// serve, engine and config for check and config validate, rego for policy,
// ops/replay for replay, the admin API's client for admin.
//
// Imports: server, engine, config, authz (peer, token), rego, envoy
// (CheckRequest JSON), ops/replay, controlplane (its store and api: the
// stored overlay, the admin client), cobra, grpc. Nothing imports it.
package main
