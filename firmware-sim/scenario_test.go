package firmwaresim

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

func TestParseScenarioExample(t *testing.T) {
	b, err := os.ReadFile("testdata/scenario.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseScenario(b)
	if err != nil {
		t.Fatal(err)
	}
	f := s.For("truck-01").Faults
	if s.Seed != 7 || len(f) != 1 || f[0].Kind != FaultOverheat || time.Duration(f[0].At) != time.Minute || f[0].Peak != 115 {
		t.Fatalf("parsed %+v", s)
	}
	if w := s.For("truck-03").Warm; w == nil || *w {
		t.Fatalf("truck-03 warm = %v, want false", w)
	}
	if got := s.physicsStart(time.Now()); got.Hour() != 10 || got.Minute() != 0 {
		t.Fatalf("time_of_day 10:00 gave physics start %v", got)
	}
	if w := s.For("truck-02").Warm; w == nil || !*w {
		t.Fatalf("truck-02 should get the default (warm)")
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"unknown field", `{"trucks":{"truck-01":{"fault":[]}}}`, "unknown field"},
		{"unknown kind", `{"trucks":{"truck-01":{"faults":[{"kind":"meltdown","at":"1s"}]}}}`, "unknown kind"},
		{"bad duration", `{"default":{"faults":[{"kind":"overheat","at":"soon"}]}}`, "duration"},
		{"negative", `{"default":{"faults":[{"kind":"overheat","at":-5}]}}`, "negative"},
		{"bad time of day", `{"time_of_day":"25:00"}`, "time_of_day"},
		{"bad signal", `{"default":{"faults":[{"kind":"sensor_stuck","signal":"oil"}]}}`, "unknown signal"},
		{"bad mode", `{"default":{"faults":[{"kind":"sensor_dropout","mode":"gone"}]}}`, "mode"},
		{"bad probability", `{"default":{"faults":[{"kind":"can_garbage","probability":2}]}}`, "probability"},
		{"one-point route", `{"default":{"route":[[51,4]]}}`, "two points"},
		{"bad probe", `{"default":{"cargo_probe":"wifi"}}`, "cargo_probe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAddFaultFlag(t *testing.T) {
	var s Scenario
	if err := s.AddFaultFlag(FaultOverheat, "truck-02@90s"); err != nil {
		t.Fatal(err)
	}
	if f := s.For("truck-02").Faults; len(f) != 1 || time.Duration(f[0].At) != 90*time.Second {
		t.Fatalf("faults %+v", f)
	}
	for _, bad := range []string{"truck-02", "@5s", "truck-02@later"} {
		if err := s.AddFaultFlag(FaultOverheat, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// simStart is a fixed start time (10:00 UTC) so physics tests do not
// depend on the time of day they run.
var simStart = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// simulateSignal steps a lone truck for d and returns the value of sig its
// sensor reports each second.
func simulateSignal(seed int64, ts TruckScenario, d time.Duration, sig sensors.Signal) []float64 {
	warm := ts.Warm != nil && *ts.Warm
	tr := &truck{scen: ts, phys: newPhysics(rand.New(rand.NewPCG(uint64(seed), 0)), 0, warm, simStart, ts.Route, ts.Ambient), faults: newFaultStates(ts.Faults)}
	var out []float64
	for k := time.Duration(0); k < d; k += DefaultTick {
		tr.applyPhysicalFaults(k)
		tr.phys.step(DefaultTick)
		e := tr.effectsAt(k)
		if k%time.Second == 0 {
			out = append(out, tr.sensorValue(sig, k, &e))
		}
	}
	return out
}

func simulate(seed int64, ts TruckScenario, d time.Duration) []float64 {
	return simulateSignal(seed, ts, d, sensors.CoolantTemp)
}

func TestOverheatRampsCoolant(t *testing.T) {
	warm := true
	ts := TruckScenario{Warm: &warm, Faults: []Fault{{Kind: FaultOverheat, At: Duration(60 * time.Second), Ramp: Duration(30 * time.Second)}}}
	v := simulate(1, ts, 2*time.Minute)
	for i := 0; i < 60; i++ {
		if v[i] < 84 || v[i] > 96 {
			t.Fatalf("second %d: coolant %.1f outside the normal band before the fault", i, v[i])
		}
	}
	for i := 90; i < 120; i++ {
		if v[i] < 112 || v[i] > 118 {
			t.Fatalf("second %d: coolant %.1f, want about 115 after the ramp", i, v[i])
		}
	}
	if !(v[75] > v[62] && v[75] < v[90]) {
		t.Fatalf("no gradual ramp: %.1f %.1f %.1f", v[62], v[75], v[90])
	}
}

func TestColdEngineWarmsUp(t *testing.T) {
	cold := false
	v := simulate(3, TruckScenario{Warm: &cold}, 20*time.Minute)
	if v[0] > 30 {
		t.Fatalf("cold start at %.1f", v[0])
	}
	if last := v[len(v)-1]; last < 84 || last > 96 {
		t.Fatalf("after 20 min coolant %.1f, want the thermostat band", last)
	}
}

func TestDeterministicForSeed(t *testing.T) {
	warm := true
	ts := TruckScenario{Warm: &warm}
	a, b, c := simulate(5, ts, time.Minute), simulate(5, ts, time.Minute), simulate(6, ts, time.Minute)
	same := func(x, y []float64) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed gave different values")
	}
	if same(a, c) {
		t.Fatal("different seeds gave the same values")
	}
}
