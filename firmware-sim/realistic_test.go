package firmwaresim

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s: %.2f, want %.2f ± %.2f", what, got, want, tol)
	} else {
		t.Logf("%s: %.2f (want %.2f ± %.2f)", what, got, want, tol)
	}
}

// TestTruckWarmUpMatchesKIT: realistic trucks from cold on generated tours
// reach 80 °C in the KIT car's time scaled by truckTimeScale (within
// 25 %), on warm days (20 °C) and cold ones (0 °C), within the 15-30 min a
// heavy diesel needs on a warm day, with the KIT warm-up's shape (40 and
// 60 °C reached at the same share of the time, within 0.12).
func TestTruckWarmUpMatchesKIT(t *testing.T) {
	cold := false
	for _, c := range []struct {
		ambient, kit float64
	}{{20, kitWarmupWarmDay}, {0, kitWarmupColdDay}} {
		var t80s, s40, s60 []float64
		for seed := int64(1); seed <= 12; seed++ {
			amb := c.ambient
			var ts, cs []float64
			truckRun(seed, TruckScenario{Warm: &cold, Ambient: &amb}, 80*time.Minute, func(s int, tr *truck, v float64) {
				ts, cs = append(ts, float64(s)), append(cs, v)
			})
			a, b, d := warmup(ts, cs)
			if d < 0 {
				t.Errorf("ambient %v seed %d: never reached 80 °C in 80 min", c.ambient, seed)
				continue
			}
			t80s, s40, s60 = append(t80s, d/60), append(s40, a/d), append(s60, b/d)
		}
		want := truckTimeScale * c.kit
		within(t, "minutes to 80 °C at "+ftoa(c.ambient)+" °C", median(t80s), want, 0.25*want)
		if c.ambient == 20 && (median(t80s) < 15 || median(t80s) > 30) {
			t.Errorf("warm-day warm-up %.1f min, want 15-30", median(t80s))
		}
		within(t, "share of the warm-up at 40 °C", median(s40), kitWarmup40Share, 0.12)
		within(t, "share of the warm-up at 60 °C", median(s60), kitWarmup60Share, 0.12)
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestTruckFanCycleMatchesCSS: idling on a hot day, the radiator fan
// cycles the coolant in the sawtooth of the recorded car: amplitude within
// 1.5 °C and period within 30 % of the CSS drives' medians, measured the
// same way on 1 °C readings.
func TestTruckFanCycleMatchesCSS(t *testing.T) {
	warm := true
	var amps, periods []float64
	for seed := int64(1); seed <= 4; seed++ {
		amb := 36 + 2*float64(seed)
		var ts, cs []float64
		ev := []Event{{Kind: EventIdle, At: Duration(5 * time.Minute), Duration: Duration(30 * time.Minute)}}
		truckRun(seed, TruckScenario{Warm: &warm, Ambient: &amb, Stops: "none", Events: ev}, 35*time.Minute, func(s int, tr *truck, v float64) {
			if s > 8*60 {
				ts, cs = append(ts, float64(s)), append(cs, v)
			}
		})
		a, p := fanCycles(ts, cs)
		if len(a) < 5 {
			t.Errorf("seed %d at %v °C: %d fan cycles in 27 min of idling", seed, amb, len(a))
		}
		amps, periods = append(amps, a...), append(periods, p...)
	}
	within(t, "fan-cycle amplitude °C", median(amps), cssFanAmplitude, 1.5)
	within(t, "fan-cycle period s", median(periods), cssFanPeriodS, 0.3*cssFanPeriodS)
}

// TestTruckStopCoolDownAndHeatSoak: the engine stopped with the key on
// for 30-80 s after driving (the KIT car's start-stop: the heater's
// electric pump keeps drawing from the still coolant): on warm days the
// coolant does not move, on cold days it falls, each median within 1 °C
// of KIT's, measured the same way on 1 °C readings. After a hot stop with
// the ignition off the coolant rises (heat soak: 2-8 °C after a loaded
// climb) within 10 min, then cools towards ambient with a time constant
// of 2-4.5 h.
func TestTruckStopCoolDownAndHeatSoak(t *testing.T) {
	warm := true
	for _, c := range []struct{ ambient, kit float64 }{{-8, kitStopFallCold}, {-3, kitStopFallCold}, {15, kitStopFallWarm}, {25, kitStopFallWarm}} {
		var falls []float64
		for seed := int64(1); seed <= 8; seed++ {
			a := c.ambient
			first, low := math.NaN(), math.Inf(1)
			ev := []Event{{Kind: EventEngineOff, KeyOn: true, At: Duration(40 * time.Minute), Duration: Duration(time.Duration(30+7*seed) * time.Second)}}
			truckRun(seed, TruckScenario{Warm: &warm, Ambient: &a, Events: ev}, 42*time.Minute, func(s int, tr *truck, v float64) {
				if !tr.phys.truck.engineOn {
					if math.IsNaN(first) {
						first = v
					}
					low = math.Min(low, v)
				}
			})
			falls = append(falls, first-low)
		}
		within(t, "fall during a 30-80 s key-on stop at "+ftoa(c.ambient)+" °C", median(falls), c.kit, 1)
	}
	for _, amb := range []float64{5, 25} {
		a := amb
		var atStop, peak, after3h float64
		// A hot stop: at the top of a loaded climb.
		one := 1.0
		ev := []Event{{Kind: EventClimb, At: Duration(30 * time.Minute), Duration: Duration(10 * time.Minute), Grade: 4},
			{Kind: EventEngineOff, At: Duration(40 * time.Minute), Duration: Duration(4 * time.Hour)}}
		truckRun(3, TruckScenario{Warm: &warm, Ambient: &a, Stops: "none", Payload: &one, Events: ev}, 4*time.Hour, func(s int, tr *truck, v float64) {
			c := tr.phys.engine
			switch {
			case tr.phys.truck.engineOn:
				atStop = c
			case s < 40*60+600:
				peak = math.Max(peak, c)
			case s == 40*60+3*3600+60:
				after3h = c
			}
		})
		if rise := peak - atStop; rise < 2 || rise > 8 {
			t.Errorf("ambient %v: heat soak rose %.1f °C (%.1f -> %.1f), want 2-8", amb, rise, atStop, peak)
		}
		ambNow := amb // the diurnal swing moves it; tau from the excess over the daily mean
		tau := 3 / math.Log((peak-ambNow)/(after3h-ambNow))
		if tau < 2 || tau > 4.5 {
			t.Errorf("ambient %v: cooled %.1f -> %.1f in 3 h, time constant %.1f h, want 2-4.5", amb, peak, after3h, tau)
		}
		t.Logf("ambient %v: stop at %.1f, soak peak %.1f, after 3 h %.1f (tau %.1f h)", amb, atStop, peak, after3h, tau)
	}
}

// offlineRun simulates one truck with sc for d and returns its samples'
// readings by signal (times relative to the start, s) and the samples.
func offlineRun(t *testing.T, sc Scenario, d time.Duration, faultsPath string) (map[sensors.Signal][]float64, []Sample) {
	t.Helper()
	s, err := New(Config{Scenario: sc, NoSerial: true, FaultsPath: faultsPath})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC)
	times := map[sensors.Signal][]float64{}
	var smps []Sample
	_, err = s.Simulate(start, d, func(smp *Sample) {
		for _, r := range smp.Readings {
			times[r.Signal] = append(times[r.Signal], time.Duration(r.Time-start.UnixNano()).Seconds())
		}
		c := *smp
		c.Readings = nil
		smps = append(smps, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	return times, smps
}

// TestIgnitionOffQuietsTheECU: with the ignition off the engine ECU
// sends 0 rpm for a few seconds, then EEC1, ET1, AMB and CCVS stop; the
// cargo probe and the position keep coming; after the restart all are
// back. The new signals are on the bus only for the realistic model.
func TestIgnitionOffQuietsTheECU(t *testing.T) {
	warm := true
	ev := []Event{{Kind: EventEngineOff, At: Duration(60 * time.Second), Duration: Duration(2 * time.Minute)}}
	sc := Scenario{Seed: 3, Default: TruckScenario{Model: ModelTruck, Warm: &warm, Stops: "none", Events: ev}}
	got, smps := offlineRun(t, sc, 5*time.Minute, "")
	var off, on float64 = -1, -1 // engine stop and restart, s
	for i, smp := range smps {
		tt := float64(i) * DefaultTick.Seconds()
		if !smp.Running && off < 0 {
			off = tt
		}
		if smp.Running && off >= 0 && on < 0 {
			on = tt
		}
	}
	if off < 60 || off > 90 || on < off+100 {
		t.Fatalf("engine stopped at %v s, restarted at %v s; want a stop soon after 60 s for 2 min", off, on)
	}
	in := func(sig sensors.Signal, from, to float64) int {
		n := 0
		for _, x := range got[sig] {
			if x >= from && x < to {
				n++
			}
		}
		return n
	}
	for _, sig := range []sensors.Signal{sensors.EngineSpeed, sensors.CoolantTemp, sensors.OilTemp, sensors.FuelTemp, sensors.AmbientTemp, sensors.WheelSpeed} {
		if n := in(sig, off+ecuLinger+0.5, on); n != 0 {
			t.Errorf("%s: %d readings while the ignition was off", sig, n)
		}
		if in(sig, 0, off) == 0 || in(sig, on+1, 300) == 0 {
			t.Errorf("%s: missing before the stop or after the restart", sig)
		}
	}
	if n := in(sensors.EngineSpeed, off, off+ecuLinger+0.5); n < 20 {
		t.Errorf("%d engine-speed frames (0 rpm) in the %v s after the stop, want about 10 a second", n, ecuLinger)
	}
	for _, sig := range []sensors.Signal{sensors.CargoTemp, sensors.VPLatitude} {
		if n := in(sig, off+5, on); n < int(on-off-5)-1 {
			t.Errorf("%s: %d readings in %.0f s with the ignition off, want one a second", sig, n, on-off-5)
		}
	}
	// With the key on, the ECU keeps sending: 0 rpm and the temperatures.
	ev[0].KeyOn = true
	keyOn, _ := offlineRun(t, Scenario{Seed: 3, Default: TruckScenario{Model: ModelTruck, Warm: &warm, Stops: "none", Events: ev}}, 5*time.Minute, "")
	zero := 0
	for _, sig := range []sensors.Signal{sensors.EngineSpeed, sensors.CoolantTemp, sensors.AmbientTemp} {
		n := 0
		for _, x := range keyOn[sig] {
			if x >= off+10 && x < on-10 {
				n++
			}
		}
		if n < int(on-off-20)-1 {
			t.Errorf("key on: %s sent %d times in %.0f s of the stop", sig, n, on-off-20)
		}
		if sig == sensors.EngineSpeed {
			zero = n
		}
	}
	if zero == 0 {
		t.Error("key on: no engine speed during the stop")
	}
	// The original model sends none of the new signals.
	old, _ := offlineRun(t, Scenario{Seed: 3, Default: TruckScenario{Warm: &warm}}, 10*time.Second, "")
	for _, sig := range []sensors.Signal{sensors.EngineSpeed, sensors.OilTemp, sensors.FuelTemp, sensors.AmbientTemp} {
		if len(old[sig]) != 0 || len(got[sig]) == 0 {
			t.Errorf("%s: %d readings from the original model, %d from the realistic one", sig, len(old[sig]), len(got[sig]))
		}
	}
}

// TestOverheatRampsFromCurrent: in the realistic model an overheat right
// after a cold start ramps from the coolant's temperature, not from the
// thermostat set point: no step.
func TestOverheatRampsFromCurrent(t *testing.T) {
	cold := false
	amb := 10.0
	f := []Fault{{Kind: FaultOverheat, At: Duration(3 * time.Minute), Ramp: Duration(10 * time.Minute), Peak: 115}}
	var before, prev, maxStep float64
	var end float64
	truckRun(1, TruckScenario{Warm: &cold, Ambient: &amb, Stops: "none", Faults: f}, 14*time.Minute, func(s int, tr *truck, v float64) {
		c := tr.phys.engine
		switch {
		case s == 179:
			before = c
		case s > 180 && s <= 780:
			maxStep = math.Max(maxStep, c-prev)
		case s == 800:
			end = c
		}
		prev = c
	})
	if before > 50 {
		t.Fatalf("coolant %.1f 3 min after a cold start at 10 °C", before)
	}
	if maxStep > 0.5 {
		t.Errorf("overheat ramp moved the coolant up to %.2f °C in a second, want a ramp ((115-%.0f)/600 s)", maxStep, before)
	}
	if end < 114 {
		t.Errorf("coolant %.1f at the end of the ramp, want 115", end)
	}
}

// TestRealisticFaultsOverheat: a stuck thermostat, a dead fan while
// idling in the heat, and coolant loss on a loaded climb each take the
// true coolant past the hazard limit; the same trucks without the fault
// stay below 100 °C.
func TestRealisticFaultsOverheat(t *testing.T) {
	warm := true
	one := 1.0
	for _, c := range []struct {
		name    string
		ambient float64
		events  []Event
		fault   Fault
	}{
		{"thermostat stuck", 20, nil, Fault{Kind: FaultThermostatStuck, At: Duration(10 * time.Minute)}},
		{"fan failure idling in heat", 40, []Event{{Kind: EventIdle, At: Duration(10 * time.Minute), Duration: Duration(time.Hour)}}, Fault{Kind: FaultFanFailure, At: Duration(10 * time.Minute)}},
		{"coolant loss on a climb", 25, []Event{{Kind: EventClimb, At: Duration(10 * time.Minute), Duration: Duration(30 * time.Minute), Grade: 6}}, Fault{Kind: FaultCoolantLoss, At: Duration(10 * time.Minute)}},
	} {
		for _, faulty := range []bool{false, true} {
			ts := TruckScenario{Warm: &warm, Ambient: &c.ambient, Stops: "none", Payload: &one, Events: c.events}
			if faulty {
				ts.Faults = []Fault{c.fault}
			}
			peak, at := 0.0, -1
			truckRun(2, ts, 40*time.Minute, func(s int, tr *truck, v float64) {
				peak = math.Max(peak, tr.phys.engine)
				if at < 0 && tr.phys.engine > HazardCoolant {
					at = s
				}
			})
			switch {
			case faulty && at < 0:
				t.Errorf("%s: peak %.1f °C, never past %v in 30 min", c.name, peak, HazardCoolant)
			case !faulty && peak >= 100:
				t.Errorf("%s without the fault: peak %.1f °C", c.name, peak)
			default:
				t.Logf("%s (fault %v): peak %.1f °C, past the limit %d s after the fault", c.name, faulty, peak, at-600)
			}
		}
	}
}

// TestHazardWindows: the faults file of a realistic truck records when a
// hazard was physically present, as the samples report it.
func TestHazardWindows(t *testing.T) {
	warm := true
	path := filepath.Join(t.TempDir(), "faults.csv")
	sc := Scenario{Seed: 5, Default: TruckScenario{Model: ModelTruck, Warm: &warm, Stops: "none", Faults: []Fault{
		{Kind: FaultThermostatStuck, At: Duration(2 * time.Minute)},
		{Kind: FaultCargoHeating, At: Duration(5 * time.Minute), Duration: Duration(3 * time.Minute), Rate: 1},
	}}}
	_, smps := offlineRun(t, sc, 40*time.Minute, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ws, err := ReadFaults(f)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	want := map[string]FaultWindow{}
	var open [2]int64
	for i, smp := range smps {
		for j, on := range [2]bool{smp.CoolantHazard, smp.CargoHazard} {
			tt := start + int64(i)*int64(DefaultTick)
			sig := []string{"coolant_temp", "cargo_temp"}[j]
			switch {
			case on && open[j] == 0:
				open[j] = tt
			case !on && open[j] != 0:
				want[sig] = FaultWindow{Truck: "truck-01", Kind: HazardPresent, Signal: sig, Start: open[j], End: tt, Hazard: true}
				open[j] = 0
			}
		}
	}
	if open[0] != 0 {
		want["coolant_temp"] = FaultWindow{Truck: "truck-01", Kind: HazardPresent, Signal: "coolant_temp", Start: open[0], Hazard: true}
	}
	got := map[string]FaultWindow{}
	for _, w := range ws {
		if w.Kind == HazardPresent {
			got[w.Signal] = w
		}
	}
	if len(got) != 2 || got["coolant_temp"] != want["coolant_temp"] || got["cargo_temp"] != want["cargo_temp"] {
		t.Fatalf("hazard windows %+v, want %+v", got, want)
	}
	if c := got["cargo_temp"]; c.Start != start+int64(5*time.Minute) || c.End != start+int64(8*time.Minute) {
		t.Errorf("cargo hazard %v..%v, want the fire's 5..8 min", time.Duration(c.Start-start), time.Duration(c.End-start))
	}
	if c := got["coolant_temp"]; c.Start < start+int64(2*time.Minute) || c.End != 0 {
		t.Errorf("coolant hazard from %v to %d, want after the thermostat stuck at 2 min, to the end", time.Duration(c.Start-start), c.End)
	}
}

// TestLoadingWarmProduct: loading mixes the tank towards the product's
// temperature, with the engine driving the pump.
func TestLoadingWarmProduct(t *testing.T) {
	warm := true
	amb, product := 10.0, 30.0
	ev := []Event{{Kind: EventLoad, At: Duration(5 * time.Minute), Duration: Duration(30 * time.Minute), ProductTemp: &product}}
	var before, after, rpm float64
	truckRun(4, TruckScenario{Warm: &warm, Ambient: &amb, Stops: "none", Events: ev}, 40*time.Minute, func(s int, tr *truck, v float64) {
		switch s {
		case 4 * 60:
			before = tr.phys.cargo
		case 20 * 60:
			rpm = tr.phys.truck.rpm
		case 36 * 60:
			after = tr.phys.cargo
		}
	})
	if math.Abs(before-amb) > 6 || math.Abs(after-product) > 2 || rpm < 900 {
		t.Errorf("cargo %.1f before loading, %.1f after (product %.0f); engine %.0f rpm while pumping", before, after, product, rpm)
	}
}

func TestParseScenarioModelErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"bad model", `{"default":{"model":"tank"}}`, "model"},
		{"field needs model", `{"default":{"payload":0.5}}`, `payload needs "model": "truck"`},
		{"events need model", `{"default":{"events":[{"kind":"idle","at":"1m","duration":"5m"}]}}`, "events needs"},
		{"kind needs model", `{"default":{"faults":[{"kind":"thermostat_stuck"}]}}`, "thermostat_stuck needs"},
		{"ambient", `{"default":{"ambient":70}}`, "ambient 70 outside"},
		{"payload", `{"default":{"model":"truck","payload":2}}`, "payload 2 outside"},
		{"swing", `{"default":{"model":"truck","ambient_swing":-1}}`, "ambient_swing"},
		{"stops", `{"default":{"model":"truck","stops":"often"}}`, "stops"},
		{"event kind", `{"default":{"model":"truck","events":[{"kind":"nap","at":"1m","duration":"5m"}]}}`, `unknown kind "nap"`},
		{"event duration", `{"default":{"model":"truck","events":[{"kind":"idle","at":"1m"}]}}`, "duration > 0"},
		{"grade", `{"default":{"model":"truck","events":[{"kind":"climb","at":"1m","duration":"5m","grade":40}]}}`, "grade 40"},
		{"product", `{"default":{"model":"truck","events":[{"kind":"load","at":"1m","duration":"5m","product_temp":99}]}}`, "product_temp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	ok := `{"default":{"model":"truck","ambient":-25,"ambient_swing":6,"sun_load":8,"payload":1,"hills":3,"stops":"none",
		"events":[{"kind":"load","at":"10m","duration":"30m","product_temp":28},{"kind":"climb","at":"1h","duration":"10m","grade":6}],
		"faults":[{"kind":"thermostat_stuck","at":"2h"}]}}`
	if _, err := ParseScenario([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	var s Scenario
	if err := s.AddFaultFlag(FaultOverheat, "truck-09@10s"); err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateTrucks(DefaultIDPrefix, 1); err == nil || !strings.Contains(err.Error(), `"truck-09" does not exist`) {
		t.Fatalf("ValidateTrucks: %v", err)
	}
	if _, err := New(Config{Trucks: 1, Scenario: s}); err == nil {
		t.Fatal("New accepted a fault for truck-09 of 1")
	}
}

// TestRealisticLiveMatchesOffline: for the realistic model too, an offline
// run writes byte for byte what the live path (a truck with a client)
// writes, engine stop and faults included.
func TestRealisticLiveMatchesOffline(t *testing.T) {
	warm := true
	sc := Scenario{Seed: 9, TimeOfDay: "10:00", Default: TruckScenario{Model: ModelTruck, Warm: &warm,
		Events: []Event{{Kind: EventEngineOff, At: Duration(20 * time.Second), Duration: Duration(30 * time.Second)}},
		Faults: []Fault{{Kind: FaultGlitch, Signal: "coolant_temp", At: Duration(10 * time.Second)}, {Kind: FaultThermostatStuck, At: Duration(5 * time.Second)}}}}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC)
	live := runLive(t, sc, start, 900)
	dir := t.TempDir()
	s, err := New(Config{Scenario: sc, NoSerial: true, TruthPath: filepath.Join(dir, "truth.csv"), CandumpPath: filepath.Join(dir, "candump.log")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Simulate(start, 90*time.Second, func(*Sample) {}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"truth.csv", "candump.log"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || string(got) != string(live[name]) {
			t.Errorf("offline %s (%d bytes) differs from the live one (%d bytes)", name, len(got), len(live[name]))
		}
	}
	if !strings.Contains(string(live["truth.csv"]), ",engine_speed,") {
		t.Error("no engine speed in the truth file")
	}
}

// TestRealisticScenarioExample: testdata/realistic.json parses, and four
// trucks run from it offline, the faulty ones becoming hazardous.
func TestRealisticScenarioExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "realistic.json"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Trucks: 4, Scenario: sc, NoSerial: true, Tick: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hazard := map[string]bool{}
	fw, err := s.Simulate(time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC), 4*time.Hour, func(smp *Sample) {
		if smp.CoolantHazard || smp.CargoHazard {
			hazard[smp.ID] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"truck-01", "truck-02", "truck-03", "truck-04"} {
		if !hazard[id] {
			t.Errorf("%s: no hazard in 4 h", id)
		}
	}
	n := 0
	for _, w := range fw {
		if w.Kind == HazardPresent {
			n++
		}
	}
	if n < 4 {
		t.Errorf("%d hazard_present windows: %+v", n, fw)
	}
}
