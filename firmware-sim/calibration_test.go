package firmwaresim

import (
	"encoding/csv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// The realistic model (TruckScenario.Model "truck") is calibrated against
// real recordings in ../shared/data/vehicles/ (see its README):
//
//   - kit/: 77 trips of a Seat Leon (KIT OBD-II dataset), 1 Hz coolant,
//     ambient, rpm and speed: warm-up from a cold start and the coolant
//     change while the engine is off at a stop.
//   - j1939/coolant/3BA199E2_0000016{4,5}.csv: two summer drives of
//     another car (CSS Electronics), 1 Hz coolant: radiator-fan cycling
//     (the KIT car has start-stop and a mild climate, and shows none).
//
// These are the figures measured from them (TestKITReference recomputes
// them when the data is there). A car is not a truck: a heavy diesel has
// about twice the heat capacity per kW of heat into its coolant, so times
// to warm up scale by truckTimeScale; the shape of the warm-up (when 40
// and 60 °C are reached, as a share of the time to 80 °C), the fan cycle
// (set by the fan's switch points and its power against the heat at idle)
// and the stop behaviour transfer as they are.
const (
	// Cold starts (first coolant 10..30 °C): minutes from the engine's
	// start to 80 °C, median of the 30 trips that got there.
	kitWarmupMin = 13.2
	// The same on warm days (median ambient >= 15 °C) and cold ones
	// (<= 5 °C): the cab heater and a cold block slow it.
	kitWarmupWarmDay = 9.1
	kitWarmupColdDay = 13.5
	// Time to 40 and 60 °C as a share of the time to 80 °C, medians.
	kitWarmup40Share = 0.33
	kitWarmup60Share = 0.68
	// Engine off 30-80 s at a stop with coolant >= 80 °C: the fall (first
	// minus lowest reading), median, on cold days (ambient <= 8 °C, 26
	// stops) and warm ones (>= 13 °C, 39 stops).
	kitStopFallCold = 2.0
	kitStopFallWarm = 0.0
	// Fan cycles of the CSS drives (3 °C hysteresis on the 1 °C readings
	// once above 85 °C): peak-to-trough amplitude and peak-to-peak
	// period, medians of 28 cycles.
	cssFanAmplitude = 5.0
	cssFanPeriodS   = 109.0

	truckTimeScale = 2.0
)

// vehiclesDir is the shared recordings folder, or "" when absent.
func vehiclesDir(t *testing.T) string {
	dir := os.Getenv("TANKGUARD_VEHICLES")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data", "vehicles")
	}
	if _, err := os.Stat(filepath.Join(dir, "kit", "trips.csv")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: vehicle recordings not found at %s (set TANKGUARD_VEHICLES): %v", dir, err)
		}
		t.Skipf("vehicle recordings not found at %s (set TANKGUARD_VEHICLES)", dir)
	}
	return dir
}

// kitRow is one second of a KIT trip; NaN where the cell is empty.
type kitRow struct {
	t                          int64
	coolant, ambient, rpm, kmh float64
}

func readKITTrip(t *testing.T, path string) []kitRow {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	var out []kitRow
	num := func(s string) float64 {
		if s == "" {
			return math.NaN()
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return v
	}
	for i := 0; ; i++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		ts, _ := strconv.ParseInt(rec[0], 10, 64)
		out = append(out, kitRow{ts, num(rec[1]), num(rec[2]), num(rec[3]), num(rec[4])})
	}
	return out
}

// warmup measures a cold start: seconds from the first sample to the
// first coolant reading at or above 40, 60 and 80 °C (-1: never).
func warmup(times []float64, coolant []float64) (t40, t60, t80 float64) {
	t40, t60, t80 = -1, -1, -1
	for i, c := range coolant {
		d := times[i] - times[0]
		if c >= 40 && t40 < 0 {
			t40 = d
		}
		if c >= 60 && t60 < 0 {
			t60 = d
		}
		if c >= 80 && t80 < 0 {
			t80 = d
			break
		}
	}
	return
}

