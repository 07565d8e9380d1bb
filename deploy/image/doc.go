// Command image builds vaultwall's OCI image as a tarball, with no container
// daemon and no registry: `make image` runs it on the static binary of
// `make build` (CGO_ENABLED=0). The image is that one binary on an empty
// base (scratch) with the build machine's CA bundle (for OIDC discovery and
// JWKS over HTTPS), an /etc/passwd naming the non-root user 65532, `serve`
// as the entrypoint and OCI labels (version, source, licence). Timestamps
// come from SOURCE_DATE_EPOCH (default 0), so the same inputs give the same
// image digest.
//
// The tarball is in `docker save`'s format (docker-archive), the one every
// tool reads: `docker load -i`, `podman load -i`, `crane push`, `skopeo copy
// docker-archive:…`; its config and labels follow the OCI image spec. This
// tool is not part of the product binary: it imports go-containerregistry
// and nothing of vaultwall.
package main
