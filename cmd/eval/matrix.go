package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

// faultCase is one row of the fault matrix: how to build a truck with the
// fault, on which signal it must be alerted.
type faultCase struct {
	name string
	sig  sensors.Signal
	// build returns the truck's scenario and the moment the hazardous
	// fault starts; freeze is when a sensor freezes (0: none).
	build func(rng *rand.Rand) (ts firmwaresim.TruckScenario, at, freeze time.Duration)
	// after is how long the run lasts after the fault starts.
	after time.Duration
}

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) firmwaresim.Duration { return firmwaresim.Duration(d) }

// warmDrive is a warm truck on a generated tour with its usual nuisances,
// the fault between 20 and 50 min in: no dropouts after it (without
// readings nothing can be detected; the missing-data alert covers that).
func warmDrive(rng *rand.Rand, ambient float64) (firmwaresim.TruckScenario, time.Duration) {
	at := 20*time.Minute + time.Duration(rng.Int64N(int64(30*time.Minute)))
	ts := firmwaresim.TruckScenario{Model: firmwaresim.ModelTruck, Warm: ptr(true), Ambient: ptr(ambient), Stops: "none"}
	ts.Faults = nuisance(rng, 0, at-time.Minute, 5*time.Minute, true)
	ts.Faults = append(ts.Faults, nuisance(rng, at-time.Minute, at+2*time.Hour, 5*time.Minute, false)...)
	return ts, at
}

func add(ts *firmwaresim.TruckScenario, f ...firmwaresim.Fault) { ts.Faults = append(ts.Faults, f...) }

// faultMatrix is issue 20's fault matrix.
var faultMatrix = []faultCase{
	{name: "slow_cargo_fire", sig: sensors.CargoTemp, after: 60 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 5+20*rng.Float64())
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultCargoHeating, At: dur(at), Rate: 0.5})
			return ts, at, 0
		}},
	{name: "overheat_after_cold_start", sig: sensors.CoolantTemp, after: 30 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			at := 2*time.Minute + time.Duration(rng.Int64N(int64(4*time.Minute)))
			ts := firmwaresim.TruckScenario{Model: firmwaresim.ModelTruck, Warm: ptr(false), Ambient: ptr(-5 + 25*rng.Float64()), Stops: "none"}
			ts.Faults = nuisance(rng, 0, at+time.Hour, 5*time.Minute, false)
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultOverheat, At: dur(at), Ramp: dur(10 * time.Minute), Peak: 118})
			return ts, at, 0
		}},
	{name: "frozen_coolant_in_overheat", sig: sensors.CoolantTemp, after: 40 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 5+20*rng.Float64())
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultOverheat, At: dur(at), Ramp: dur(5 * time.Minute), Peak: 115},
				firmwaresim.Fault{Kind: firmwaresim.FaultStuck, Signal: "coolant_temp", At: dur(at + time.Minute)})
			return ts, at, at + time.Minute
		}},
	{name: "frozen_cargo_in_fire", sig: sensors.CargoTemp, after: 40 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 5+20*rng.Float64())
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultCargoHeating, At: dur(at), Rate: 2},
				firmwaresim.Fault{Kind: firmwaresim.FaultStuck, Signal: "cargo_temp", At: dur(at + time.Minute)})
			return ts, at, at + time.Minute
		}},
	{name: "coolant_loss_on_climb", sig: sensors.CoolantTemp, after: 30 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 15+15*rng.Float64())
			ts.Payload = ptr(1.0)
			ts.Events = []firmwaresim.Event{{Kind: firmwaresim.EventClimb, At: dur(at - time.Minute), Duration: dur(25 * time.Minute), Grade: 5 + 2*rng.Float64()}}
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultCoolantLoss, At: dur(at), Ramp: dur(8 * time.Minute)})
			return ts, at, 0
		}},
	{name: "overheat_at_idle", sig: sensors.CoolantTemp, after: 30 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 10+25*rng.Float64())
			ts.Events = []firmwaresim.Event{{Kind: firmwaresim.EventIdle, At: dur(at - 10*time.Minute), Duration: dur(50 * time.Minute)}}
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultOverheat, At: dur(at), Ramp: dur(5 * time.Minute), Peak: 112})
			return ts, at, 0
		}},
	{name: "thermostat_stuck_closed", sig: sensors.CoolantTemp, after: 40 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 5+25*rng.Float64())
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultThermostatStuck, At: dur(at)})
			return ts, at, 0
		}},
	{name: "fan_failure_in_heat", sig: sensors.CoolantTemp, after: 45 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 38+6*rng.Float64())
			ts.Payload = ptr(1.0)
			// Stuck in traffic in the heat: only the fan cools at idle.
			ts.Events = []firmwaresim.Event{{Kind: firmwaresim.EventIdle, At: dur(at + 2*time.Minute), Duration: dur(40 * time.Minute)}}
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultFanFailure, At: dur(at)})
			return ts, at, 0
		}},
	{name: "fire_parked_engine_off", sig: sensors.CargoTemp, after: 60 * time.Minute,
		build: func(rng *rand.Rand) (firmwaresim.TruckScenario, time.Duration, time.Duration) {
			ts, at := warmDrive(rng, 5+20*rng.Float64())
			ts.Events = []firmwaresim.Event{{Kind: firmwaresim.EventEngineOff, At: dur(at - 20*time.Minute), Duration: dur(3 * time.Hour)}}
			add(&ts, firmwaresim.Fault{Kind: firmwaresim.FaultCargoHeating, At: dur(at), Rate: 1})
			return ts, at, 0
		}},
}

