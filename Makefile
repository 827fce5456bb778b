# The same targets for people and CI. See README.md.
GO         ?= go
BIN        := bin
DIST       := dist
FUZZTIME   ?= 15s
BENCHFLAGS ?= -count=3
export CGO_ENABLED ?= 0

.PHONY: all build demo test bench fuzz cross lint chaos
all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole system on this machine: cloud, 5 simulated trucks, 5 gateways.
demo: build
	$(BIN)/demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 -timeout 9m ./...

# Every benchmark in the project; one `BENCH <name> <value> <unit>` line per
# headline figure (median of the runs). Full output in $(BIN)/bench.log.
bench:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem $(BENCHFLAGS) -timeout 30m ./... > $(BIN)/bench.log 2>&1; status=$$?; \
	  $(GO) run ./cmd/benchfmt < $(BIN)/bench.log; \
	  if [ $$status -ne 0 ]; then grep -E '^(FAIL|---|panic)' $(BIN)/bench.log; exit $$status; fi

# The long chaos run: 20 trucks with gateway processes, the cloud process
# and its broker; random gateway SIGKILLs, a cloud SIGKILL with a 40 s
# outage, a clean cloud restart; then nothing synced may be missing or
# duplicated. Prints CHAOS figures. (make test runs a 3-truck variant.)
chaos:
	CHAOS=long $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 20m ./cmd/chaos

# Every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Static, stripped gateway binaries for the trucks' ARM boxes.
cross:
	@mkdir -p $(DIST)
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/gateway-linux-arm64 ./cmd/gateway
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/gateway-linux-armv7 ./cmd/gateway
	@ls -l $(DIST)/gateway-linux-*
