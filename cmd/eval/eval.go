package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

type options struct {
	hours   int
	trip    time.Duration
	runs    int
	workers int
	seed    int64
	only    string
	tick    time.Duration
}

// batch is how many trucks share one simulator.
const batch = 8

func run(o options, w io.Writer) error {
	if o.hours < 1 || o.trip < time.Hour || o.runs < 1 || o.workers < 1 || o.tick < 100*time.Millisecond {
		return fmt.Errorf("need -hours >= 1, -trip >= 1h, -runs >= 1, -workers >= 1, -tick >= 100ms")
	}
	switch o.only {
	case "", "false", "matrix":
	default:
		return fmt.Errorf("-only %q: want false or matrix", o.only)
	}
	begin := time.Now()
	if o.only != "matrix" {
		f, err := fleet(o)
		if err != nil {
			return err
		}
		f.print(w)
	}
	if o.only != "false" {
		rows, err := matrix(o)
		if err != nil {
			return err
		}
		printMatrix(w, rows)
	}
	fmt.Fprintf(w, "EVAL eval_sim_wall_s %.0f s\n", time.Since(begin).Seconds())
	return nil
}

// parallel runs jobs 0..n-1 on o.workers goroutines and returns the first
// error.
func parallel(workers, n int, job func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := job(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// nuisance is a timeline of harmless faults in [from, to), about one every
// mean: single-sample glitches, noise bursts, CAN garbage and (with gaps)
// sensor dropouts and CAN silences of at most 20 s, within the detector's
// 30 s missing-data grace period, at least a minute apart. The same mix as
// detect's firmware-sim tests.
func nuisance(rng *rand.Rand, from, to, mean time.Duration, gaps bool) []firmwaresim.Fault {
	var out []firmwaresim.Fault
	dur := func(lo, hi time.Duration) firmwaresim.Duration {
		return firmwaresim.Duration(lo + time.Duration(rng.Int64N(int64(hi-lo))))
	}
	sign := func() float64 { return float64(1 - 2*rng.IntN(2)) }
	var gapFree time.Duration
	for at := from + time.Duration(rng.ExpFloat64()*float64(mean)); at < to; at += time.Duration(rng.ExpFloat64() * float64(mean)) {
		f := firmwaresim.Fault{At: firmwaresim.Duration(at)}
		coolant := rng.IntN(2) == 0
		name := "cargo_temp"
		if coolant {
			name = "coolant_temp"
		}
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

// startOf is a seeded start time in 2026: sun, day length and time of day
// differ between batches.
func startOf(seed int64) time.Time {
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
}

// feeder drives one detector as the gateway does and keeps the alert
// state per signal.
type feeder struct {
	det  *detect.Detector
	adv  []detect.Transition
	open [sensors.NumSignals]map[int64]bool // open alerts by start
	on   func(x detect.Transition)
}

func newFeeder(cfg detect.Config, on func(detect.Transition)) (*feeder, error) {
	d, err := detect.New("t", cfg)
	if err != nil {
		return nil, err
	}
	f := &feeder{det: d, on: on}
	for i := range f.open {
		f.open[i] = map[int64]bool{}
	}
	return f, nil
}

func (f *feeder) handle(x detect.Transition) {
	switch x.Phase {
	case detect.Raised:
		f.open[x.Signal][x.Start] = true
	case detect.Cleared:
		delete(f.open[x.Signal], x.Start)
	}
	f.on(x)
}

// feed passes one tick's readings (every signal: the detector ignores
// those it does not watch) and, on whole seconds, advances its clock.
func (f *feeder) feed(smp *firmwaresim.Sample, start int64) {
	for _, r := range smp.Readings {
		if x, ok := f.det.Observe(r); ok {
			f.handle(x)
		}
	}
	if (smp.Time-start)%int64(time.Second) == 0 {
		f.adv = f.det.Advance(smp.Time, f.adv[:0])
		for _, x := range f.adv {
			f.handle(x)
		}
	}
}

func (f *feeder) alertOpen(sig sensors.Signal) bool { return len(f.open[sig]) > 0 }

// fleetResult is the false-alert run.
type fleetResult struct {
	mu          sync.Mutex
	truckHours  float64
	readings    int64
	engineStops int
	keyOffs     int // stops with the ignition off
	stoppedSec  int64
	fanCycles   int
	hotDays     int // trucks with a daily mean >= 30 °C
	coldDays    int // <= 0 °C
	nuisance    int
	falses      int
	trueAlerts  int // raised while a hazard was physically present
	hazardSec   int64
	byKind      map[string]int
	examples    []string
	wall        time.Duration
}

func fleet(o options) (*fleetResult, error) {
	begin := time.Now()
	n := int((time.Duration(o.hours)*time.Hour + o.trip - 1) / o.trip)
	res := &fleetResult{byKind: map[string]int{}}
	batches := (n + batch - 1) / batch
	err := parallel(o.workers, batches, func(b int) error {
		return fleetBatch(o, b, min(batch, n-b*batch), res)
	})
	res.wall = time.Since(begin)
	return res, err
}

func fleetBatch(o options, b, k int, res *fleetResult) error {
	seed := o.seed*1_000_003 + int64(b)
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	sc := firmwaresim.Scenario{Trucks: map[string]firmwaresim.TruckScenario{}}
	nuis := 0
	for i := range k {
		warm := i%3 != 0
		ts := firmwaresim.TruckScenario{Model: firmwaresim.ModelTruck, Warm: &warm,
			Faults: nuisance(rng, 0, o.trip, 10*time.Minute, true)}
		nuis += len(ts.Faults)
		sc.Trucks[firmwaresim.TruckID("t", i, k)] = ts
	}
	sim, err := firmwaresim.New(firmwaresim.Config{Trucks: k, IDPrefix: "t", NoSerial: true, Seed: seed, Scenario: sc, Tick: o.tick})
	if err != nil {
		return err
	}
	start := startOf(seed)
	t0 := start.UnixNano()
	cfg := detect.DefaultConfig()
	type state struct {
		f       *feeder
		hazard  [2]bool
		running bool
		key     bool
		fan     bool
		minAmb  float64
		maxAmb  float64
	}
	st := make([]*state, k)
	var falses, trues, stops, keyOffs, fans int
	var readings, stopped, hazardSec int64
	byKind := map[string]int{}
	var examples []string
	for i := range st {
		s := &state{running: true, key: true, minAmb: math.Inf(1), maxAmb: math.Inf(-1)}
		s.f, err = newFeeder(cfg, func(x detect.Transition) {
			if x.Phase != detect.Raised {
				return
			}
			if (x.Signal == sensors.CoolantTemp && s.hazard[0]) || (x.Signal == sensors.CargoTemp && s.hazard[1]) {
				trues++
				return
			}
			falses++
			byKind[x.Signal.String()+" "+x.Kind.String()]++
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("%s %s %s value %.1f band [%.1f %.1f] at +%v", x.Signal, x.Kind, x.Severity, x.Value, x.Low, x.High,
					time.Duration(x.Time-t0).Round(time.Second)))
			}
		})
		if err != nil {
			return err
		}
		st[i] = s
	}
	_, err = sim.Simulate(start, o.trip, func(smp *firmwaresim.Sample) {
		s := st[smp.Truck]
		s.hazard = [2]bool{smp.CoolantHazard, smp.CargoHazard}
		if s.running && !smp.Running {
			stops++
		}
		s.running = smp.Running
		if s.key && !smp.Ignition {
			keyOffs++
		}
		s.key = smp.Ignition
		if smp.FanOn && !s.fan {
			fans++
		}
		s.fan = smp.FanOn
		whole := (smp.Time-t0)%int64(time.Second) == 0
		if whole {
			if !smp.Running {
				stopped++
			}
			if smp.CoolantHazard || smp.CargoHazard {
				hazardSec++
			}
		}
		for _, r := range smp.Readings {
			if r.Signal.IsTemperature() {
				readings++
			}
			if r.Signal == sensors.AmbientTemp {
				s.minAmb, s.maxAmb = math.Min(s.minAmb, r.Value), math.Max(s.maxAmb, r.Value)
			}
		}
		s.f.feed(smp, t0)
	})
	if err != nil {
		return err
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	res.truckHours += float64(k) * o.trip.Hours()
	res.readings += readings
	res.engineStops += stops
	res.keyOffs += keyOffs
	res.fanCycles += fans
	res.stoppedSec += stopped
	res.hazardSec += hazardSec
	res.nuisance += nuis
	res.falses += falses
	res.trueAlerts += trues
	for kk, v := range byKind {
		res.byKind[kk] += v
	}
	if len(res.examples) < 5 {
		res.examples = append(res.examples, examples...)
	}
	for _, s := range st {
		if s.maxAmb >= 30 {
			res.hotDays++
		}
		if s.minAmb <= 0 {
			res.coldDays++
		}
	}
	return nil
}

func (f *fleetResult) print(w io.Writer) {
	per := float64(f.falses) / f.truckHours * 1000
	fmt.Fprintf(w, "EVAL sim_truck_hours %.0f h\n", f.truckHours)
	fmt.Fprintf(w, "EVAL sim_false_alerts %d alerts\n", f.falses)
	fmt.Fprintf(w, "EVAL sim_false_alerts_per_1000h %.2f alerts\n", per)
	fmt.Fprintf(w, "EVAL sim_engine_stops %d stops\n", f.engineStops)
	fmt.Fprintf(w, "EVAL sim_ignition_off_stops %d stops\n", f.keyOffs)
	fmt.Fprintf(w, "EVAL sim_fan_cycles %d cycles\n", f.fanCycles)
	fmt.Fprintf(w, "EVAL sim_engine_off_share %.3f share\n", float64(f.stoppedSec)/(f.truckHours*3600))
	fmt.Fprintf(w, "EVAL sim_hot_day_trucks %d trucks\n", f.hotDays)
	fmt.Fprintf(w, "EVAL sim_cold_day_trucks %d trucks\n", f.coldDays)
	fmt.Fprintf(w, "EVAL sim_nuisance_faults %d faults\n", f.nuisance)
	fmt.Fprintf(w, "EVAL sim_temperature_readings %d readings\n", f.readings)
	fmt.Fprintf(w, "EVAL sim_hazard_seconds %d s\n", f.hazardSec)
	fmt.Fprintf(w, "EVAL sim_alerts_during_hazard %d alerts\n", f.trueAlerts)
	fmt.Fprintf(w, "EVAL sim_false_alert_wall_s %.0f s\n", f.wall.Seconds())
	var kinds []string
	for k, v := range f.byKind {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "\nfalse alerts by signal and kind: %s\n", strings.Join(kinds, ", "))
	for _, e := range f.examples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
	fmt.Fprintln(w)
}

// quantiles returns the median and the worst of v (NaN when empty).
func quantiles(v []float64) (median, worst float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2], v[len(v)-1]
}
