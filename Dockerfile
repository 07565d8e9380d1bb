# The same image as `make image` (deploy/image), for people with Docker:
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/vaultwall/vaultwall:0.1.0 .
# `make image` needs no daemon and is the tested path (deploy/image's tests);
# keep the two in step: binary path, CA bundle, user, entrypoint, labels.
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/vaultwall ./cmd/vaultwall \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/group \
 && mkdir -p /out/tmp && chmod 1777 /out/tmp

FROM scratch
ARG VERSION=dev
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/tmp /tmp
COPY --from=build /out/vaultwall /usr/local/bin/vaultwall
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 9191 9090
LABEL org.opencontainers.image.title="vaultwall" \
      org.opencontainers.image.description="Azure Key Vault's firewall and access model for any vault behind Envoy (ext_authz)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/vaultwall/vaultwall" \
      org.opencontainers.image.url="https://github.com/vaultwall/vaultwall" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/vaultwall", "serve"]
CMD ["--config", "/etc/vaultwall/vault.yaml"]