// matrixRow is one fault's figures over its runs.
type matrixRow struct {
	name string
	runs int
	// delays from departing normal to the first alert on the signal at
	// or after the fault's start (one still open then counts from the
	// start) in s; missed counts runs without one.
	delays []float64
	missed int
	// fromFreeze: first alert after the sensor froze (frozen cases).
	fromFreeze []float64
	// unalerted: per run, seconds with the hazard present and no alert
	// open on the signal; hazardSec the seconds with the hazard present.
	unalerted, hazardSec []float64
	// cleared: runs in which an alert on the signal cleared while the
	// hazard lasted; early: alerts before the fault (false).
	cleared, early int
	// noHazard: runs in which the hazard never became physically present.
	noHazard int
	// trueDepart: runs whose readings never departed, judged from the
	// noise-free value instead.
	trueDepart int
}

// caseRun is one truck of a fault case.
type caseRun struct {
	at, freeze time.Duration
	f          *feeder
	// threshold is normal's edge at the fault start (band + margin, or
	// the warning limit if lower); beyond counts the current run of
	// readings beyond it; depart the first of those that lasted the
	// sustain period.
	threshold        float64
	armed            bool
	beyond, depart   int64
	tBeyond, tDepart int64 // the same for the noise-free value
	alertAt          int64
	hazardStart      int64 // first second with the hazard present
	unalerted        int
	hazardSec        int
	cleared          bool
	early            int
}

func matrix(o options) ([]*matrixRow, error) {
	rows := make([]*matrixRow, len(faultMatrix))
	err := parallel(o.workers, len(faultMatrix), func(ci int) error {
		row, err := runCase(o, ci)
		rows[ci] = row
		return err
	})
	return rows, err
}

