package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

// These tests run the detector on firmware-sim's own trucks: its physics,
// J1939 encoding and fault injection, decoded as a gateway decodes them
// (firmwaresim.Sim.Simulate, the same stream as a live run, in simulated
// time), with the fault ground truth firmware-sim reports.

// nuisance returns a timeline of the harmless faults a truck's buses and
// sensors show in [from, to): single-sample glitches, noise bursts, CAN
// garbage, and (with gaps) dropouts and CAN silences of at most 20 s, well
// within the detector's 30 s missing-data grace period; about one every
// mean.
func nuisance(rng *rand.Rand, from, to time.Duration, mean time.Duration, gaps bool) []firmwaresim.Fault {
	var out []firmwaresim.Fault
	dur := func(lo, hi time.Duration) firmwaresim.Duration {
		return firmwaresim.Duration(lo + time.Duration(rng.Int64N(int64(hi-lo))))
	}
	sig := func() (string, bool) {
		if rng.IntN(2) == 0 {
			return "coolant_temp", true
		}
		return "cargo_temp", false
	}
	sign := func() float64 { return float64(1 - 2*rng.IntN(2)) }
	// Gaps (dropouts, silences) at most 20 s and a minute apart, so that
	// they never join into one longer than the grace period.
	var gapFree time.Duration
	for at := from + time.Duration(rng.ExpFloat64()*float64(mean)); at < to; at += time.Duration(rng.ExpFloat64() * float64(mean)) {
		f := firmwaresim.Fault{At: firmwaresim.Duration(at)}
		name, coolant := sig()
		kinds := 3
		if gaps && at >= gapFree {
			kinds = 5
		}
		switch rng.IntN(kinds) {
		case 0:
			f.Kind, f.Signal, f.Count, f.Every = firmwaresim.FaultGlitch, name, 1+rng.IntN(3), dur(10*time.Second, time.Minute)
			f.Amplitude = sign() * (2 + 38*rng.Float64())
			if coolant {
				f.Amplitude = sign() * (5 + 55*rng.Float64())
			}
		case 1:
			f.Kind, f.Signal, f.Duration = firmwaresim.FaultNoiseBurst, name, dur(30*time.Second, 5*time.Minute)
			f.Amplitude = 0.1 + 0.4*rng.Float64()
			if coolant {
				f.Amplitude = 0.5 + 1.5*rng.Float64()
			}
		case 2:
			f.Kind, f.Duration, f.Probability = firmwaresim.FaultCANGarbage, dur(time.Minute, 10*time.Minute), 0.01+0.09*rng.Float64()
		case 3:
			f.Kind, f.Signal, f.Duration = firmwaresim.FaultDropout, name, dur(2*time.Second, 20*time.Second)
			f.Mode = []string{"missing", "error", "not_available"}[rng.IntN(3)]
			gapFree = at + time.Duration(f.Duration) + time.Minute
		case 4:
			f.Kind, f.Duration = firmwaresim.FaultCANSilence, dur(2*time.Second, 20*time.Second)
			gapFree = at + time.Duration(f.Duration) + time.Minute
		}
		out = append(out, f)
	}
	return out
}

// fwTrip is one simulated truck trip and what the detector made of it.
type fwTrip struct {
	warm   bool
	faults []firmwaresim.Fault
	// hazard is the index in faults of the trip's hazardous fault, -1 if
	// none.
	hazard int
	hours  time.Duration

	alerts   []Transition // every Raised transition
	readings int
	// For the hazard: its window; the moment it departed normal (0:
	// never): the first of the readings that stayed beyond normal for the
	// sustain period; the moment its noise-free value did so (reported, not
	// judged); and the first alert on its signal at or after its start (0:
	// none).
	window                      firmwaresim.FaultWindow
	depart, departTrue, alertAt int64
	// threshold is normal's edge at the fault's start; alertEdge the
	// detector's band edge (high plus margin) when it alerted.
	threshold, alertEdge float64
	// reported is the hazard's window as firmware-sim's ground truth gives
	// it, to check window against.
	reported firmwaresim.FaultWindow
	// clearedAt is when the hazard's alert first cleared (0: never), with
	// the value then: the faults last to the end of the trip.
	clearedAt    int64
	clearedValue float64
}

