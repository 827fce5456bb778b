# The same targets for people and CI. See README.md.
GO         ?= go
BIN        := bin
DIST       := dist
FUZZTIME   ?= 15s
BENCHFLAGS ?= -count=3
export CGO_ENABLED ?= 0

.PHONY: all build demo test bench fuzz cross lint chaos test-arm deb load nab sim-long eval
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
# BenchmarkLoginFlood starts a cloud process per iteration and locks the
# user out for a minute: it runs once per count (-benchtime 1x).
bench:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkLoginFlood$$' -benchmem $(BENCHFLAGS) -timeout 30m ./... > $(BIN)/bench.log 2>&1; status=$$?; \
	  $(GO) test -run '^$$' -bench '^BenchmarkLoginFlood$$' -benchtime 1x $(BENCHFLAGS) -timeout 10m ./cmd/cloud >> $(BIN)/bench.log 2>&1 || status=$$?; \
	  $(GO) run ./cmd/benchfmt < $(BIN)/bench.log; \
	  if [ $$status -ne 0 ]; then grep -E '^(FAIL|---|panic)' $(BIN)/bench.log; exit $$status; fi

# The long chaos runs, each 20 trucks with gateway processes and the cloud
# process: first with the embedded broker (random gateway SIGKILLs, a cloud
# SIGKILL with a 40 s outage, a clean cloud restart), then with Mosquitto
# between them (its default configuration, 3 Mosquitto SIGKILLs, a
# 10-minute cloud outage that overflows its 1,000-message queue). Then
# nothing acknowledged may be lost or duplicated, each overheat is one
# incident, resolved once it ended. Prints CHAOS figures. (make test runs
# a 3-truck embedded variant; CHAOS=mosquitto a short Mosquitto one.)
chaos:
	CHAOS=long $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 50m ./cmd/chaos

# Every fuzz target for FUZZTIME each; carries on past a failure and lists
# the failed targets at the end.
fuzz:
	@failed=""; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$pkg.$$f"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz failures:$$failed"; exit 1; fi; echo "fuzz: no findings"

# The detector on the NAB corpus (fails below standard 65 / reward_low_FP 62 / reward_low_FN 68).
nab:
	$(GO) test -count=1 -run TestNAB -v ./cmd/detect-replay

# False alerts over 50,000 simulated truck-hours each on firmware-sim's trucks
# and on detect's own generator (make test runs 200 and 1,000).
sim-long:
	DETECT_SIM_HOURS=50000 FWSIM_HOURS=50000 $(GO) test -count=1 -timeout 60m -run 'TestSimFalseAlarms|TestFirmwareSimFalseAlerts' -v ./detect

# The detector measured on reality: `EVAL <name> <value> <unit>` lines.
# First the simulator part (cmd/eval: false alerts per 1,000 truck-hours
# on firmware-sim's realistic trucks, EVAL_HOURS of them, and the fault
# matrix, EVAL_RUNS trucks per fault); then detect-replay: alerts on the
# shared real recordings (77 KIT trips in truck mode, the J1939 coolant
# clips) at their own rate and resampled to 0.5/1/2/10 Hz, the generic
# class's false alerts per hour on NAB's anomaly-free series and outside
# its labelled windows, and NAB's three scores (cmd/detect-replay/eval.go).
# Under 15 minutes on 2 cores.
EVAL_HOURS ?= 20000
EVAL_RUNS ?= 12
SHARED ?= ../shared
eval: build
	$(BIN)/eval -hours $(EVAL_HOURS) -runs $(EVAL_RUNS)
	$(BIN)/detect-replay -eval-recordings $(SHARED)/data/vehicles -eval-nab $(SHARED)/data/nab -go $(GO)

# Static, stripped gateway binaries for the trucks' ARM boxes (and amd64),
# and cloud binaries for amd64 and arm64 servers.
cross:
	@mkdir -p $(DIST)
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/gateway-linux-arm64 ./cmd/gateway
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/gateway-linux-armv7 ./cmd/gateway
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/gateway-linux-amd64 ./cmd/gateway
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/cloud-linux-amd64 ./cmd/cloud
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(DIST)/cloud-linux-arm64 ./cmd/cloud
	@ls -l $(DIST)/gateway-linux-* $(DIST)/cloud-linux-*

# Unit tests of the edge packages on arm64 and armv7 under qemu-user-static
# (apt-get install -y qemu-user-static). Not part of `make test`. -short
# trims the long simulations; TEST_ARM_SKIP lists tests that re-execute
# their own test binary, which needs binfmt_misc (absent in containers).
TEST_ARM_PKGS ?= ./sensors/... ./detect/... ./buffer/... ./uplink/... ./gateway/...
TEST_ARM_SKIP ?= ^TestCrashKill9$$
test-arm:
	@command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null || \
	  { echo "test-arm needs qemu-user-static: apt-get install -y qemu-user-static"; exit 1; }
	GOARCH=arm64 $(GO) test -count=1 -short -timeout 20m -skip '$(TEST_ARM_SKIP)' -exec qemu-aarch64-static $(TEST_ARM_PKGS)
	GOARCH=arm GOARM=7 $(GO) test -count=1 -short -timeout 20m -skip '$(TEST_ARM_SKIP)' -exec qemu-arm-static $(TEST_ARM_PKGS)

# Debian packages (cmd/debpkg, nfpm): tankguard-gateway for amd64, arm64 and
# armhf, tankguard-cloud for amd64 and arm64, into $(DIST)/.
VERSION ?= 0.1.0
deb: cross
	$(GO) build -o $(BIN)/debpkg ./cmd/debpkg
	$(BIN)/debpkg -pkg gateway -arch arm64 -bin $(DIST)/gateway-linux-arm64 -version $(VERSION) -out $(DIST)
	$(BIN)/debpkg -pkg gateway -arch armhf -bin $(DIST)/gateway-linux-armv7 -version $(VERSION) -out $(DIST)
	$(BIN)/debpkg -pkg gateway -arch amd64 -bin $(DIST)/gateway-linux-amd64 -version $(VERSION) -out $(DIST)
	$(BIN)/debpkg -pkg cloud -arch amd64 -bin $(DIST)/cloud-linux-amd64 -version $(VERSION) -out $(DIST)
	$(BIN)/debpkg -pkg cloud -arch arm64 -bin $(DIST)/cloud-linux-arm64 -version $(VERSION) -out $(DIST)

# Load test: firmware-sim with LOAD_TRUCKS trucks, a gateway per truck (all
# in one process), the cloud with its embedded broker; prints readings/s end
# to end, alert-to-notification latency and each process's CPU and RSS.
LOAD_TRUCKS ?= 1000
LOAD_DURATION ?= 2m
load: build
	$(BIN)/load -trucks $(LOAD_TRUCKS) -duration $(LOAD_DURATION)
