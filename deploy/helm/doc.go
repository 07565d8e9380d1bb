// Package helm holds vaultwall's Helm chart (vaultwall/) and nothing else:
// its tests load and render the chart with Helm's own SDK (helm.sh/helm/v3
// chart loader and template engine, used by this test package only, never
// by the product binary) with the default values and with every option on
// (testdata/full-values.yaml), decode every rendered object strictly into
// the Kubernetes, Istio and Prometheus Operator API types, and check that
// the pieces fit: selectors, ports, probes, the image, the vault.yaml in the
// ConfigMap, the NetworkPolicy and the Istio provider. With several vaults
// (testdata/vaults-values.yaml) the ConfigMap is laid out as the kubelet
// mounts it and compiled by vaultwall's engine (engine.CompileSet, as
// `vaultwall config validate`); values that could not work must fail the
// render with their reason.
//
// Imports: test code only (Helm SDK, Kubernetes, Istio and Prometheus
// Operator API types); nothing imports it.
package helm