// runTrips simulates trips in parallel, batch trucks to a simulator, each
// with its own detector on default settings.
func runTrips(t *testing.T, seed int64, trips []*fwTrip) {
	const batch = 8
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for b := 0; b*batch < len(trips); b++ {
		group := trips[b*batch : min(len(trips), (b+1)*batch)]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := runBatch(seed+int64(b), group); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func runBatch(seed int64, trips []*fwTrip) error {
	sc := firmwaresim.Scenario{Trucks: map[string]firmwaresim.TruckScenario{}}
	var hours time.Duration
	for i, tr := range trips {
		sc.Trucks[firmwaresim.TruckID("t", i, len(trips))] = firmwaresim.TruckScenario{Warm: &tr.warm, Faults: tr.faults}
		hours = max(hours, tr.hours)
	}
	sim, err := firmwaresim.New(firmwaresim.Config{Trucks: len(trips), IDPrefix: "t", NoSerial: true, Seed: seed, Scenario: sc})
	if err != nil {
		return err
	}
	cfg := DefaultConfig()
	dets := make([]*Detector, len(trips))
	for i := range dets {
		if dets[i], err = New(fmt.Sprint(i), cfg); err != nil {
			return err
		}
	}
	// Start at a seeded time of year and day: sun and ambient differ.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.New(rand.NewPCG(uint64(seed), 3)).Int64N(int64(365 * 24 * time.Hour))))
	// Excursion tracking for each hazard: the first moment the noise-free
	// value went beyond normal, in the excursion under way.
	for _, tr := range trips {
		if tr.hazard >= 0 {
			tr.window = hazardWindow(start, tr.faults[tr.hazard])
		}
	}
	excursion := make([]int64, len(trips))
	beyond := make([]int64, len(trips)) // first of the current run of readings beyond normal
	threshold := make([]float64, len(trips))
	var adv []Transition
	windows, err := sim.Simulate(start, hours, func(smp *firmwaresim.Sample) {
		tr := trips[smp.Truck]
		if time.Duration(smp.Time-start.UnixNano()) >= tr.hours {
			return
		}
		d := dets[smp.Truck]
		w := &tr.window
		hz := tr.hazard >= 0 && smp.Time >= w.Start
		sig := sensors.CoolantTemp
		sc := cfg.Coolant
		if w.Signal == sensors.CargoTemp.String() {
			sig, sc = sensors.CargoTemp, cfg.Cargo
		}
		if hz && threshold[smp.Truck] == 0 {
			// Normal is what the detector learned before the fault: its
			// band plus margin, or the warning limit if lower.
			b, _ := d.Band(sig)
			threshold[smp.Truck] = sc.WarnHigh
			if b.Ready {
				threshold[smp.Truck] = math.Min(b.High+b.Margin, sc.WarnHigh)
			}
		}
		raised := func(x Transition) {
			if x.Phase == Cleared && tr.alertAt != 0 && tr.clearedAt == 0 && x.Signal == sig {
				tr.clearedAt, tr.clearedValue = x.Time, x.Value
			}
			if x.Phase != Raised {
				return
			}
			tr.alerts = append(tr.alerts, x)
			if hz && tr.alertAt == 0 && x.Signal == sig {
				tr.alertAt = x.Time
				b, _ := d.Band(sig)
				tr.threshold, tr.alertEdge = threshold[smp.Truck], b.High+b.Margin
			}
		}
		for _, r := range smp.Readings {
			if r.Signal != sensors.CoolantTemp && r.Signal != sensors.CargoTemp {
				continue
			}
			tr.readings++
			if hz && tr.depart == 0 && r.Signal == sig {
				switch {
				case r.Value <= threshold[smp.Truck]:
					beyond[smp.Truck] = 0
				case beyond[smp.Truck] == 0:
					beyond[smp.Truck] = r.Time
				}
				// Ten readings at 1 Hz stand for 10 s.
				if b := beyond[smp.Truck]; b != 0 && r.Time-b+int64(time.Second) >= int64(sc.Sustain) {
					tr.depart = b
				}
			}
			if x, ok := d.Observe(r); ok {
				raised(x)
			}
		}
		if hz && tr.departTrue == 0 {
			// The noise-free value at the sensor's resolution (J1939 SPN
			// 110: 1 °C; the cargo PGN: 1/32 °C).
			v := math.Round(smp.Coolant)
			if sig == sensors.CargoTemp {
				v = math.Round(smp.Cargo*32) / 32
			}
			switch {
			case v <= threshold[smp.Truck]:
				excursion[smp.Truck] = 0
			case excursion[smp.Truck] == 0:
				excursion[smp.Truck] = smp.Time
			case smp.Time-excursion[smp.Truck] >= int64(sc.Sustain):
				tr.departTrue = excursion[smp.Truck]
			}
		}
		if (smp.Time-start.UnixNano())%int64(time.Second) == 0 {
			adv = d.Advance(smp.Time, adv[:0])
			for _, x := range adv {
				raised(x)
			}
		}
	})
	if err != nil {
		return err
	}
	for _, w := range windows {
		var i int
		if _, err := fmt.Sscanf(w.Truck, "t%d", &i); err != nil {
			return fmt.Errorf("truck id %q: %v", w.Truck, err)
		}
		if tr := trips[i-1]; w.Hazard && tr.hazard >= 0 && tr.reported.Start == 0 {
			tr.reported = w
		}
	}
	return nil
}

// hazardWindow is the window of hazard f for a truck started at start.
// runBatch needs it during the run; firmware-sim reports its windows once
// Simulate returns, and the test checks they agree.
func hazardWindow(start time.Time, f firmwaresim.Fault) firmwaresim.FaultWindow {
	sig := "coolant_temp"
	if f.Kind == firmwaresim.FaultCargoHeating {
		sig = "cargo_temp"
	}
	return firmwaresim.FaultWindow{Kind: f.Kind, Signal: sig, Start: start.Add(time.Duration(f.At)).UnixNano(), Hazard: true}
}

// TestFirmwareSimFalseAlerts drives firmware-sim trucks through hours of
// normal driving (generated tours with stops and jams, a quarter of the
// trips from a cold engine, random ambient, sun, time of day and year)
// with glitches, noise bursts, CAN garbage, sensor dropouts and CAN
// silences shorter than the missing-data grace period, and counts every
// alert the detector raises: each one is false. Target: at most 1 per
// 1,000 truck-hours. make test runs 200 truck-hours (about 10 s on 2
// cores); FWSIM_HOURS=50000 (make sim-long) the long run.
func TestFirmwareSimFalseAlerts(t *testing.T) {
	total := simHours(t, "FWSIM_HOURS", 200)
	const tripHours = 10
	rng := rand.New(rand.NewPCG(11, 12))
	trips := make([]*fwTrip, (total+tripHours-1)/tripHours)
	nuisances := 0
	for i := range trips {
		tr := &fwTrip{warm: i%4 != 3, hazard: -1, hours: tripHours * time.Hour}
		tr.faults = nuisance(rng, 0, tr.hours, 10*time.Minute, true)
		nuisances += len(tr.faults)
		trips[i] = tr
	}
	start := time.Now()
	runTrips(t, 1000, trips)
	falses, readings := 0, 0
	byKind := map[string]int{}
	for i, tr := range trips {
		readings += tr.readings
		for _, a := range tr.alerts {
			falses++
			byKind[a.Signal.String()+" "+a.Kind.String()]++
			if falses <= 5 {
				t.Logf("false alert: trip %d (warm %v): %s %s %s value %v band [%v %v]", i, tr.warm, a.Signal, a.Kind, a.Severity, a.Value, a.Low, a.High)
			}
		}
	}
	hours := len(trips) * tripHours
	t.Logf("firmware-sim: %d truck-hours (%d trips, %d temperature readings, %d nuisance faults) in %v: %d false alerts %v",
		hours, len(trips), readings, nuisances, time.Since(start).Round(time.Millisecond), falses, byKind)
	if readings < hours*3600*2*9/10 {
		t.Errorf("only %d temperature readings in %d truck-hours", readings, hours)
	}
	if limit := max(1, hours/1000); falses > limit {
		t.Errorf("%d false alerts in %d truck-hours; want at most %d", falses, hours, limit)
	}
}

// TestFirmwareSimHazards injects each of firmware-sim's hazardous faults
// into many trucks, warm and from a cold start, with glitches, noise bursts
// and CAN garbage throughout (dropouts and silences only before the fault:
// without readings nothing can be detected, which the missing-data alert
// covers), and checks against firmware-sim's ground truth that every one
// is alerted on its signal within the sustain period plus 2 s of the
// moment it departs from normal: the first of the emitted readings (the
// truth file's values) that stay beyond normal for the sustain period,
// normal being the band the detector had learned before the fault plus
// its margin, or the warning limit if lower. No alert may come before the
// fault. It also reports the delay from the moment the noise-free value
// (at the sensor's resolution) departed, which sensor noise blurs on slow
// faults (0.3 °C of noise is 4.5 s of a 4 °C/min rise), and from the
// fault's start.
func TestFirmwareSimHazards(t *testing.T) {
	cases := []struct {
		name  string
		fault firmwaresim.Fault
		sig   sensors.Signal
	}{
		{"overheat to 115 in 30s", firmwaresim.Fault{Kind: firmwaresim.FaultOverheat}, sensors.CoolantTemp},
		{"overheat to 108 in 5m", firmwaresim.Fault{Kind: firmwaresim.FaultOverheat, Peak: 108, Ramp: firmwaresim.Duration(5 * time.Minute)}, sensors.CoolantTemp},
		{"coolant loss 4C/min", firmwaresim.Fault{Kind: firmwaresim.FaultCoolantLoss}, sensors.CoolantTemp},
		{"coolant loss 1C/min", firmwaresim.Fault{Kind: firmwaresim.FaultCoolantLoss, Rate: 1}, sensors.CoolantTemp},
		{"fan failure", firmwaresim.Fault{Kind: firmwaresim.FaultFanFailure}, sensors.CoolantTemp},
		{"cargo heating 20C/min", firmwaresim.Fault{Kind: firmwaresim.FaultCargoHeating}, sensors.CargoTemp},
		{"cargo heating 1C/min", firmwaresim.Fault{Kind: firmwaresim.FaultCargoHeating, Rate: 1}, sensors.CargoTemp},
	}
	runs := 24
	if testing.Short() {
		runs = 8
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(21, uint64(ci)))
			trips := make([]*fwTrip, runs)
			for i := range trips {
				tr := &fwTrip{warm: i%3 != 2}
				at := 20*time.Minute + time.Duration(rng.Int64N(int64(40*time.Minute)))
				if !tr.warm {
					at += 30 * time.Minute // after the warm-up
				}
				tr.hours = at + 20*time.Minute
				tr.faults = nuisance(rng, 0, at-time.Minute, 5*time.Minute, true)
				tr.faults = append(tr.faults, nuisance(rng, at-time.Minute, tr.hours, 5*time.Minute, false)...)
				f := tc.fault
				f.At = firmwaresim.Duration(at)
				tr.hazard = len(tr.faults)
				tr.faults = append(tr.faults, f)
				trips[i] = tr
			}
			runTrips(t, int64(2000+100*ci), trips)
			limit := (DefaultConfig().Coolant.Sustain + 2*time.Second).Seconds()
			var fromDepart, fromTrue, fromOnset []float64
			late, quiet := 0, 0
			for i, tr := range trips {
				w := tr.window
				if w.Start != tr.reported.Start || w.Kind != tc.fault.Kind || tr.reported.Kind != w.Kind || tr.reported.Signal != tc.sig.String() {
					t.Fatalf("trip %d: firmware-sim reports hazard window %+v, the test assumed %+v", i, tr.reported, w)
				}
				for _, a := range tr.alerts {
					if a.Time < w.Start {
						t.Errorf("trip %d (warm %v): alert before the fault: %s %s value %v", i, tr.warm, a.Signal, a.Kind, a.Value)
					}
				}
				if tr.alertAt == 0 && tr.depart == 0 {
					// The readings never left the learned band plus its
					// margin nor reached the warning limit: by the
					// definition every figure here uses, the fault never
					// departed normal (a fan failure that levels off a
					// few degrees above the band). Reported, not failed.
					quiet++
					continue
				}
				if tr.alertAt == 0 {
					t.Errorf("trip %d (warm %v): no %s alert in 20 min after the fault, though its readings departed normal", i, tr.warm, tc.sig)
					continue
				}
				if tr.clearedAt != 0 {
					t.Errorf("trip %d (warm %v): the alert cleared %.0f s after it was raised (value %.1f) while the fault lasts",
						i, tr.warm, time.Duration(tr.clearedAt-tr.alertAt).Seconds(), tr.clearedValue)
				}
				fromOnset = append(fromOnset, time.Duration(tr.alertAt-w.Start).Seconds())
				d := math.Inf(-1) // alerted before departing normal
				if tr.depart != 0 {
					d = time.Duration(tr.alertAt - tr.depart).Seconds()
				}
				fromDepart = append(fromDepart, d)
				if tr.departTrue != 0 {
					fromTrue = append(fromTrue, time.Duration(tr.alertAt-tr.departTrue).Seconds())
				}
				if d > limit {
					late++
					t.Errorf("trip %d (warm %v): %s alert %.1f s after departing normal, want at most %.0f s (normal's edge at the fault %.2f, at the alert %.2f)",
						i, tr.warm, tr.alerts[len(tr.alerts)-1].Kind, d, limit, tr.threshold, tr.alertEdge)
				}
			}
			if len(fromDepart) > 0 && len(fromTrue) > 0 {
				slices.Sort(fromDepart)
				slices.Sort(fromTrue)
				slices.Sort(fromOnset)
				q := func(v []float64) string {
					return fmt.Sprintf("median %.1f s, worst %.1f s", v[len(v)/2], v[len(v)-1])
				}
				t.Logf("%s: %d trucks; alert after the readings departed normal: %s (limit %.0f s); after the noise-free value did: %s; after the fault started: %s",
					tc.name, runs, q(fromDepart), limit, q(fromTrue), q(fromOnset))
			}
			if quiet > 0 {
				t.Logf("%s: %d of %d trucks never departed normal and raised nothing", tc.name, quiet, runs)
			}
			if quiet > runs/4 {
				t.Errorf("%s: %d of %d trucks never departed normal: the fault no longer tests the detector", tc.name, quiet, runs)
			}
		})
	}
}
