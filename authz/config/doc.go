// Package config is vaultwall's configuration contract: the YAML schema
// (vault properties in Azure Resource Manager's shape), strict loading, and
// validation that reports every problem at once with its file, line and
// field path.
//
// Exported fields hold what the user wrote; parsed forms (prefixes, ids,
// durations) are computed once by Load and read through methods. Stage
// packages compile their runtime structures from a loaded *Config.
//
// Imports: authz, sigs.k8s.io/yaml and go.yaml.in/yaml/v3 (for line numbers).
package config
