# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Everything runs from Go sources fetched through the Go module proxy: the
# tools (kube-apiserver, etcd, vault, pebble, controller-gen, helm) are built
# into bin/ once and reused; nginx and BIND 9 come from Debian's packages.
# Nothing downloads a binary.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN     := $(ROOT)/bin
export GOFLAGS   := -buildvcs=false
export GOTOOLCHAIN := local
# The checksum database cannot serve some HashiCorp plugin modules Vault
# needs; the committed go.sum of hack/tools/vault still pins every hash.
export GONOSUMDB := github.com/hashicorp

# Test timeouts: the e2e suite runs real issuance and a quiet minute.
UNIT_TIMEOUT ?= 10m
E2E_TIMEOUT  ?= 25m
GO_TEST_FLAGS ?=

TOOLS := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/vault $(BIN)/pebble $(BIN)/controller-gen $(BIN)/helm

.PHONY: nginx bind9 build tools generate verify lint test test-unit test-e2e test-deploy fuzz demo dev bench clean help

help: ## Show targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build the keyward binary into bin/.
	go build -o $(BIN)/keyward ./cmd/keyward

tools: $(TOOLS) nginx bind9 ## Build the real components the tests run (once; reused from bin/).

nginx: ## Install Debian's nginx-light if missing (the delivery e2e test's gateway).
	bash hack/install-deb.sh nginx nginx-light "the delivery e2e test's gateway"

bind9: ## Install Debian's bind9 if missing (the DNS server of the ACME DNS-01 tests).
	bash hack/install-deb.sh named bind9 "the DNS server of the ACME DNS-01 tests"

# Vault and kube-apiserver are the slow builds (about 10 and 6 CPU-minutes):
# `make -j2 tools` builds them side by side.
$(BIN)/kube-apiserver:
	cd hack/tools/kube-apiserver && go build -o $@ k8s.io/kubernetes/cmd/kube-apiserver
$(BIN)/etcd:
	cd hack/tools/etcd && go build -o $@ .
$(BIN)/vault:
	cd hack/tools/vault && go build -o $@ .
$(BIN)/pebble:
	cd hack/tools/pebble && go build -o $@ github.com/letsencrypt/pebble/v2/cmd/pebble
$(BIN)/controller-gen:
	cd hack/tools/controller-gen && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen
$(BIN)/helm:
	cd hack/tools/helm && go build -o $@ helm.sh/helm/v3/cmd/helm
# kubectl for `make dev` (not a test tool): from the same Kubernetes release
# as kube-apiserver, its version stamped as the release build does.
KUBE_VERSION = $(shell awk '$$1 == "require" && $$2 == "k8s.io/kubernetes" {print $$3}' hack/tools/kubectl/go.mod)
KUBE_MINOR = $(word 2,$(subst ., ,$(KUBE_VERSION)))
$(BIN)/kubectl:
	cd hack/tools/kubectl && go build -o $@ -ldflags "$(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBE_MINOR))" k8s.io/kubernetes/cmd/kubectl

generate: $(BIN)/controller-gen ## Regenerate CRDs, RBAC and deepcopy.
	bash hack/generate.sh
	bash hack/sync-chart-crds.sh

verify: generate lint ## Fail if generated files are stale.
	git diff --exit-code -- deploy issuer/api || { echo "generated files are stale: run 'make generate'"; exit 1; }

lint: ## gofmt, go vet and the product function length bound (hack/funclen).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run ./hack/funclen -top 0

test: tools ## Everything CI runs: unit, integration, e2e and chart tests.
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-deploy
	$(MAKE) test-e2e

test-unit: tools ## Unit and integration tests (integration ones use the real Vault/apiserver from bin/).
	go test -timeout $(UNIT_TIMEOUT) $(GO_TEST_FLAGS) $$(go list ./... | grep -v '/e2e$$')

test-e2e: tools ## End-to-end scenarios on the real stack.
	go test -timeout $(E2E_TIMEOUT) -v $(GO_TEST_FLAGS) ./e2e/

test-deploy: $(BIN)/helm ## Helm chart rendering, alert rules and dashboard checks.
	cd deploy/test && go test -timeout 5m ./...

fuzz: ## A longer run of every fuzz target (FUZZTIME each, default 10m).
	FUZZTIME=$${FUZZTIME:-10m}; \
	for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for t in $$(go test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    go test -run '^$$' -fuzz "^$$t$$" -fuzztime $$FUZZTIME $$pkg; \
	  done; \
	done

demo: tools build ## Start the embedded stack, issue a certificate into custody, print what happened (ACME=1 adds the ACME chapter).
	go run ./hack/demo $(if $(ACME),-acme)

dev: tools build $(BIN)/kubectl ## Keep the embedded stack running (pebble and BIND included); writes bin/dev.env; builds bin/kubectl.
	ln -sf keyward $(BIN)/kubectl-keyward # kubectl plugin: kubectl keyward status
	go run ./hack/demo -dev

bench: tools ## Benchmarks (prints figures; never asserted in make test).
	go test -run '^$$' -bench . -benchmem ./guard/ ./issuer/...
	go run ./hack/bench $(BENCH_ARGS)
	go run ./hack/kmsbench $(KMSBENCH_ARGS)

clean: ## Remove build outputs (keeps the slow tool builds unless CLEAN_TOOLS=1).
	rm -rf $(ROOT)/e2e/_artifacts $(BIN)/keyward
	if [ "$${CLEAN_TOOLS:-0}" = 1 ]; then rm -rf $(BIN); fi
