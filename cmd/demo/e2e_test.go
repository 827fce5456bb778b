package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud"
	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/detect"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/gateway"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// The end-to-end tests run the whole system over real sockets: the cloud
// (with its embedded broker, or Mosquitto), one simulated truck on a
// loopback CAN bus and an NMEA pseudo-terminal, and its gateway. The truck
// overheats; the gateway and the cloud must each raise the alert, and every
// value the simulator emitted must be archived exactly once.

func TestEndToEndEmbeddedBroker(t *testing.T) {
	t.Parallel()
	runEndToEnd(t, "")
}

func TestEndToEndMosquitto(t *testing.T) {
	t.Parallel()
	runEndToEnd(t, "tcp://"+mosquittotest.Start(t))
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// system is the whole tankguard system of one simulated truck, running in
// this process over real sockets.
type system struct {
	cloud     *cloud.Cloud
	gateway   *gateway.Gateway
	truck     firmwaresim.ManifestTruck
	truthPath string
	sim       *running
	simStop   context.CancelFunc
}

// startSystem starts the cloud (embedded broker when brokerURL is empty),
// one simulated truck whose engine overheats overheatAt after its gateway
// connects, and the gateway. Everything stops when the test ends.
func startSystem(t *testing.T, ctx context.Context, brokerURL string, overheatAt time.Duration) *system {
	t.Helper()
	dir := t.TempDir()
	log := testLogger(t)

	// Cloud.
	ccfg := cloud.DefaultConfig()
	ccfg.DataDir = filepath.Join(dir, "cloud")
	ccfg.HTTPListen = "127.0.0.1:0"
	ccfg.FlushInterval = 500 * time.Millisecond
	if brokerURL == "" {
		ccfg.BrokerListen, ccfg.BrokerPlainTCP = "127.0.0.1:0", true
	} else {
		ccfg.BrokerListen, ccfg.BrokerURL, ccfg.Ingest = "", brokerURL, cloud.IngestSubscribe
	}
	c, err := cloud.New(ccfg, log.With("proc", "cloud"))
	if err != nil {
		t.Fatal(err)
	}
	cloudCtx, cloudStop := context.WithCancel(ctx)
	cloudDone := goRun(func() error { return c.Run(cloudCtx) })
	t.Cleanup(func() { cloudStop(); wait(t, "cloud", cloudDone) })
	select {
	case <-c.Ready():
	case <-cloudDone.done:
		t.Fatalf("cloud stopped before ready: %v", cloudDone.err)
	}
	if brokerURL == "" {
		brokerURL = "tcp://" + c.BrokerAddr()
	}

	// Simulated truck with a warm engine.
	var sc firmwaresim.Scenario
	warm := true
	sc.Default.Warm = &warm
	if err := sc.AddFaultFlag(firmwaresim.FaultOverheat, fmt.Sprintf("truck-01@%s", overheatAt)); err != nil {
		t.Fatal(err)
	}
	sys := &system{cloud: c, truthPath: filepath.Join(dir, "truth.csv")}
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	sys.simStop = simStop
	sys.sim = goRun(func() error {
		return firmwaresim.Run(simCtx, firmwaresim.Config{
			Trucks: 1, Scenario: sc, TruthPath: sys.truthPath, Seed: 7,
			OnReady: func(m firmwaresim.Manifest) { ready <- m },
		})
	})
	t.Cleanup(func() { simStop(); wait(t, "sim", sys.sim) })
	select {
	case m := <-ready:
		sys.truck = m.Trucks[0]
	case <-sys.sim.done:
		t.Fatalf("sim stopped before ready: %v", sys.sim.err)
	}

	// Gateway.
	gcfg := gateway.DefaultConfig()
	gcfg.Truck = sys.truck.ID
	gcfg.DataDir = filepath.Join(dir, "gw")
	gcfg.CAN = []string{sys.truck.CAN}
	gcfg.Serial = []string{sys.truck.Serial}
	gcfg.Uplink.BrokerURL = brokerURL
	gcfg.Uplink.BatchDelay = 500 * time.Millisecond
	gcfg.Cab.Listen = "127.0.0.1:0"
	g, err := gateway.New(gcfg, log.With("proc", "gateway"))
	if err != nil {
		t.Fatal(err)
	}
	gwCtx, gwStop := context.WithCancel(ctx)
	gwDone := goRun(func() error { return g.Run(gwCtx) })
	t.Cleanup(func() { gwStop(); wait(t, "gateway", gwDone) })
	sys.gateway = g
	return sys
}

// waitEdgeAlert waits until the gateway raised an alert on signal.
func (s *system) waitEdgeAlert(t *testing.T, ctx context.Context, sig sensors.Signal) detect.Transition {
	t.Helper()
	var edge detect.Transition
	waitFor(t, ctx, 150*time.Second, "gateway raises the "+sig.String()+" alert", func() bool {
		for _, a := range s.gateway.Alerts() {
			if a.Signal == sig && a.Phase == detect.Raised {
				edge = a
				return true
			}
		}
		return false
	})
	return edge
}

func runEndToEnd(t *testing.T, brokerURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sys := startSystem(t, ctx, brokerURL, 40*time.Second)
	c, truck, truthPath := sys.cloud, sys.truck, sys.truthPath

	// Both the gateway and the cloud raise the coolant alert on their own.
	edge := sys.waitEdgeAlert(t, ctx, sensors.CoolantTemp)
	t.Logf("gateway alert: %s %s %s value %.1f baseline %.1f", edge.Kind, edge.Severity, edge.Phase, edge.Value, edge.Baseline)
	archiveDir := c.ArchiveDir()
	var cloudAlert archive.Alert
	waitFor(t, ctx, 30*time.Second, "cloud raises its own coolant alert and archives the edge's", func() bool {
		alerts, err := archive.ReadAlerts(archiveDir)
		if err != nil {
			return false
		}
		var sawEdge, sawCloud bool
		for _, a := range alerts {
			if a.Truck != truck.ID || a.Signal != sensors.CoolantTemp.String() || a.Phase != detect.Raised.String() {
				continue
			}
			switch a.Source {
			case archive.SourceEdge:
				sawEdge = a.StartNS == edge.Start && a.Kind == edge.Kind.String()
			case archive.SourceCloud:
				sawCloud, cloudAlert = true, a
			}
		}
		return sawEdge && sawCloud
	})
	t.Logf("cloud alert: %s %s value %.1f", cloudAlert.Kind, cloudAlert.Severity, cloudAlert.Value)
	// Fed the same readings, the cloud's detector decides as the gateway's did.
	if cloudAlert.StartNS != edge.Start || cloudAlert.Kind != edge.Kind.String() || cloudAlert.Severity != edge.Severity.String() {
		t.Errorf("cloud alert %+v differs from the gateway's %+v", cloudAlert, edge)
	}

	// Stop the simulator: its truth file is then complete. Everything it
	// emitted must reach the archive exactly once.
	sys.simStop()
	wait(t, "sim", sys.sim)
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := firmwaresim.ReadTruth(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) < 500 {
		t.Fatalf("simulator emitted only %d values", len(truth))
	}
	var got []archive.Reading
	waitFor(t, ctx, 60*time.Second, "every emitted value archived", func() bool {
		got, err = archive.ReadReadings(archiveDir)
		return err == nil && len(got) >= len(truth)
	})
	if diff := compareTruth(truth, got); diff != "" {
		t.Fatal(diff)
	}
	t.Logf("%d values emitted, %d archived, cloud stats %+v", len(truth), len(got), c.Stats())
}

// compareTruth checks that, per (truck, signal), the archived readings in
// sequence order carry exactly the emitted values in emission order, each
// once, and that sequence numbers are unique.
func compareTruth(truth []firmwaresim.TruthRecord, got []archive.Reading) string {
	type key struct{ truck, signal string }
	want := map[key][]float64{}
	for _, r := range truth {
		k := key{r.Truck, r.Signal.String()}
		want[k] = append(want[k], r.Value)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Seq < got[j].Seq })
	have := map[key][]float64{}
	seen := map[string]bool{}
	var b strings.Builder
	for _, r := range got {
		id := fmt.Sprintf("%s/%d", r.Truck, r.Seq)
		if seen[id] {
			fmt.Fprintf(&b, "duplicate archived reading %s\n", id)
		}
		seen[id] = true
		k := key{r.Truck, r.Signal}
		have[k] = append(have[k], r.Value)
	}
	for k, w := range want {
		h := have[k]
		if len(h) != len(w) {
			fmt.Fprintf(&b, "%s/%s: emitted %d values, archived %d\n", k.truck, k.signal, len(w), len(h))
			continue
		}
		for i := range w {
			if w[i] != h[i] {
				fmt.Fprintf(&b, "%s/%s: value %d emitted %v, archived %v\n", k.truck, k.signal, i, w[i], h[i])
				break
			}
		}
	}
	for k, h := range have {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "%s/%s: %d archived values the simulator never emitted\n", k.truck, k.signal, len(h))
		}
	}
	return b.String()
}

// running is a component's Run in its own goroutine; done closes when it
// returned, and err is then its result.
type running struct {
	done chan struct{}
	err  error
}

func goRun(f func() error) *running {
	r := &running{done: make(chan struct{})}
	go func() { r.err = f(); close(r.done) }()
	return r
}

// wait waits for r to stop and reports its error; it may be called again.
func wait(t *testing.T, name string, r *running) {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Errorf("%s: %v", name, r.err)
			r.err = nil // report once
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s", name)
	}
}

func waitFor(t *testing.T, ctx context.Context, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %v waiting until %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
