# Tollgate — build, test, lint, benchmark.
#
#   make demo    a local API server with Tollgate enforcing, and a narrated tour
#   make dev     the same control plane and Tollgate, kept running (Ctrl-C stops)
#   make build   bin/tollgate
#   make tools   etcd, kube-apiserver, kube-controller-manager, kubectl into bin/k8s
#   make helm    bin/helm, built from the Go module proxy (test/tools/helm)
#   make chart   lint the Helm chart and run its tests (test/chart)
#   make image-binary  static binaries for the Dockerfile (bin/image/<os>-<arch>)
#   make trivy   bin/trivy/trivy, the scanner Tollgate runs, and bin/trivy/trivy-testdb,
#                the test database builder, from the Go module proxy (tools/trivy)
#   make debs    Debian's docker-registry, prometheus, haproxy and chromium (apt-get), which tests and the demo run
#   make test    unit tests (race detector), end-to-end tests against the real
#                API server, the policy library's Rego tests and fixture suites
#   make fuzz    every native Go fuzz target for FUZZTIME each (default 2m), one
#                after another (FUZZ_TARGETS lists them); `make test` runs each
#                for FUZZTIME_SHORT (fuzz-short), and plain `go test` runs their
#                seed corpora. A failing input is written to the package's
#                testdata/fuzz/<Target>/: commit it with the fix, as a regression test
#   make lint    gofmt, go vet, golangci-lint (installed into bin/ on first use)
#   make docs    rewrite the reference pages in docs/reference (commands, CRDs, config,
#                metrics, policy library) from the code; `make test` fails when they are stale
#   make bench   engine benchmarks and the admission load test (latency, req/s, RSS)
#   make bench-peers  Tollgate, Kyverno and Gatekeeper side by side on the same
#                API server, load and Pod (docs/performance.md); not part of test

GO              ?= go
BIN             := $(CURDIR)/bin
GOLANGCI_LINT   := $(BIN)/golangci-lint
GOLANGCI_VERSION := v2.15.0
OPA_VERSION     := v1.22.2
CONTROLLER_GEN  := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.19.0
K8S_BIN         := $(BIN)/k8s
HELM            := $(BIN)/helm
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
K8S_VERSION     := v1.34.3
# Stamp the version kubectl and the API server report (a module build has none).
K8S_VERSION_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=34 -X $(p).gitTreeState=clean)
# Debian packages the tests and the demo run on loopback (binary:package):
# the distribution registry, Prometheus, and haproxy (the load balancer of
# the fault runs in test/fault); installed with apt-get when missing (sudo
# unless root).
DEBS            := /usr/bin/docker-registry:docker-registry /usr/bin/prometheus:prometheus /usr/bin/promtool:prometheus /usr/sbin/haproxy:haproxy /usr/bin/chromium:chromium
SUDO            := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BENCHTIME       ?= 2s
# Native Go fuzz targets, package:Target, in the order `make fuzz` runs them.
FUZZ_TARGETS    := \
	./webhook:FuzzAdmissionHandler ./webhook:FuzzDecodeJSONObject \
	./policies/manifest:FuzzRead ./policies/manifest:FuzzReadRoundTrip \
	./policies/imagesig:FuzzReferenceAgreesWithDistribution ./policies/imagesig:FuzzGlobAliases \
	./policies:FuzzCompile ./policies:FuzzConfig ./policies:FuzzExceptions ./policies:FuzzPrunedCachedAgree \
	./policies/kyverno:FuzzCompile \
	./policies/library/pssref:FuzzPSSDifferential \
	./finops:FuzzPrices ./finops/budget:FuzzBudget ./finops/alerts:FuzzAlertRoutes \
	./scanners/trivy:FuzzParse
FUZZTIME        ?= 2m
FUZZTIME_SHORT  ?= 4s
BENCH_DURATION  ?= 10s
BENCH_ARGS      ?=

.PHONY: all demo dev tools debs helm trivy chart image-binary build test unit policy-test fuzz fuzz-short lint bench bench-peers peers testdata generate docs clean FORCE

all: build test

demo: build trivy tools debs $(BIN)/tollgate-local
	@$(BIN)/tollgate-local -mode demo

dev: build tools debs $(BIN)/tollgate-local
	@exec $(BIN)/tollgate-local -mode dev

# The local control plane: etcd, kube-apiserver, kube-controller-manager and
# kubectl, built from the Go module proxy by the separate tools module in
# test/tools (a few minutes the first time, cached after).
tools: $(K8S_BIN)/kube-apiserver

