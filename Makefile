# vminit: make help lists the targets.

GO      ?= go
BIN     ?= bin
# A static, stripped binary: an init has no libc to lean on.
export CGO_ENABLED = 0
LDFLAGS := -s -w
# Tests that create namespaces run one package at a time, with a bound.
TESTFLAGS ?= -p 1 -count=1 -timeout 20m

.PHONY: help build test demo lint fmt vet

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/vminit (static, stripped)
	$(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/vminit ./cmd/vminit

demo: build ## run vminit as PID 1 of a sandbox on a demo process tree, and shut it down
	./$(BIN)/vminit demo

test: ## run every test (as root: the namespace tests skip otherwise)
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

lint: fmt vet ## gofmt and go vet (and staticcheck when installed)
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)"; fi

fmt: ## fail if gofmt would change a file
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet, and the portable packages built for darwin and arm64
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOARCH=arm64 $(GO) build ./...
