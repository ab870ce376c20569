# fibguard — developer entry points.
#
#   make test    system-deps, lint, then every test (go test), a short fuzz run of each Fuzz target, then make e2e
#   make system-deps  install the Debian packages the tests need when missing (hack/system-packages.sh)
#   make e2e     the end-to-end suite (test/e2e) on a real local node (hack/local-cluster.sh), torn down after
#   make lint    go vet, gofmt, golangci-lint (.golangci.yml)
#   make bench   benchmarks into bench.txt (+ benchstat summary when installed)
#   make build   go build ./... and one binary per cmd/* into ./bin
#   make tools   install the pinned golangci-lint and benchstat if missing
#
# Tests that build network namespaces need root, and so does installing the
# Debian packages: run `make test` as root, or `sudo make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
MAKEFLAGS += --no-print-directory

# `sudo` usually drops /usr/local/go/bin from PATH: fall back to the standard install.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOROOT_BIN := $(shell $(GO) env GOROOT)/bin
GOFMT := $(GOROOT_BIN)/gofmt
TOOLBIN := $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin

# golangci-lint runs `go` itself, so the toolchain must be on PATH too.
export PATH := $(GOROOT_BIN):$(TOOLBIN):$(PATH)

# Pinned tool versions. Bump them here only.
GOLANGCI_LINT_VERSION := v2.15.0
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
GOLANGCI_LINT := $(TOOLBIN)/golangci-lint
BENCHSTAT := $(TOOLBIN)/benchstat

# Knobs: `make test GOTESTFLAGS=-race`, `make test FUZZTIME=1m`, `make bench BENCHCOUNT=10`.
GOTESTFLAGS ?=
# A count, not a duration: a timed -fuzztime can end with a spurious
# "context deadline exceeded" failure of the Go fuzzer (seen in CI).
FUZZTIME ?= 20000x
BENCHCOUNT ?= 6

.PHONY: test system-deps unit deps race fuzz e2e e2e-kind lint vet fmt-check golangci bench build tools clean

## test: the whole suite, as CI runs it; first the Debian packages it needs
test: system-deps lint deps
	$(GO) test -count=1 $(GOTESTFLAGS) ./...
	@$(MAKE) race
	@$(MAKE) fuzz
	@$(MAKE) e2e

## system-deps: the Debian packages the tests need, from the one list in
# hack/system-packages.sh. As root on a Debian (apt) machine it installs the
# missing ones (apt-get update only then); as another user, or without apt,
# it names what is missing and how to install it, and fails: no test may
# skip for a package apt could install. Well under a second when all are there.
system-deps:
	hack/system-packages.sh install

## deps: build what the tests run besides our code, once, into caches: the
# reference CNI plugins, and in one go build kube-apiserver + kubectl for the
# API-server tests and kubelet, kube-controller-manager, kube-scheduler and
# kube-proxy for the e2e node (about 7-8 minutes cold), so that no test pays
# for a build inside its timeout. The Debian packages come first
# (system-deps); a prerequisite still missing (exit 3: no Go module proxy) is
# left to the tests, which skip with the reason. The rest of the local node
# of make e2e (crictl, pause and probe images) is built here too.
deps: system-deps
	hack/cni-plugins.sh >/dev/null
	hack/control-plane.sh build kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy || { rc=$$?; [ $$rc -eq 3 ] && echo "deps: control plane prerequisites missing; its tests will skip"; [ $$rc -eq 3 ]; }
	hack/local-cluster.sh build || { rc=$$?; [ $$rc -eq 3 ] && echo "deps: local node prerequisites missing; make e2e will say why"; [ $$rc -eq 3 ]; }

## e2e: the end-to-end suite on a real single-node cluster in namespaces of
# its own (control plane, controllers, kube-proxy, kubelet, containerd), with
# fibguard installed by its DaemonSet and its Helm chart: up, suite, down
# even on failure. About 1 minute once deps are built. Its Debian packages
# (containerd, runc, etcd, ...) come from system-deps; a prerequisite still
# missing (exit 3, e.g. no Go module proxy for a build) skips it with the reason.
e2e: system-deps
	@hack/e2e-local.sh || { rc=$$?; if [ $$rc -eq 3 ]; then echo "e2e: SKIPPED: a prerequisite of the local node is missing (see above)"; exit 0; fi; exit $$rc; }

