package gateway

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

// TestRecordCandump runs a gateway on a simulated truck's live bus with
// RecordCandump set: the recording holds the frames the simulator sent, in
// order, and replaying it yields exactly the readings the gateway queued
// live, with the same times.
func TestRecordCandump(t *testing.T) {
	dir := t.TempDir()
	simLog, recPath := filepath.Join(dir, "sim.candump"), filepath.Join(dir, "gw.candump")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() {
		simDone <- firmwaresim.Run(simCtx, firmwaresim.Config{Trucks: 1, NoSerial: true, Seed: 7,
			CandumpPath: simLog, OnReady: func(m firmwaresim.Manifest) { ready <- m }})
	}()
	m := <-ready

	cfg := DefaultConfig()
	cfg.Truck = m.Trucks[0].ID
	cfg.DataDir = filepath.Join(dir, "gw")
	cfg.CAN = []string{m.Trucks[0].CAN}
	cfg.RecordCandump = recPath
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1" // unreachable: everything stays queued
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	gwCtx, gwStop := context.WithCancel(ctx)
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(gwCtx) }()
	time.Sleep(2500 * time.Millisecond)
	var live []sensors.Reading
	for from := uint64(0); ; {
		ch, err := g.Queue().Read(buffer.Telemetry, from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Len() == 0 && ch.Skipped == 0 {
			break
		}
		live = append(live, ch.Readings...)
		from = ch.Last + 1
	}
	gwStop()
	if err := <-gwDone; err != nil {
		t.Fatal(err)
	}
	simStop()
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}

	recorded := readCandump(t, recPath)
	sent := readCandump(t, simLog)
	if len(recorded) < 20 {
		t.Fatalf("recorded %d frames", len(recorded))
	}
	// The recording is a run of what the simulator sent (the gateway
	// connected after the first frames, and stopped before the last).
	frames := func(rs []sensors.CandumpRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Frame.String())
		}
		return out
	}
	rf, sf := frames(recorded), frames(sent)
	at := slices.Index(sf, rf[0])
	for at >= 0 && at+len(rf) <= len(sf) && !slices.Equal(sf[at:at+len(rf)], rf) {
		next := slices.Index(sf[at+1:], rf[0])
		if next < 0 {
			at = -1
			break
		}
		at += 1 + next
	}
	if at < 0 || at+len(rf) > len(sf) {
		t.Fatalf("the %d recorded frames are not a run of the %d sent", len(rf), len(sf))
	}

	// Replaying the recording reproduces the live readings: those queued
	// before the queue was read are a prefix of the replay's.
	f, err := os.Open(recPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	var replayed []sensors.Reading
	r := &sensors.CandumpReplay{Log: f, Decoder: dec}
	if err := r.Run(ctx, func(rs []sensors.Reading) { replayed = append(replayed, rs...) }); err != nil {
		t.Fatal(err)
	}
	if len(live) == 0 || len(replayed) < len(live) {
		t.Fatalf("%d live readings, %d replayed", len(live), len(replayed))
	}
	for i, l := range live {
		p := replayed[i]
		if l.Signal != p.Signal || l.Value != p.Value || l.Time != p.Time {
			t.Fatalf("reading %d: live %+v, replayed %+v", i, l, p)
		}
	}
}

func readCandump(t *testing.T, path string) []sensors.CandumpRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sensors.CandumpRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r, err := sensors.ParseCandumpLine(sc.Text())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}
