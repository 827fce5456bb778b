package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

// A candump log written by firmware-sim replays through the gateway (the
// same decoder, detector and queue as live buses) to exactly the CAN
// readings the simulator recorded as sent, with the log's timestamps.
func TestCandumpReplayThroughGateway(t *testing.T) {
	dir := t.TempDir()
	candump, truthPath := filepath.Join(dir, "drive.log"), filepath.Join(dir, "truth.csv")

	// Record a few seconds of one truck through a real client.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() {
		simDone <- firmwaresim.Run(simCtx, firmwaresim.Config{Trucks: 1, NoSerial: true, Seed: 5,
			CandumpPath: candump, TruthPath: truthPath, OnReady: func(m firmwaresim.Manifest) { ready <- m }})
	}()
	m := <-ready
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	src := &sensors.CANSource{Addr: m.Trucks[0].CAN, Decoder: dec}
	srcCtx, srcStop := context.WithTimeout(ctx, 3*time.Second)
	defer srcStop()
	src.Run(srcCtx, func([]sensors.Reading) {})
	simStop()
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := firmwaresim.ReadTruth(f)
	f.Close()
	if err != nil || len(truth) < 20 {
		t.Fatalf("truth: %d records, %v", len(truth), err)
	}

	// Replay it through a gateway (no live bus; the broker is unreachable,
	// so everything stays queued).
	cfg := DefaultConfig()
	cfg.Truck = m.Trucks[0].ID
	cfg.DataDir = filepath.Join(dir, "gw")
	cfg.Replay = []string{candump}
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	gwCtx, gwStop := context.WithCancel(ctx)
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(gwCtx) }()
	select {
	case <-g.ReplaysDone():
	case <-ctx.Done():
		t.Fatal("replay did not finish")
	}
	if err := g.Queue().Sync(); err != nil {
		t.Fatal(err)
	}
	var got []sensors.Reading
	for from := uint64(0); ; {
		ch, err := g.Queue().Read(buffer.Telemetry, from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Len() == 0 && ch.Skipped == 0 {
			break
		}
		got = append(got, ch.Readings...)
		from = ch.Last + 1
	}
	gwStop()
	<-gwDone

	type rec struct {
		sig  sensors.Signal
		time int64
		v    float64
	}
	var want []rec
	for _, r := range truth {
		want = append(want, rec{r.Signal, r.Time, r.Value})
	}
	if len(got) != len(want) {
		t.Fatalf("replay queued %d readings, simulator sent %d", len(got), len(want))
	}
	// Order within one frame time may differ between signals; compare per signal.
	perSig := func(rs []rec) map[sensors.Signal][]rec {
		m := map[sensors.Signal][]rec{}
		for _, r := range rs {
			m[r.sig] = append(m[r.sig], r)
		}
		return m
	}
	var gr []rec
	for _, r := range got {
		gr = append(gr, rec{r.Signal, r.Time, r.Value})
	}
	w, h := perSig(want), perSig(gr)
	for sig, ws := range w {
		hs := h[sig]
		for i := range ws {
			// The candump log keeps microseconds.
			if hs[i].v != ws[i].v || abs(hs[i].time-ws[i].time) > int64(time.Millisecond) {
				t.Fatalf("%s #%d: replayed %+v, sent %+v", sig, i, hs[i], ws[i])
			}
		}
	}
	t.Logf("replayed %d readings of %d signals, identical to what the simulator sent", len(got), len(w))
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