// fanCycles finds the peaks and troughs of a 1 Hz coolant series (after it
// first reaches 85 °C) with 3 °C hysteresis and returns each cycle's
// peak-to-trough amplitude and peak-to-peak period (s).
func fanCycles(times, coolant []float64) (amps, periods []float64) {
	i0 := slices.IndexFunc(coolant, func(c float64) bool { return c >= 85 })
	if i0 < 0 {
		return nil, nil
	}
	const h = 3
	type ext struct {
		max  bool
		t, v float64
	}
	var exts []ext
	dir := 0
	hiT, hiV, loT, loV := times[i0], coolant[i0], times[i0], coolant[i0]
	for i := i0; i < len(coolant); i++ {
		t, c := times[i], coolant[i]
		if dir >= 0 {
			if c > hiV {
				hiT, hiV = t, c
			}
			if c <= hiV-h {
				exts = append(exts, ext{true, hiT, hiV})
				dir, loT, loV = -1, t, c
			}
		}
		if dir < 0 {
			if c < loV {
				loT, loV = t, c
			}
			if c >= loV+h {
				exts = append(exts, ext{false, loT, loV})
				dir, hiT, hiV = 1, t, c
			}
		}
	}
	for i := 0; i+2 < len(exts); i++ {
		a, b, c := exts[i], exts[i+1], exts[i+2]
		if a.max && !b.max && c.max {
			amps = append(amps, a.v-b.v)
			periods = append(periods, c.t-a.t)
		}
	}
	return amps, periods
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// TestKITReference recomputes the reference figures from the recordings,
// so the constants above are what the data says.
func TestKITReference(t *testing.T) {
	dir := vehiclesDir(t)
	trips, err := filepath.Glob(filepath.Join(dir, "kit", "2*.csv"))
	if err != nil || len(trips) != 77 {
		t.Fatalf("%d KIT trips (%v), want 77", len(trips), err)
	}
	var t80s, s40, s60, fallCold, fallWarm, t80Warm, t80Cold []float64
	for _, path := range trips {
		rows := readKITTrip(t, path)
		var amb []float64
		for _, r := range rows {
			if !math.IsNaN(r.ambient) {
				amb = append(amb, r.ambient)
			}
		}
		ambient := median(amb)
		first := slices.IndexFunc(rows, func(r kitRow) bool { return !math.IsNaN(r.coolant) })
		run := slices.IndexFunc(rows, func(r kitRow) bool { return r.rpm > 0 })
		if c := rows[first].coolant; c >= 10 && c < 30 && run >= 0 {
			var ts, cs []float64
			for _, r := range rows[run:] {
				if !math.IsNaN(r.coolant) {
					ts, cs = append(ts, float64(r.t)), append(cs, r.coolant)
				}
			}
			if a, b, c := warmup(append([]float64{float64(rows[run].t)}, ts...), append([]float64{cs[0]}, cs...)); c > 0 {
				t80s = append(t80s, c/60)
				s40, s60 = append(s40, a/c), append(s60, b/c)
				switch {
				case ambient >= 15:
					t80Warm = append(t80Warm, c/60)
				case ambient <= 5:
					t80Cold = append(t80Cold, c/60)
				}
			}
		}
		// Engine off (rpm 0) for 30-80 s with a warm engine.
		for i := 0; i < len(rows); {
			if rows[i].rpm != 0 || !(rows[i].coolant >= 80) {
				i++
				continue
			}
			j, low := i, rows[i].coolant
			for j < len(rows) && rows[j].rpm == 0 {
				if !math.IsNaN(rows[j].coolant) {
					low = math.Min(low, rows[j].coolant)
				}
				j++
			}
			if d := rows[j-1].t - rows[i].t + 1; d >= 30 && d <= 80 {
				switch {
				case ambient <= 8:
					fallCold = append(fallCold, rows[i].coolant-low)
				case ambient >= 13:
					fallWarm = append(fallWarm, rows[i].coolant-low)
				}
			}
			i = j
		}
	}
	var amps, periods []float64
	for _, name := range []string{"3BA199E2_00000164.csv", "3BA199E2_00000165.csv"} {
		ts, cs := readCoolantCSV(t, filepath.Join(dir, "j1939", "coolant", name))
		a, p := fanCycles(ts, cs)
		amps, periods = append(amps, a...), append(periods, p...)
	}
	t.Logf("KIT: warm-up at >= 15 °C %.1f min (%d trips), at <= 5 °C %.1f (%d)", median(t80Warm), len(t80Warm), median(t80Cold), len(t80Cold))
	t.Logf("KIT: warm-up to 80 °C median %.1f min (%d trips), 40 °C at %.2f, 60 °C at %.2f of it; stop fall cold %.1f (%d), warm %.1f (%d); CSS fan cycles: amplitude %.1f °C, period %.0f s (%d)",
		median(t80s), len(t80s), median(s40), median(s60), median(fallCold), len(fallCold), median(fallWarm), len(fallWarm), median(amps), median(periods), len(amps))
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"warm-up minutes", median(t80s), kitWarmupMin, 0.05},
		{"warm-up minutes, warm days", median(t80Warm), kitWarmupWarmDay, 0.05},
		{"warm-up minutes, cold days", median(t80Cold), kitWarmupColdDay, 0.05},
		{"40 °C share", median(s40), kitWarmup40Share, 0.005},
		{"60 °C share", median(s60), kitWarmup60Share, 0.005},
		{"stop fall cold", median(fallCold), kitStopFallCold, 0.05},
		{"stop fall warm", median(fallWarm), kitStopFallWarm, 0.05},
		{"fan amplitude", median(amps), cssFanAmplitude, 0.05},
		{"fan period", median(periods), cssFanPeriodS, 0.5},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s: the data gives %.3f, the constant says %.3f", c.name, c.got, c.want)
		}
	}
}

func readCoolantCSV(t *testing.T, path string) (times, values []float64) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		ts, err1 := strconv.ParseFloat(r[0], 64)
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad row %q", path, r)
		}
		times, values = append(times, ts), append(values, v)
	}
	return times, values
}

// truckRun steps a lone realistic truck (no transports) for d and calls
// f every second with the truck and its coolant sensor reading at the
// J1939 resolution (1 °C).
func truckRun(seed int64, ts TruckScenario, d time.Duration, f func(sec int, tr *truck, coolant float64)) {
	ts.Model = ModelTruck
	warm := ts.Warm != nil && *ts.Warm
	tr := &truck{id: "t", scen: ts, phys: newTruckPhysics(rand.New(rand.NewPCG(uint64(seed), 0)), 0, warm, simStart, ts), faults: newFaultStates(ts.Faults)}
	for k := time.Duration(0); k < d; k += DefaultTick {
		tr.applyPhysicalFaults(k)
		tr.phys.step(DefaultTick)
		e := tr.effectsAt(k)
		v := tr.sensorValue(sensors.CoolantTemp, k, &e)
		if k%time.Second == 0 {
			f(int(k/time.Second), tr, math.Round(v))
		}
	}
}
