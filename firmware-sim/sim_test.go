package firmwaresim

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/sensors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type key struct {
	truck  string
	signal sensors.Signal
}

// received gathers what the gateway-side sources decoded, per truck and
// signal, in arrival order.
type received struct {
	mu    sync.Mutex
	m     map[key][]float64
	times map[key][]int64
}

func (r *received) emitter(truck string) func([]sensors.Reading) {
	return func(rs []sensors.Reading) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, x := range rs {
			k := key{truck, x.Signal}
			r.m[k] = append(r.m[k], x.Value)
			r.times[k] = append(r.times[k], x.Time)
		}
	}
}

func (r *received) count(k key) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m[k])
}

func truthBySignal(t *testing.T, path string) map[key][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[key][]float64{}
	for _, r := range recs {
		k := key{r.Truck, r.Signal}
		out[k] = append(out[k], r.Value)
	}
	return out
}

// runSim starts a simulator and returns its manifest and a stop function
// that cancels it and returns Run's error.
func runSim(t *testing.T, cfg Config) (Manifest, func() error) {
	t.Helper()
	ready := make(chan Manifest, 1)
	cfg.OnReady = func(m Manifest) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case m := <-ready:
		var once sync.Once
		var err error
		return m, func() error {
			once.Do(func() { cancel(); err = <-done })
			return err
		}
	case err := <-done:
		cancel()
		t.Fatalf("sim stopped before ready: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("sim not ready")
	}
	return Manifest{}, nil
}

