package firmwaresim

import (
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenScenario is the golden truck's scenario and start: a minute with
// an overheat, a glitch, CAN garbage and a dropout.
func goldenScenario() (Scenario, time.Time) {
	warm := true
	sc := Scenario{Seed: 42, TimeOfDay: "10:00", Default: TruckScenario{Warm: &warm, Faults: []Fault{
		{Kind: FaultOverheat, At: Duration(20 * time.Second), Ramp: Duration(20 * time.Second)},
		{Kind: FaultGlitch, Signal: "cargo_temp", At: Duration(10 * time.Second)},
		{Kind: FaultCANGarbage, At: Duration(30 * time.Second), Duration: Duration(10 * time.Second), Probability: 0.2},
		{Kind: FaultDropout, Signal: "wheel_speed", At: Duration(45 * time.Second), Duration: Duration(5 * time.Second), Mode: "error"},
	}}}
	return sc, time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC)
}

// TestGoldenTruck drives one truck for a minute on a fixed clock with a
// fixed seed and compares its candump log and truth with the golden files,
// so any change to physics, faults or encoding shows up in review.
// Regenerate with: go test ./firmware-sim -run TestGoldenTruck -update
func TestGoldenTruck(t *testing.T) {
	sc, start := goldenScenario()
	s, err := New(Config{Scenario: sc, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if s.truth, err = createTruth(filepath.Join(dir, "truth.csv")); err != nil {
		t.Fatal(err)
	}
	if s.dump, err = createLineFile(filepath.Join(dir, "candump.log"), "candump"); err != nil {
		t.Fatal(err)
	}
	client, sink := net.Pipe()
	go io.Copy(io.Discard, sink)
	defer sink.Close()
	ts := sc.For("truck-01")
	tr := &truck{
		id: "truck-01", iface: "truck-01", scen: ts, started: true, clients: []net.Conn{client},
		phys:   newPhysics(rand.New(rand.NewPCG(uint64(sc.Seed), 0)), 0, true, sc.physicsStart(start), ts.Route, ts.Ambient),
		faults: newFaultStates(ts.Faults),
	}
	for i := 0; i < 600; i++ {
		s.step(tr, start.Add(time.Duration(i)*DefaultTick))
	}
	client.Close()
	if err := s.truth.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.dump.close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"truth.csv", "candump.log"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", "truck-01."+name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s (review the change, then regenerate with -update)", name, golden)
		}
	}
}

// TestGoldenScenarioFile: testdata/golden/scenario.json is the golden
// truck's scenario, so the command line (firmware-sim -offline) can be
// checked against the golden files too.
func TestGoldenScenarioFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseScenario(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := goldenScenario()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scenario.json parses to\n%+v\nwant\n%+v", got, want)
	}
}

// runLive steps truck-01 of sc through the live path (a connected client)
// for ticks from start on a fixed clock and returns the truth and candump
// files it wrote.
func runLive(t *testing.T, sc Scenario, start time.Time, ticks int) map[string][]byte {
	t.Helper()
	s, err := New(Config{Scenario: sc, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if s.truth, err = createTruth(filepath.Join(dir, "truth.csv")); err != nil {
		t.Fatal(err)
	}
	if s.dump, err = createLineFile(filepath.Join(dir, "candump.log"), "candump"); err != nil {
		t.Fatal(err)
	}
	client, sink := net.Pipe()
	go io.Copy(io.Discard, sink)
	defer sink.Close()
	ts := sc.For("truck-01")
	warm := ts.Warm != nil && *ts.Warm
	tr := &truck{
		id: "truck-01", iface: "truck-01", scen: ts, started: true, clients: []net.Conn{client},
		phys:   newTruckPhysics(rand.New(rand.NewPCG(uint64(sc.Seed), 0)), 0, warm, sc.physicsStart(start), ts),
		faults: newFaultStates(ts.Faults),
	}
	for i := 0; i < ticks; i++ {
		s.step(tr, start.Add(time.Duration(i)*DefaultTick))
	}
	client.Close()
	if err := s.truth.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.dump.close(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, name := range []string{"truth.csv", "candump.log"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}
