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

# Load-benchmark tools, pinned, installed into bin/tools by `make bench`.
GHZ_VERSION       := v0.120.0
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
GHZ               := bin/tools/ghz-$(GHZ_VERSION)/ghz
BENCHSTAT         := bin/tools/benchstat-$(BENCHSTAT_VERSION)/benchstat
BENCHFLAGS        ?=

$(GHZ):
	GOBIN=$(CURDIR)/$(dir $@) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(BENCHSTAT):
	GOBIN=$(CURDIR)/$(dir $@) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

.PHONY: bench
bench: $(GHZ) $(BENCHSTAT) ## load benchmark: vaultwall vs a no-op floor under ghz, then Go benchmarks (BENCHFLAGS=-h lists options)
	$(GO) run ./bench/run -ghz $(GHZ) -benchstat $(BENCHSTAT) $(BENCHFLAGS)

.PHONY: bench-go
bench-go: $(BENCHSTAT) ## Go benchmarks of the Check path and its stages only
	$(GO) run ./bench/run -ghz $(GHZ) -benchstat $(BENCHSTAT) -load=false $(BENCHFLAGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done
