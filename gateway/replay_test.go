package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
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
	cfg.ReplayFollow = true // the queue is read below, before Run returns
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

// gapLog is a recorded coolant signal (2021, ET1 at 1 Hz) with one 60 s
// gap: readings at +0..+119 s and +180..+239 s.
const gapLog = "testdata/coolant_gap60.log"

var (
	gapStart = time.Unix(1622547830, 250e6).UnixNano()
	gapFrom  = gapStart + 119*int64(time.Second) // last reading before the gap
	gapTo    = gapStart + 180*int64(time.Second) // first reading after it
	gapEnd   = gapStart + 239*int64(time.Second) // last reading of the log
)

func replayGateway(t *testing.T, follow bool) (*Gateway, chan error, context.CancelFunc) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Truck = "truck-gap"
	cfg.DataDir = t.TempDir()
	cfg.Replay = []string{gapLog}
	cfg.ReplayFollow = follow
	cfg.ReplayDrain = 0
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	// A wall-clock check every 20 ms would find this 2021 log's last
	// reading years old at once: only checks on the log's time are right.
	cfg.AdvanceInterval = 20 * time.Millisecond
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	return g, done, cancel
}

// checkGapAlerts wants exactly one missing alert, raised inside the gap
// (after the 30 s grace) and cleared by the first reading after it, and
// nothing else.
func checkGapAlerts(t *testing.T, alerts []detect.Transition) {
	t.Helper()
	if len(alerts) != 2 {
		t.Fatalf("got %d transitions, want a missing raise and its clear: %+v", len(alerts), alerts)
	}
	r, c := alerts[0], alerts[1]
	if r.Phase != detect.Raised || r.Kind != detect.KindMissing || r.Signal != sensors.CoolantTemp ||
		r.Time <= gapFrom+int64(30*time.Second) || r.Time > gapFrom+int64(31*time.Second) {
		t.Errorf("raise %+v: want missing coolant_temp 30-31 s after %d", r, gapFrom)
	}
	if c.Phase != detect.Cleared || c.Time != gapTo {
		t.Errorf("clear %+v: want cleared by the reading at %d", c, gapTo)
	}
}

// A fast replay of an old log raises missing for its 60 s gap, on the
// log's time, nothing when it ends, exits by itself, and counts what it
// replayed in readings_total.
func TestReplayOnLogTime(t *testing.T) {
	g, done, cancel := replayGateway(t, false)
	defer cancel()
	m := NewMetrics(g)
	if err := <-done; err != nil {
		t.Fatalf("Run at the end of the log: %v", err)
	}
	checkGapAlerts(t, g.Alerts())
	got := gather(t, m)
	if n := got["tankguard_gateway_readings_total{source=replay,truck=truck-gap}"]; n != 180 {
		t.Errorf("readings_total{source=replay} = %v, want 180", n)
	}
	if n := got["tankguard_gateway_readings_total{source=can,truck=truck-gap}"]; n != 0 {
		t.Errorf("readings_total{source=can} = %v, want 0 (no live bus)", n)
	}
	if n := got["tankguard_gateway_can_frames_total{truck=truck-gap}"]; n != 180 {
		t.Errorf("can_frames_total = %v, want 180", n)
	}
}

// With ReplayFollow the gateway keeps running after the log ends, and
// still raises nothing: the log's clock stopped with the log.
func TestReplayFollowRaisesNothingAfterTheEnd(t *testing.T) {
	g, done, cancel := replayGateway(t, true)
	select {
	case <-g.ReplaysDone():
	case err := <-done:
		t.Fatalf("Run returned before the end of the log: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // 15 of the wall-clock AdvanceIntervals
	select {
	case err := <-done:
		t.Fatalf("Run returned with ReplayFollow: %v", err)
	default:
	}
	alerts := g.Alerts()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	checkGapAlerts(t, alerts)
	for _, a := range alerts {
		if a.Time > gapEnd {
			t.Errorf("transition after the log ended: %+v", a)
		}
	}
}

// A replay paced at real time raises missing while it waits out a gap in
// the log, when the log's time passes the grace period, not only once the
// next reading comes.
func TestReplayPacedRaisesMissingDuringTheGap(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "gap.log")
	var b []byte
	// Coolant every 0.25 s for 1 s, a 3 s gap, then 0.5 s more.
	for _, ms := range []int64{0, 250, 500, 750, 1000, 4000, 4250, 4500} {
		b = fmt.Appendf(b, "(%d.%06d) can0 18FEEE00#82FFFFFFFFFFFFFF\n", 1622547830+ms/1000, ms%1000*1000)
	}
	if err := os.WriteFile(log, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Truck = "truck-paced"
	cfg.DataDir = filepath.Join(dir, "gw")
	cfg.Replay = []string{log}
	cfg.ReplaySpeed = 1
	cfg.ReplayDrain = 0
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	cfg.AdvanceInterval = 50 * time.Millisecond
	cfg.Detect.Coolant.MissingAfter = 2 * time.Second
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var during []detect.Transition // what was open while the replay waited
	for {
		a := g.Alerts()
		if len(a) == 1 {
			during = a
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if len(during) != 1 || during[0].Kind != detect.KindMissing || during[0].Phase != detect.Raised {
				t.Fatalf("while waiting out the gap: %+v; want missing raised", during)
			}
			a = g.Alerts()
			if len(a) != 2 || a[1].Phase != detect.Cleared {
				t.Fatalf("at the end: %+v; want the missing cleared by the reading after the gap", a)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
