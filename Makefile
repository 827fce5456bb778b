# The same targets for people and CI. See README.md.
GO      ?= go
BIN     := bin
export CGO_ENABLED ?= 0

.PHONY: all build demo test bench fuzz cross lint
all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

demo: build
	$(BIN)/demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 -timeout 9m ./...