// TestLoopbackEveryTruthValueArrives runs the simulator in-process and reads
// it the way a gateway does (CANSource over loopback TCP, NMEASource on the
// pseudo-terminal): every value in the truth file must arrive, in order,
// bit for bit, and nothing else.
func TestLoopbackEveryTruthValueArrives(t *testing.T) {
	dir := t.TempDir()
	warm := true
	cfg := Config{
		Trucks:       2,
		TruthPath:    filepath.Join(dir, "truth.csv"),
		ManifestPath: filepath.Join(dir, "manifest.json"),
		CandumpPath:  filepath.Join(dir, "candump.log"),
		FaultsPath:   filepath.Join(dir, "faults.csv"),
		Scenario: Scenario{
			Default: TruckScenario{Warm: &warm},
			// truck-02 has a noisy bus and serial line, VTG, and its cargo
			// probe on a serial port: the truth must still match exactly.
			Trucks: map[string]TruckScenario{
				// truck-01's receiver jumps an hour back after its first fix.
				"truck-01": {Warm: &warm, Faults: []Fault{{Kind: FaultClockJump, At: Duration(500 * time.Millisecond), Offset: Duration(-time.Hour)}}},
				"truck-02": {
					Warm: &warm, CargoProbe: "serial", VTG: true,
					Faults: []Fault{
						{Kind: FaultCANGarbage, Probability: 0.3},
						{Kind: FaultNMEAGarbage, Probability: 0.3},
						{Kind: FaultOverheat, At: Duration(time.Hour)},
					},
				}},
		},
	}
	man, stopSim := runSim(t, cfg)
	if len(man.Trucks) != 2 || man.Trucks[0].ID != "truck-01" || man.Trucks[1].Serial == "" || man.Trucks[1].Probe == "" || man.Trucks[0].Probe != "" {
		t.Fatalf("manifest %+v", man)
	}
	if _, err := os.Stat(cfg.ManifestPath); err != nil {
		t.Fatalf("manifest file: %v", err)
	}
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	got := &received{m: map[key][]float64{}, times: map[key][]int64{}}
	clocks := map[string]*sensors.Clock{}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	for _, tr := range man.Trucks {
		// Wired as a gateway does: one GNSS-corrected clock per truck.
		clock := sensors.NewClock(sensors.ClockConfig{})
		clocks[tr.ID] = clock
		can := &sensors.CANSource{Addr: tr.CAN, Decoder: dec, MinBackoff: 10 * time.Millisecond, Now: clock.Now, Flags: clock.Flags}
		gps := &sensors.NMEASource{Port: tr.Serial, ReadTimeout: 50 * time.Millisecond, Now: clock.Now, Flags: clock.Flags, OnFix: clock.OnFix}
		g.Go(func() error { return can.Run(gctx, got.emitter(tr.ID)) })
		g.Go(func() error { return gps.Run(gctx, got.emitter(tr.ID)) })
		if tr.Probe != "" {
			probe := &sensors.ProbeSource{Port: tr.Probe, ReadTimeout: 50 * time.Millisecond}
			g.Go(func() error { return probe.Run(gctx, got.emitter(tr.ID)) })
		}
	}
	// Run until every truck sent each 1 Hz signal at least twice.
	waitUntil(t, func() bool {
		for _, tr := range man.Trucks {
			for _, s := range []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp, sensors.VPLatitude, sensors.GNSSLatitude, sensors.GNSSSatellites} {
				if got.count(key{tr.ID, s}) < 2 {
					return false
				}
			}
		}
		return true
	})
	if err := stopSim(); err != nil {
		t.Fatalf("sim Run: %v", err)
	}
	truth := truthBySignal(t, cfg.TruthPath)
	// The sim closed its side; let the sources read what is in flight.
	waitUntil(t, func() bool {
		for k, v := range truth {
			if got.count(k) < len(v) {
				return false
			}
		}
		return true
	})
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := dec.Stats(); s.WrongDLC+s.UnknownPGN+s.NotExtended == 0 {
		t.Errorf("can_garbage produced no bad frames: %+v", s)
	}
	if s := clocks["truck-01"].Stats(); s.Corrections != 0 || !s.Trusted || s.Unconfirmed == 0 {
		t.Errorf("truck-01 clock after a GNSS time jump: %+v", s)
	}
	if s := clocks["truck-02"].Stats(); s.Corrections != 0 || !s.Trusted || s.Unconfirmed != 0 {
		t.Errorf("truck-02 clock: %+v", s)
	}
	for k, ts := range got.times {
		for i := 1; i < len(ts); i++ {
			if ts[i] < ts[i-1] {
				t.Fatalf("%s %s: reading times go backwards: %d then %d", k.truck, k.signal, ts[i-1], ts[i])
			}
		}
	}
	ff, err := os.Open(cfg.FaultsPath)
	if err != nil {
		t.Fatal(err)
	}
	windows, err := ReadFaults(ff)
	ff.Close()
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[FaultKind]FaultWindow{}
	for _, w := range windows {
		byKind[w.Kind] = w
	}
	if len(windows) != 4 || byKind[FaultClockJump].Truck != "truck-01" || byKind[FaultClockJump].Signal != "" ||
		byKind[FaultOverheat].Truck != "truck-02" || !byKind[FaultOverheat].Hazard || byKind[FaultOverheat].End != 0 ||
		byKind[FaultOverheat].Signal != "coolant_temp" || byKind[FaultCANGarbage].Hazard {
		t.Errorf("fault windows %+v", windows)
	}
	// The overheat starts an hour after truck-02 started.
	if first := truthTime(t, cfg.TruthPath, "truck-02"); byKind[FaultOverheat].Start-first < int64(59*time.Minute) || byKind[FaultOverheat].Start-first > int64(61*time.Minute) {
		t.Errorf("overheat window starts %v after the truck's first value", time.Duration(byKind[FaultOverheat].Start-first))
	}

	signals := map[sensors.Signal]bool{}
	for k, want := range truth {
		signals[k.signal] = true
		have := got.m[k]
		if len(have) != len(want) {
			t.Errorf("%s %s: received %d values, truth has %d", k.truck, k.signal, len(have), len(want))
			continue
		}
		for i := range want {
			if have[i] != want[i] {
				t.Errorf("%s %s value %d: received %v, truth %v", k.truck, k.signal, i, have[i], want[i])
				break
			}
		}
	}
	for k := range got.m {
		if _, ok := truth[k]; !ok {
			t.Errorf("%s %s received but not in truth", k.truck, k.signal)
		}
	}
	for _, s := range []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp, sensors.WheelSpeed, sensors.VPLatitude,
		sensors.VPLongitude, sensors.GNSSLatitude, sensors.GNSSLongitude, sensors.GNSSSpeed, sensors.GNSSFixQuality, sensors.GNSSSatellites} {
		if !signals[s] {
			t.Errorf("no %s in truth", s)
		}
	}
	t.Run("candump replays to the truth", func(t *testing.T) {
		checkCandumpReplay(t, cfg.CandumpPath, cfg.TruthPath, man)
	})
	// Warm trucks run in the thermostat band.
	for _, v := range truth[key{"truck-01", sensors.CoolantTemp}] {
		if v < 80 || v > 100 {
			t.Errorf("warm coolant %v outside 80..100", v)
		}
	}
}

