// Package docs holds vaultwall's operator documentation (Markdown) and the
// JSON Schema of vault.yaml, and no code: its test checks that the
// troubleshooting page names every message vaultwall logs and every result
// code it counts, and that the links of the repository's Markdown stay
// inside the repository and point at files that exist.
package docs
