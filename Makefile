# vaultwall — the front door. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
CONFIG ?= examples/vault.yaml
FUZZTIME ?= 20s
PKGS := ./...
BIN := bin/vaultwall
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/vaultwall/vaultwall/main.version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## start vaultwall on the example config ($(CONFIG))
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/vaultwall serve --config $(CONFIG)

.PHONY: build
build: ## build bin/vaultwall
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vaultwall

.PHONY: test
test: ## run every test (unit, golden, Rego, e2e) with the race detector
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

.PHONY: e2e
e2e: ## end-to-end tests (ENVOY_BIN=/path/to/envoy for a real Envoy front)
	$(GO) test -race -count=1 -timeout 10m ./e2e/...

.PHONY: check
check: fmt-check vet test ## gofmt, go vet, all tests
	@echo "check: ok"

.PHONY: fmt-check
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet:
	$(GO) vet $(PKGS)

.PHONY: bench
bench: ## Go benchmarks of the Check path
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./authz/... ./envoy/... ./ops/...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done