func runCase(o options, ci int) (*matrixRow, error) {
	fc := faultMatrix[ci]
	seed := o.seed*7919 + int64(ci)*101
	rng := rand.New(rand.NewPCG(uint64(seed), 29))
	n := o.runs
	runs := make([]*caseRun, n)
	sc := firmwaresim.Scenario{Trucks: map[string]firmwaresim.TruckScenario{}}
	var longest time.Duration
	for i := range runs {
		ts, at, freeze := fc.build(rng)
		sc.Trucks[firmwaresim.TruckID("t", i, n)] = ts
		runs[i] = &caseRun{at: at, freeze: freeze}
		longest = max(longest, at+fc.after)
	}
	sim, err := firmwaresim.New(firmwaresim.Config{Trucks: n, IDPrefix: "t", NoSerial: true, Seed: seed, Scenario: sc})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fc.name, err)
	}
	cfg := detect.DefaultConfig()
	sc0 := cfg.Coolant
	if fc.sig == sensors.CargoTemp {
		sc0 = cfg.Cargo
	}
	start := startOf(seed)
	t0 := start.UnixNano()
	hazardOf := func(smp *firmwaresim.Sample) bool {
		if fc.sig == sensors.CargoTemp {
			return smp.CargoHazard
		}
		return smp.CoolantHazard
	}
	var hazardNow []bool = make([]bool, n)
	for i, r := range runs {
		r.f, err = newFeeder(cfg, func(x detect.Transition) {
			if x.Time < t0+int64(r.at) {
				if x.Phase == detect.Raised {
					r.early++
				}
				return
			}
			if x.Signal != fc.sig {
				return
			}
			if x.Phase == detect.Raised && r.alertAt == 0 {
				r.alertAt = x.Time
			}
			if x.Phase == detect.Cleared && hazardNow[i] {
				r.cleared = true
			}
		})
		if err != nil {
			return nil, err
		}
	}
	sustain := int64(sc0.Sustain)
	_, err = sim.Simulate(start, longest, func(smp *firmwaresim.Sample) {
		r := runs[smp.Truck]
		el := time.Duration(smp.Time - t0)
		if el >= r.at+fc.after {
			return
		}
		hz := hazardOf(smp)
		hazardNow[smp.Truck] = hz
		if el >= r.at && !r.armed {
			// Normal is what the detector learned before the fault: its
			// band plus margin, or the warning limit if lower (as in
			// detect's firmware-sim tests).
			r.armed = true
			r.threshold = sc0.WarnHigh
			if b, _ := r.f.det.Band(fc.sig); b.Ready {
				r.threshold = math.Min(b.High+b.Margin, sc0.WarnHigh)
			}
			if r.f.alertOpen(fc.sig) {
				r.alertAt = smp.Time // an alert raised before is still open
			}
		}
		if r.armed && r.depart == 0 {
			for _, x := range smp.Readings {
				if x.Signal != fc.sig {
					continue
				}
				switch {
				case x.Value <= r.threshold:
					r.beyond = 0
				case r.beyond == 0:
					r.beyond = x.Time
				}
				if r.beyond != 0 && x.Time-r.beyond+int64(time.Second) >= sustain {
					r.depart = r.beyond
				}
			}
		}
		r.f.feed(smp, t0)
		if !r.armed || (smp.Time-t0)%int64(time.Second) != 0 {
			return
		}
		if r.tDepart == 0 {
			// The noise-free value at the sensor's resolution (SPN 110:
			// 1 °C; the cargo PGN: 1/32 °C).
			v := math.Round(smp.Coolant)
			if fc.sig == sensors.CargoTemp {
				v = math.Round(smp.Cargo*32) / 32
			}
			switch {
			case v <= r.threshold:
				r.tBeyond = 0
			case r.tBeyond == 0:
				r.tBeyond = smp.Time
			case smp.Time-r.tBeyond+int64(time.Second) >= sustain:
				r.tDepart = r.tBeyond
			}
		}
		if hz {
			if r.hazardStart == 0 {
				r.hazardStart = smp.Time
			}
			r.hazardSec++
			if !r.f.alertOpen(fc.sig) {
				r.unalerted++
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fc.name, err)
	}
	row := &matrixRow{name: fc.name, runs: n}
	for _, r := range runs {
		row.early += r.early
		if r.cleared {
			row.cleared++
		}
		if r.hazardSec == 0 {
			row.noHazard++
		}
		row.unalerted = append(row.unalerted, float64(r.unalerted))
		row.hazardSec = append(row.hazardSec, float64(r.hazardSec))
		// From the readings departing normal; failing that (a frozen
		// sensor), the noise-free value; failing that, the hazard's start.
		ref := r.depart
		if ref == 0 {
			ref = r.tDepart
			if ref != 0 {
				row.trueDepart++
			}
		}
		if ref == 0 {
			ref = r.hazardStart
		}
		if r.alertAt == 0 {
			row.missed++
			continue
		}
		if ref == 0 {
			continue // alerted, but neither departed nor hazardous
		}
		row.delays = append(row.delays, time.Duration(r.alertAt-ref).Seconds())
		if r.freeze > 0 {
			row.fromFreeze = append(row.fromFreeze, time.Duration(r.alertAt-t0-int64(r.freeze)).Seconds())
		}
	}
	return row, nil
}

func printMatrix(w io.Writer, rows []*matrixRow) {
	var table strings.Builder
	fmt.Fprintf(&table, "| fault | runs | alerted | depart->alert median s | worst s | hazard s no alert open (median / worst) | hazard s (median) | cleared during hazard | alerts before fault |\n")
	fmt.Fprintf(&table, "|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		med, worst := quantiles(r.delays)
		um, uw := quantiles(r.unalerted)
		hm, _ := quantiles(r.hazardSec)
		alerted := r.runs - r.missed
		fmt.Fprintf(w, "EVAL fault_%s_alerted %d runs\n", r.name, alerted)
		fmt.Fprintf(w, "EVAL fault_%s_missed %d runs\n", r.name, r.missed)
		if alerted > 0 {
			fmt.Fprintf(w, "EVAL fault_%s_depart_to_alert_median %.1f s\n", r.name, med)
			fmt.Fprintf(w, "EVAL fault_%s_depart_to_alert_worst %.1f s\n", r.name, worst)
		}
		if len(r.fromFreeze) > 0 {
			_, fw := quantiles(r.fromFreeze)
			fmt.Fprintf(w, "EVAL fault_%s_freeze_to_alert_worst %.1f s\n", r.name, fw)
		}
		fmt.Fprintf(w, "EVAL fault_%s_hazard_unalerted_median %.0f s\n", r.name, um)
		fmt.Fprintf(w, "EVAL fault_%s_hazard_unalerted_worst %.0f s\n", r.name, uw)
		fmt.Fprintf(w, "EVAL fault_%s_cleared_during_hazard %d runs\n", r.name, r.cleared)
		fmt.Fprintf(w, "EVAL fault_%s_alerts_before_fault %d alerts\n", r.name, r.early)
		cell := func(v float64) string {
			if math.IsNaN(v) {
				return "-"
			}
			return fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(&table, "| %s | %d | %d | %s | %s | %.0f / %.0f | %.0f | %d | %d |\n",
			r.name, r.runs, alerted, cell(med), cell(worst), um, uw, hm, r.cleared, r.early)
		if r.noHazard > 0 || r.trueDepart > 0 {
			fmt.Fprintf(&table, "|   (%s: %d runs never hazardous; %d judged from the noise-free value, the readings never departed) | | | | | | | | |\n", r.name, r.noHazard, r.trueDepart)
		}
	}
	fmt.Fprintf(w, "\n%s", table.String())
}
