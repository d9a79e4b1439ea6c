# vminit: make help lists the targets.

GO      ?= go
BIN     ?= bin
# A static, stripped binary: an init has no libc to lean on.
export CGO_ENABLED = 0
LDFLAGS := -s -w
# Tests that create namespaces run one package at a time, with a bound.
TESTFLAGS ?= -p 1 -count=1 -timeout 20m

.PHONY: help build test demo vm vm-test bench bench-full lint fmt vet

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/vminit and bin/vminitctl (static, stripped)
	$(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/vminit ./cmd/vminit
	$(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BIN)/vminitctl ./cmd/vminitctl

# The demo's host side: once the guest's control socket answers, wait a
# second and ask for the shutdown with vminitctl; the host's view is printed
# after the guest's timeline.
demo: build ## vminit as PID 1 of a sandbox with a demo process tree; vminitctl shuts it down
	@dir=$$(mktemp -d /tmp/vminit-demo-XXXXXX) && chmod 1777 $$dir && sock=$$dir/control.sock; \
	./$(BIN)/vminit demo --control unix:$$sock & guest=$$!; \
	until ./$(BIN)/vminitctl ping --to unix://$$sock >/dev/null 2>&1; do \
		kill -0 $$guest 2>/dev/null || break; sleep 0.05; done; \
	sleep 1; \
	./$(BIN)/vminitctl shutdown --grace 1s --quiet --to unix://$$sock > $$dir/host.txt; ctl=$$?; \
	wait $$guest; status=$$?; \
	echo; echo "vminitctl shutdown --grace 1s --to unix://$$sock (exit status $$ctl), as the host saw it:"; tail -n 1 $$dir/host.txt; \
	rm -rf $$dir; exit $$status

test: ## run every test (as root: the namespace tests skip otherwise; the VM scenarios say why when they skip)
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v '/bench/vm$$')
	$(GO) test $(TESTFLAGS) -v ./bench/vm

vm: ## boot a microVM (QEMU) with vminit as /init, press its power button, print both timelines
	$(GO) run ./bench/vm demo $(VMFLAGS)

vm-test: ## run the VM scenarios on microvm and q35 and print the measurements (VMFLAGS=-only=1,2 -machines=q35 ...)
	$(GO) run ./bench/vm test $(VMFLAGS)

bench: ## shutdown latency, quick matrix (root; < 3 min on 2 cores): prints the table, writes JSON, table and SVG to bench/results/
	$(GO) run ./bench -matrix quick -out bench/results

bench-full: ## shutdown latency, the whole matrix: every scenario at N = 1 to 10000, 30 runs each (long)
	$(GO) run ./bench -matrix full -out bench/results

lint: fmt vet ## gofmt, go vet, cross builds, staticcheck (fetched from the Go module proxy)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt: ## fail if gofmt would change a file
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet, and the portable packages built for darwin and arm64
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOARCH=arm64 $(GO) build ./...
