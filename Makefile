# exec-proxy. `make demo` runs the local cluster with exec through exec-proxy; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: all build dist test unit fuzz test-chart test-monitoring test-dist image test-image e2e e2e-versions test-reliability microbench verify demo demo-down cluster-up cluster-down bench clean

all: build

build: ## Build bin/exec-proxy and the kubectl plugin bin/kubectl-execproxy.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/exec-proxy ./cmd/exec-proxy
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/kubectl-execproxy ./cmd/kubectl-execproxy

# make dist: VERSION (default from git describe) and KREW_BASE_URL (where the krew manifest says the
# archives are, default the release's download URL) go into _output/dist/execproxy.yaml.
VERSION ?=
KREW_BASE_URL ?=
dist: ## Reproducible archives of kubectl-execproxy for linux/darwin/windows × amd64/arm64, SHA256SUMS and the krew manifest, in _output/dist.
	VERSION='$(VERSION)' KREW_BASE_URL='$(KREW_BASE_URL)' hack/dist.sh

# make image: VERSION (the tag, default as make dist's) and IMAGE_NAME (default ghcr.io/exec-proxy/exec-proxy)
# name the image in the layout's index.json (docs/image.md).
IMAGE_NAME ?=
image: ## The image for linux/amd64 and linux/arm64, daemonless and reproducible, with SPDX SBOMs: _output/image/exec-proxy.oci.tar (docs/image.md).
	VERSION='$(VERSION)' IMAGE_NAME='$(IMAGE_NAME)' hack/image.sh

test-image: ## hack/image's unit tests; make image's build twice, same digest; platforms, user, entrypoint, ELF machine, accounts, no shell, SBOM checked (no cluster).
	$(GO) -C hack/image test -count=1 ./...
	mkdir -p _output; $(GO) test -tags image -count=1 -timeout 20m -v ./test/image/ 2>&1 | tee _output/test-image.log; exit $${PIPESTATUS[0]}

test-dist: dist ## make dist's archives and manifest checked, validated and installed with the real krew (built from its Go module) and kubectl.
	mkdir -p _output; krew=$$(hack/build-krew.sh) || exit 1; \
	  KREW_BIN=$$krew $(GO) test -tags dist -count=1 -timeout 10m -v ./test/dist/ 2>&1 | tee _output/test-dist.log; exit $${PIPESTATUS[0]}

unit: ## Unit tests (no root, no cluster); the recording bucket's against the S3 server hack/build-s3server.sh builds.
	s3server=$$(hack/build-s3server.sh) && S3SERVER=$$s3server $(GO) test -race -count=1 ./...

# Each target runs a count of inputs, about 20 s here, unless FUZZTIME (a count or a duration) is
# given: with a duration, Go 1.26's fuzz coordinator can fail a clean run with a bare "context
# deadline exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?=
fuzz: ## Each fuzz target for about 20 s, or FUZZTIME (the seed corpus in testdata/ also runs in `unit`).
	$(GO) test ./pkg/api -run '^$$' -fuzz FuzzQueryParsing -fuzztime $(or $(FUZZTIME),250000x)
	$(GO) test ./pkg/wire/spdy -run '^$$' -fuzz FuzzSPDYFrameReader -fuzztime $(or $(FUZZTIME),50000x)
	$(GO) test ./pkg/wire/websocket -run '^$$' -fuzz FuzzWSFrameReader -fuzztime $(or $(FUZZTIME),75000x)
	$(GO) test ./pkg/wire/spdy -run '^$$' -fuzz FuzzSPDYDifferential -fuzztime $(or $(FUZZTIME),100000x)
	$(GO) test ./pkg/wire/websocket -run '^$$' -fuzz FuzzWSDifferential -fuzztime $(or $(FUZZTIME),50000x)
	$(GO) test ./pkg/kuberoute -run '^$$' -fuzz FuzzPassThroughAgreement -fuzztime $(or $(FUZZTIME),25000x)
	$(GO) test ./pkg/wire/spdyclient -run '^$$' -fuzz FuzzSPDYClient -fuzztime $(or $(FUZZTIME),50000x)
	$(GO) test ./pkg/recording -run '^$$' -fuzz FuzzAppendEvent -fuzztime $(or $(FUZZTIME),50000x)

# kubectl kustomize renders deploy/ for the chart's drift test: the e2e's kubectl 1.33.
KUSTOMIZE_KUBECTL ?= $(or $(KUBECTL_DIR),/usr/lib/google-cloud-sdk/bin)/kubectl.1.33
test-chart: ## The Helm chart with the real helm (hack/build-helm.sh): lint, template, schema refusals, and no drift from deploy/ (no cluster).
	helm=$$(hack/build-helm.sh) && HELM=$$helm KUBECTL=$(KUSTOMIZE_KUBECTL) $(GO) test -tags chart -count=1 -v ./test/chart/