## e2e-kind: the same suite on a kind cluster whose node image, kind and Docker
# engine are all built here (FIBGUARD_KIND_LOCAL_IMAGE=1 hack/kind-e2e.sh: no
# registry needed; docs/e2e.md). Needs root, Debian's docker.io, iptables and
# debootstrap. Not part of `make test` or CI yet. Fails if anything of it is
# left behind (hack/kind/dockerd.sh leftovers).
e2e-kind:
	FIBGUARD_KIND_LOCAL_IMAGE=1 hack/kind-e2e.sh

## race: the parallel ADD/DEL cycles through libcni, with the race detector
# (the fibguard binary under test is race-built too)
race:
	$(GO) test -count=1 -race -run '^TestParallelCycles$$' ./test/integration/

unit:
	$(GO) test -count=1 $(GOTESTFLAGS) ./...

## fuzz: every `func FuzzXxx` of the module's tests for $(FUZZTIME), one at a
# time (hack/fuzz.sh): all of them run, the summary names those that failed,
# and only a real failure fails (a duration's deadline race is a flake).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) hack/fuzz.sh

## lint: vet, formatting, golangci-lint
lint: vet fmt-check golangci

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/

fmt-check:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 \
		| xargs -0 -r $(GOFMT) -l); \
	if [ -n "$$out" ]; then \
		echo "gofmt: these files are not formatted (fix with: gofmt -w FILE):"; \
		echo "$$out"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

golangci: tools
	$(GOLANGCI_LINT) run ./...

## bench: 6 runs of every benchmark, kept in bench.txt for benchstat comparisons
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) ./... | tee bench.txt
	@if [ -x "$(BENCHSTAT)" ]; then "$(BENCHSTAT)" bench.txt; \
	elif command -v benchstat >/dev/null; then benchstat bench.txt; \
	else echo "bench: benchstat not installed (make tools); raw results in bench.txt"; fi

## build: compile everything, and put one binary per cmd/<name> into ./bin
# The binaries are static (CGO_ENABLED=0), as the reference CNI plugins and
# the image's are: a runtime execs the plugin for every pod, and a binary
# linked against libc (what `go build` makes where a C compiler exists,
# since package net uses cgo) pays the dynamic loader on every exec,
# about 0.7 ms here (docs/performance.md).
build:
	$(GO) build ./...
	@if [ -d cmd ]; then \
		mkdir -p bin; \
		for d in cmd/*/; do \
			name=$$(basename "$$d"); \
			echo "build: bin/$$name"; \
			CGO_ENABLED=0 $(GO) build -o "bin/$$name" "./cmd/$$name"; \
		done; \
	else echo "build: no cmd/ yet"; fi

## tools: install pinned tools into $(TOOLBIN), only when missing or at another version
# Installed from outside the module (cd /) so go.mod and go.sum are never touched.
define install_tool
	@bin="$(TOOLBIN)/$(1)"; \
	have=$$( [ -x "$$bin" ] && $(GO) version -m "$$bin" 2>/dev/null | awk '$$1=="mod"{print $$3; exit}' || true); \
	if [ "$$have" = "$(3)" ]; then \
		echo "tools: $(1) $(3) present"; \
	else \
		echo "tools: installing $(2)@$(3) (a few minutes on 2 cores)"; \
		start=$$(date +%s); \
		cd / && env GOFLAGS= GOBIN="$(TOOLBIN)" $(GO) install "$(2)@$(3)"; \
		echo "tools: $(1) $(3) built in $$(( $$(date +%s) - start ))s"; \
	fi
endef

tools:
	$(call install_tool,golangci-lint,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))
	$(call install_tool,benchstat,golang.org/x/perf/cmd/benchstat,$(BENCHSTAT_VERSION))

clean:
	rm -rf bin bench.txt coverage.out coverage.html
