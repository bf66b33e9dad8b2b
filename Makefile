# Tollgate — build, test, lint, benchmark.
#
#   make demo    build, then gate the example manifests the way a pull request is gated
#   make build   bin/tollgate
#   make test    unit tests (race detector), the policy library's Rego tests
#                and fixture suites through `tollgate test`, and CLI end-to-end
#   make lint    gofmt, go vet, golangci-lint (installed into bin/ on first use)
#   make bench   engine benchmarks (ns/op, allocs/op)

GO              ?= go
BIN             := $(CURDIR)/bin
GOLANGCI_LINT   := $(BIN)/golangci-lint
GOLANGCI_VERSION := v2.15.0
OPA_VERSION     := v1.22.2
BENCHTIME       ?= 2s

.PHONY: all demo build test unit policy-test lint bench testdata clean

all: build test

demo: build
	@echo "== tollgate check test/manifests/hardened.yaml   (a labelled, hardened Deployment)"
	@$(BIN)/tollgate check test/manifests/hardened.yaml
	@echo
	@echo "== tollgate check test/manifests/privileged.yaml (privileged, root, hostPath)"
	@$(BIN)/tollgate check test/manifests/privileged.yaml; echo "exit status $$?"
	@echo
	@echo "== the same gate as GitHub annotations and SARIF (bin/demo.sarif)"
	@$(BIN)/tollgate check --format github test/manifests/privileged.yaml || true
	@$(BIN)/tollgate check --format sarif --output $(BIN)/demo.sarif test/manifests/ || true
	@echo
	@echo "== tollgate test policies/library   (Rego unit tests and fixture suites)"
	@$(BIN)/tollgate test policies/library

build:
	$(GO) build -o $(BIN)/tollgate ./cmd/tollgate

test: build unit policy-test

unit:
	$(GO) test -race -count=1 ./...

policy-test: build
	$(BIN)/tollgate test policies/library

$(GOLANGCI_LINT):
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

lint: $(GOLANGCI_LINT)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -cpu 1 ./policies/...

# Rebuild the OPA bundle the engine tests load, with the real `opa build`.
testdata:
	cd policies/testdata/bundle-src && $(GO) run github.com/open-policy-agent/opa@$(OPA_VERSION) build -o ../bundle.tar.gz .

clean:
	rm -rf $(BIN)