test-monitoring: ## deploy/components/monitoring with Debian's promtool: rules checked and unit-tested, dashboard queries parsed, only metrics exec-proxy registers; the dashboards checked against Grafana's schema (no cluster).
	hack/install-deps.sh
	PROMTOOL=/usr/bin/promtool $(GO) test -tags monitoring -count=1 -v ./test/monitoring/
	$(GO) -C hack/grafana-schema run . $(CURDIR)/deploy/components/monitoring/grafana-dashboard.json $(CURDIR)/charts/exec-proxy/files/grafana-dashboard.json

# Kubernetes versions (hack/k8s/): the local cluster's default, and the newest, whose kubectl joins
# the e2e's kubectls and whose control plane e2e-versions runs.
DEFAULT_K8S := $(shell cat hack/k8s/DEFAULT)
NEWEST_K8S := $(shell ls hack/k8s | grep '^v' | sort -V | tail -1)
# The core e2e (sessions, errors, audit, recordings, one context) that e2e-versions runs.
CORE_E2E := ^(TestExec|TestAttach|TestPortForward|TestCopyBothWays|TestErrors|TestSessionAudit|TestPortForwardAudit|TestEverySessionPathIsAudited|TestAuditAttach|TestAuditExitZeroWithStdin|TestRBAC|TestImpersonationRecorded|TestRecordingPlays|TestOneContext|TestKubeletWebSockets|TestWatchSession|TestTypedCommands)

e2e: build ## End-to-end tests against the real local cluster (root; builds and starts it as needed).
	K8S_VERSION=$(NEWEST_K8S) K8S_COMMANDS=kubectl hack/build-k8s.sh >/dev/null # its kubectl is one of the e2e's
	hack/build-helm.sh >/dev/null # TestHelmChart's helm
	K8S_VERSION=$(DEFAULT_K8S) hack/cluster/up.sh
	mkdir -p _output; $(GO) test -tags e2e -count=1 -timeout 40m -v -skip '^TestReliability' ./test/e2e/... 2>&1 | tee _output/e2e.log; status=$${PIPESTATUS[0]}; \
	  hack/cluster/down.sh; exit $$status

e2e-versions: build ## The core e2e on the newest control plane, with node1's kubelet of that version and node2's of the default (a mixed cluster).
	K8S_VERSION=$(NEWEST_K8S) NODE2_K8S_VERSION=$(DEFAULT_K8S) hack/cluster/up.sh
	mkdir -p _output; $(GO) test -tags e2e -count=1 -timeout 30m -v -run '$(CORE_E2E)' ./test/e2e/... 2>&1 | tee _output/e2e-versions.log; status=$${PIPESTATUS[0]}; \
	  hack/cluster/down.sh; exit $$status

test-reliability: build ## Attacks, faults, bad input and load on the real local cluster, with a summary table (LOAD_SESSIONS, LOAD_EXEC, LOAD_DURATION, LOAD_RATE).
	K8S_VERSION=$(DEFAULT_K8S) hack/cluster/up.sh
	mkdir -p _output; $(GO) test -tags e2e -count=1 -timeout 40m -v -run '^TestReliability' ./test/e2e/... 2>&1 | tee _output/reliability.log; status=$${PIPESTATUS[0]}; \
	  hack/cluster/down.sh; exit $$status

test: verify unit fuzz test-chart test-monitoring test-dist test-image e2e e2e-versions test-reliability ## Everything: what .ci/run runs.

verify: ## gofmt, go vet, go mod tidy check.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags dist ./test/dist/
	$(GO) vet -tags monitoring ./test/monitoring/
	$(GO) vet -tags image ./test/image/
	cd hack/image && $(GO) vet ./...
	cd hack/grafana-schema && $(GO) vet ./...
	cd hack/tools/s3server && $(GO) vet ./...
	@bash -n hack/*.sh hack/cluster/*.sh

BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
microbench: ## Go benchmarks of the relay's own per-byte costs, compared by benchstat with bench/micro-base.txt.
	mkdir -p _output; $(GO) test ./pkg/proxy ./pkg/proxy/clientconn -run '^$$' -bench . -count 6 | tee _output/micro.txt
	$(GO) run $(BENCHSTAT) bench/micro-base.txt _output/micro.txt

bench: build ## Benchmarks on the real local cluster: ratios to kube-apiserver's path and a direct kubelet (bench/: the program and its results).
	hack/bench.sh

demo: ## A real local cluster; one exec through exec-proxy; prints how to try it.
	hack/demo.sh

demo-down: ## Stop the demo cluster.
	hack/cluster/down.sh

clean:
	rm -rf $(BIN) _output