// truthTime returns the time of the truck's first truth record.
func truthTime(t *testing.T, path, truck string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Truck == truck {
			return r.Time
		}
	}
	t.Fatalf("no truth for %s", truck)
	return 0
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoClientNoTruth(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Trucks: 1, TruthPath: filepath.Join(dir, "truth.csv"), Tick: 10 * time.Millisecond}
	_, stop := runSim(t, cfg)
	time.Sleep(150 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(truthBySignal(t, cfg.TruthPath)); n != 0 {
		t.Fatalf("truth has %d series although no client connected", n)
	}
}

// checkCandumpReplay replays the sim's candump log per truck and checks
// that it gives exactly the CAN readings of the truth file, with the
// truth's times at the log's microsecond resolution.
func checkCandumpReplay(t *testing.T, dumpPath, truthPath string, man Manifest) {
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadTruth(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range man.Trucks {
		var want []sensors.Reading
		for _, r := range recs {
			fromSerial := isGNSS(r.Signal) || (tr.Probe != "" && r.Signal == sensors.CargoTemp)
			if r.Truck == tr.ID && !fromSerial {
				want = append(want, sensors.Reading{Time: r.Time / 1000 * 1000, Value: r.Value, Signal: r.Signal})
			}
		}
		log, err := os.Open(dumpPath)
		if err != nil {
			t.Fatal(err)
		}
		var got []sensors.Reading
		rp := &sensors.CandumpReplay{Log: log, Decoder: dec, Interface: tr.ID}
		err = rp.Run(context.Background(), func(rs []sensors.Reading) { got = append(got, rs...) })
		log.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: replay gave %d readings, truth has %d", tr.ID, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s reading %d: replay %+v, truth %+v", tr.ID, i, got[i], want[i])
			}
		}
		if s := rp.Stats(); s.Malformed != 0 || s.Skipped == 0 {
			t.Errorf("%s: replay stats %+v", tr.ID, s)
		}
	}
}

func isGNSS(s sensors.Signal) bool {
	switch s {
	case sensors.GNSSLatitude, sensors.GNSSLongitude, sensors.GNSSSpeed, sensors.GNSSFixQuality, sensors.GNSSSatellites:
		return true
	}
	return false
}

// TestSerialSurvivesGatewayReopen closes and reopens the GNSS terminal the
// way a restarting gateway does: the second reader still gets sentences,
// including those written while nobody had the port open.
func TestSerialSurvivesGatewayReopen(t *testing.T) {
	warm := true
	man, stopSim := runSim(t, Config{Trucks: 1, Scenario: Scenario{Default: TruckScenario{Warm: &warm}}})
	defer stopSim()
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	can := &sensors.CANSource{Addr: man.Trucks[0].CAN, Decoder: dec}
	canDone := make(chan error, 1)
	go func() { canDone <- can.Run(ctx, func([]sensors.Reading) {}) }()

	read := func(wait func(*sensors.NMEASource) bool) {
		src := &sensors.NMEASource{Port: man.Trucks[0].Serial, ReadTimeout: 20 * time.Millisecond}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- src.Run(rctx, func([]sensors.Reading) {}) }()
		waitUntil(t, func() bool { return wait(src) })
		rcancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := src.Stats(); s.Garbage+s.Checksum+s.Malformed != 0 {
			t.Fatalf("bad lines after reopen: %+v", s)
		}
	}
	read(func(s *sensors.NMEASource) bool { return s.Stats().Used >= 2 })
	time.Sleep(1200 * time.Millisecond) // the sim writes while the port is closed
	read(func(s *sensors.NMEASource) bool { return s.Stats().Used >= 2 })
	cancel()
	<-canDone
	if err := stopSim(); err != nil {
		t.Fatal(err)
	}
}
