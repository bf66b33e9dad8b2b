# Tollgate — build, test, lint, benchmark.
#
#   make demo    a local API server with Tollgate enforcing, and a narrated tour
#   make dev     the same control plane and Tollgate, kept running (Ctrl-C stops)
#   make build   bin/tollgate
#   make tools   etcd, kube-apiserver, kube-controller-manager, kubectl into bin/k8s
#   make debs    Debian's docker-registry and prometheus (apt-get), which tests and the demo run
#   make test    unit tests (race detector), end-to-end tests against the real
#                API server, the policy library's Rego tests and fixture suites
#   make lint    gofmt, go vet, golangci-lint (installed into bin/ on first use)
#   make bench   engine benchmarks and the admission load test (latency, req/s, RSS)

GO              ?= go
BIN             := $(CURDIR)/bin
GOLANGCI_LINT   := $(BIN)/golangci-lint
GOLANGCI_VERSION := v2.15.0
OPA_VERSION     := v1.22.2
CONTROLLER_GEN  := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.19.0
K8S_BIN         := $(BIN)/k8s
K8S_VERSION     := v1.34.3
# Stamp the version kubectl and the API server report (a module build has none).
K8S_VERSION_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=34 -X $(p).gitTreeState=clean)
# Debian packages the tests and the demo run on loopback (binary:package):
# the distribution registry and Prometheus; installed with apt-get when
# missing (sudo unless root).
DEBS            := /usr/bin/docker-registry:docker-registry /usr/bin/prometheus:prometheus /usr/bin/promtool:prometheus
SUDO            := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BENCHTIME       ?= 2s
BENCH_DURATION  ?= 10s

.PHONY: all demo dev tools debs build test unit policy-test lint bench testdata generate clean FORCE

all: build test

demo: build tools debs $(BIN)/tollgate-local
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

test: build tools debs unit policy-test

unit: tools debs
	$(GO) test -race -count=1 -timeout 20m ./...

policy-test: build
	$(BIN)/tollgate test policies/library

$(GOLANGCI_LINT):
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

lint: $(GOLANGCI_LINT)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

# Engine micro-benchmarks, then the admission load test: AdmissionReviews
# straight to tollgate serve at concurrency 1/16/64 and 500/s, and Pod creates
# through the real API server with and without the webhooks (test/bench).
bench: build tools debs
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -cpu 1 ./policies/... ./webhook/ ./finops/...
	$(GO) run ./test/bench -duration $(BENCH_DURATION) -out $(BIN)/bench.json

# Regenerate deepcopy functions and the CRDs from policies/api.
generate:
	$(GO) run $(CONTROLLER_GEN) object paths=./policies/api/... crd output:crd:artifacts:config=charts/tollgate/crds

# Rebuild the OPA bundle the engine tests load, with the real `opa build`.
testdata:
	cd policies/testdata/bundle-src && $(GO) run github.com/open-policy-agent/opa@$(OPA_VERSION) build -o ../bundle.tar.gz .

clean:
	rm -rf $(BIN)