$(K8S_BIN)/kube-apiserver: test/tools/go.mod test/tools/go.sum test/tools/etcd/main.go
	cd test/tools && $(GO) build -trimpath -ldflags='-s -w $(K8S_VERSION_LDFLAGS)' -o $(K8S_BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kubectl ./etcd
	@touch $@

# helm, for the chart's tests: the version pinned in test/tools/helm/go.mod,
# stamped like helm's own release builds (its version, and the Kubernetes
# version `helm template` assumes, from the client-go it links).
helm: $(HELM)

$(HELM): test/tools/helm/go.mod test/tools/helm/go.sum
	cd test/tools/helm && \
	v=$$($(GO) list -m -f '{{.Version}}' helm.sh/helm/v3) && \
	minor=$$($(GO) list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2) && \
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ -ldflags="-s -w \
		-X helm.sh/helm/v3/internal/version.version=$$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$$minor \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$$minor" \
		helm.sh/helm/v3/cmd/helm
	@touch $@

# Trivy, which Tollgate runs as its own process to scan images, and the
# builder of the test vulnerability database, from the separate tools module
# in tools/trivy (Trivy's version is its go.mod's). Trivy v0.74 imports
# encoding/json/v2, which Go serves only under GOEXPERIMENT=jsonv2: the
# experiment stays in this module's builds (docs/scanning.md says why).
TRIVY_BIN       := $(BIN)/trivy
TRIVY_GOENV     := GOEXPERIMENT=jsonv2 CGO_ENABLED=0
TRIVY_LDFLAGS    = -s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=$$($(GO) list -m -f '{{.Version}}' github.com/aquasecurity/trivy | sed 's/^v//')
trivy: $(TRIVY_BIN)/trivy $(TRIVY_BIN)/trivy-testdb

$(TRIVY_BIN)/trivy: tools/trivy/go.mod tools/trivy/go.sum
	cd tools/trivy && $(TRIVY_GOENV) $(GO) build -trimpath -ldflags="$(TRIVY_LDFLAGS)" -o $@ github.com/aquasecurity/trivy/cmd/trivy
	@touch $@

$(TRIVY_BIN)/trivy-testdb: tools/trivy/go.mod tools/trivy/go.sum tools/trivy/testdb/main.go
	cd tools/trivy && $(TRIVY_GOENV) $(GO) build -trimpath -ldflags='-s -w' -o $@ ./testdb

# The Helm chart: lint, golden renders, schema, RBAC and the server run
# as its service account against the local API server.
chart: build tools debs helm
	$(HELM) lint --strict charts/tollgate
	$(GO) test -count=1 ./test/chart

# Static binaries the Dockerfile copies (docker buildx build --platform ...):
# tollgate, and the trivy it runs to scan images.
image-binary:
	@for p in $(IMAGE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; echo "$(BIN)/image/$$os-$$arch/tollgate"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w' \
			-o $(BIN)/image/$$os-$$arch/tollgate ./cmd/tollgate || exit 1; \
		echo "$(BIN)/image/$$os-$$arch/trivy"; \
		(cd tools/trivy && $(TRIVY_GOENV) GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags="$(TRIVY_LDFLAGS)" \
			-o $(BIN)/image/$$os-$$arch/trivy github.com/aquasecurity/trivy/cmd/trivy) || exit 1; \
	done

debs:
	@missing=""; for d in $(DEBS); do [ -x "$${d%%:*}" ] || missing="$$missing $${d##*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing with apt-get ..."; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

$(BIN)/tollgate-local: FORCE
	$(GO) build -o $@ ./test/demo

build:
	$(GO) build -o $(BIN)/tollgate ./cmd/tollgate

test: build trivy tools debs helm unit policy-test fuzz-short

unit: build trivy tools debs helm
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -C policies/library/pssref -race -count=1 -timeout 20m ./...

policy-test: build
	$(BIN)/tollgate test policies/library

# Each fuzz target in turn (test/fuzz.sh); the first finding stops the
# run, with the failing input written under the package's testdata/fuzz/.
fuzz:
	GO=$(GO) test/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

fuzz-short:
	GO=$(GO) test/fuzz.sh $(FUZZTIME_SHORT) $(FUZZ_TARGETS)

$(GOLANGCI_LINT):
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

lint: $(GOLANGCI_LINT)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

# Engine micro-benchmarks, then the admission load test: AdmissionReviews
# straight to tollgate serve at concurrency 1/16/64 and 500/s, and Pod creates
# through the real API server with and without the webhooks (test/bench);
# the image scanner's steady state (1,000 pods of 50 images: 50 scans).
bench: build trivy tools debs
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -cpu 1 ./policies/... ./webhook/ ./finops/... ./scanners/trivy/ ./scanners/imagescan/ ./console/
	$(GO) run ./test/bench -duration $(BENCH_DURATION) -out $(BIN)/bench.json $(BENCH_ARGS)

# The peer engines the comparison measures, built from the Go module proxy by
# the separate tools module in test/tools/peers (Gatekeeper's manager and
# Kyverno's admission controller, at the versions its go.mod pins; slow the
# first time, cached after).
PEERS_BIN       := $(BIN)/peers
PEERS_REPEAT    ?= 3
peers: $(PEERS_BIN)/kyverno $(PEERS_BIN)/gatekeeper

$(PEERS_BIN)/kyverno: test/tools/peers/go.mod test/tools/peers/go.sum
	cd test/tools/peers && $(GO) build -trimpath -ldflags='-s -w' -o $@ github.com/kyverno/kyverno/cmd/kyverno

$(PEERS_BIN)/gatekeeper: test/tools/peers/go.mod test/tools/peers/go.sum
	cd test/tools/peers && $(GO) build -trimpath -ldflags='-s -w' -o $@ github.com/open-policy-agent/gatekeeper/v3

# Tollgate, Kyverno and Gatekeeper side by side: each engine with its Pod
# Security Standards checks (test/bench/peers), the same local API server,
# load and compliant Pod, the c=16 phases PEERS_REPEAT times. Prints the table
# and the ratios, and writes bin/bench-peers.json.
bench-peers: build tools peers
	$(GO) run ./test/bench -peers -repeat $(PEERS_REPEAT) -duration $(BENCH_DURATION) -out $(BIN)/bench-peers.json $(BENCH_ARGS)

# Regenerate deepcopy functions and the CRDs from policies/api, copy
# Gatekeeper's ConstraintTemplate CRD from the constraint framework module
# Tollgate builds with, and write the chart's CRD templates from them
# (charts/tollgate/templates/crds).
GATEKEEPER_CRD  := templates.gatekeeper.sh_constrainttemplates.yaml
# Kyverno's CRDs of the kinds Tollgate loads, from the Kyverno module it
# builds with, into charts/tollgate/crds/kyverno (installed by the chart
# only with kyverno.installCRDs: a cluster running Kyverno has them).
KYVERNO_CRDS    := kyverno/kyverno.io_clusterpolicies.yaml kyverno/kyverno.io_policies.yaml \
	kyverno/kyverno.io_policyexceptions.yaml policies.kyverno.io/policies.kyverno.io_validatingpolicies.yaml \
	policies.kyverno.io/policies.kyverno.io_mutatingpolicies.yaml policies.kyverno.io/policies.kyverno.io_policyexceptions.yaml
generate:
	$(GO) run $(CONTROLLER_GEN) object paths=./policies/api/... crd output:crd:artifacts:config=charts/tollgate/crds
	install -m 644 "$$($(GO) list -m -f '{{.Dir}}' github.com/open-policy-agent/frameworks/constraint)/config/crds/$(GATEKEEPER_CRD)" charts/tollgate/crds/$(GATEKEEPER_CRD)
	mkdir -p charts/tollgate/crds/kyverno
	dir="$$($(GO) list -m -f '{{.Dir}}' github.com/kyverno/kyverno)/config/crds" && \
	for f in $(KYVERNO_CRDS); do install -m 644 "$$dir/$$f" charts/tollgate/crds/kyverno/; done
	$(GO) test ./test/chart -count=1 -run '^TestCRDTemplates$$' -update

# The reference pages in docs/reference, rendered from the command tree, the
# CRDs, the config schema, the metrics' constructors and the policy library
# (cmd/tollgate/internal/refdoc, whose test fails when a page is stale).
docs:
	$(GO) test ./cmd/tollgate/internal/refdoc -count=1 -run '^TestReferenceUpToDate$$' -update

# Rebuild the OPA bundle the engine tests load, with the real `opa build`.
testdata:
	cd policies/testdata/bundle-src && $(GO) run github.com/open-policy-agent/opa@$(OPA_VERSION) build -o ../bundle.tar.gz .

clean:
	rm -rf $(BIN)
