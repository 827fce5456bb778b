package detect

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

const t0 = int64(1_700_000_000) * int64(time.Second)

func sec(s float64) int64 { return t0 + int64(s*float64(time.Second)) }

// feed sends values at 1 Hz starting at second from and returns every
// transition.
func feed(d *Detector, sig sensors.Signal, from float64, vals ...float64) []Transition {
	var out []Transition
	for i, v := range vals {
		if tr, ok := d.Observe(sensors.Reading{Time: sec(from + float64(i)), Value: v, Signal: sig}); ok {
			out = append(out, tr)
		}
	}
	return out
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// warm returns 40 s of normal coolant around 90 °C (89..91).
func warm() []float64 {
	out := make([]float64, 40)
	for i := range out {
		out[i] = 89 + float64(i%3)
	}
	return out
}

func TestTransitions(t *testing.T) {
	type want struct {
		at    float64 // second of the reading
		phase Phase
		kind  Kind
		sev   Severity
	}
	cases := []struct {
		name  string
		after []float64 // coolant values at 1 Hz after 40 s of warm normal
		want  []want
	}{
		{"normal stays quiet", repeat(90, 100), nil},
		{"single glitch ignored", append(append(repeat(90, 10), 200), repeat(90, 20)...), nil},
		{"two glitches ignored", append(append(repeat(90, 10), 250, 90, -40), repeat(90, 20)...), nil},
		{"short excursion under sustain ignored", append(append(repeat(90, 5), repeat(100, 8)...), repeat(90, 20)...), nil},
		{"deviation raised after sustain then cleared", append(append(repeat(90, 5), repeat(100, 15)...), repeat(90, 5)...), []want{
			// The step back down is confirmed by a second reading (despike).
			{54, Raised, KindDeviation, SeverityWarning}, {61, Cleared, KindDeviation, SeverityWarning}}},
		{"limit warning then critical", append(append(repeat(90, 5), repeat(106, 12)...), repeat(112, 12)...), []want{
			{54, Raised, KindLimit, SeverityWarning}, {66, Changed, KindLimit, SeverityCritical}}},
		{"hysteresis: no flapping at the threshold", append(append(repeat(90, 5), repeat(100, 15)...), 96, 100, 96, 100, 96, 100, 96, 100), []want{
			{54, Raised, KindDeviation, SeverityWarning}}},
		{"rate of rise before the band is left", func() []float64 {
			v := repeat(90, 5)
			for i := 0; i < 40; i++ {
				v = append(v, 90+float64(i)*0.25) // 15 °C/min
			}
			// Measured over 30 s between the means of its oldest and
			// newest quarters, the rate passes 10 °C/min about 18 s
			// into the climb; the value passes half the margin above
			// the band (90 + 4.25) 17 s in and the rate is sustained
			// 10 s after both, before the deviation (at 98.5).
			return v
		}(), []want{{78, Raised, KindRateOfRise, SeverityWarning}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The default margin (12 °C) makes a deviation nearly the
			// warning limit; these cases test the mechanism at 8.5.
			cfg := DefaultConfig()
			cfg.Coolant.MinMargin = 8.5
			d, err := New("t1", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := feed(d, sensors.CoolantTemp, 0, warm()...); len(got) != 0 {
				t.Fatalf("warm-up raised %+v", got)
			}
			got := feed(d, sensors.CoolantTemp, 40, tc.after...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d transitions %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Time != sec(w.at) || g.Phase != w.phase || g.Kind != w.kind || g.Severity != w.sev {
					t.Errorf("transition %d: got %s %s %s at %v, want %s %s %s at %v", i, g.Phase, g.Kind, g.Severity,
						time.Duration(g.Time-t0).Seconds(), w.phase, w.kind, w.sev, w.at)
				}
				if g.Truck != "t1" || g.Signal != sensors.CoolantTemp || g.ConfigHash != cfg.Hash() {
					t.Errorf("transition %d: identity fields %+v", i, g)
				}
				if math.IsNaN(g.Baseline) || !(g.Low <= g.Baseline && g.Baseline <= g.High) {
					t.Errorf("transition %d: baseline %v not inside band [%v %v]", i, g.Baseline, g.Low, g.High)
				}
			}
			if len(got) > 0 && got[0].Start > got[0].Time-int64(9*time.Second) {
				t.Errorf("start %v is not the first departing reading (raised at %v)", got[0].Start, got[0].Time)
			}
		})
	}
}

func TestStuckAndMissing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Coolant.StuckAfter = time.Minute
	d, _ := New("t1", cfg)
	feed(d, sensors.CoolantTemp, 0, warm()...)
	// 40 min of a value that changes every 10 s: its own history.
	var hist []float64
	for i := range 2400 {
		hist = append(hist, float64(89+(i/10)%3))
	}
	if got := feed(d, sensors.CoolantTemp, 40, hist...); len(got) != 0 {
		t.Fatalf("history raised %+v", got)
	}
	// Frozen: at least StuckAfter and 4 times the longest run (10 s).
	got := feed(d, sensors.CoolantTemp, 2440, repeat(90, 70)...)
	if len(got) != 1 || got[0].Kind != KindStuck || got[0].Phase != Raised || got[0].Time != sec(2440+60) {
		t.Fatalf("stuck: got %+v", got)
	}
	// A garbage reading does not unfreeze it; readings that move for
	// the sustain period do.
	if got := feed(d, sensors.CoolantTemp, 2510, 91, 90, 90); len(got) != 0 {
		t.Fatalf("stuck cleared by one differing reading: %+v", got)
	}
	got = feed(d, sensors.CoolantTemp, 2513, 91, 92, 91, 92, 91, 92, 91, 92, 91, 92, 91)
	if len(got) != 1 || got[0].Phase != Cleared {
		t.Fatalf("stuck clear: got %+v", got)
	}
	// Missing: nothing within the grace period, then one alert, cleared by the next reading.
	last := sec(2523)
	var buf []Transition
	for s := 1; s <= 30; s++ {
		if buf = d.Advance(last+int64(s)*int64(time.Second), buf[:0]); len(buf) != 0 {
			t.Fatalf("missing raised within grace at +%ds: %+v", s, buf)
		}
	}
	buf = d.Advance(last+31*int64(time.Second), buf[:0])
	if len(buf) != 1 || buf[0].Kind != KindMissing || buf[0].Phase != Raised || buf[0].Signal != sensors.CoolantTemp {
		t.Fatalf("missing: got %+v", buf)
	}
	if buf = d.Advance(last+40*int64(time.Second), buf[:0]); len(buf) != 0 {
		t.Fatalf("missing raised twice: %+v", buf)
	}
	got = feed(d, sensors.CoolantTemp, 2573, 90)
	if len(got) != 1 || got[0].Phase != Cleared || got[0].Kind != KindMissing {
		t.Fatalf("missing clear: got %+v", got)
	}
}

func TestRejectsBadReadings(t *testing.T) {
	d, _ := New("t1", DefaultConfig())
	feed(d, sensors.CoolantTemp, 0, warm()...)
	feed(d, sensors.CoolantTemp, 40, math.NaN(), math.Inf(1))
	feed(d, sensors.CoolantTemp, 10, 90) // out of order
	feed(d, sensors.WheelSpeed, 0, 300)  // not watched
	b, ok := d.Band(sensors.CoolantTemp)
	if !ok || b.Rejected != 3 || b.Readings != 40 || !b.Ready {
		t.Fatalf("band %+v", b)
	}
	if !(b.Low >= 89 && b.High <= 91 && b.Margin == 12.5) {
		t.Errorf("band [%v %v] margin %v, want within [89 91] and 12.5", b.Low, b.High, b.Margin)
	}
	if _, ok := d.Band(sensors.WheelSpeed); ok {
		t.Error("band for an unwatched signal")
	}
}

func TestWarmupWithin30Readings(t *testing.T) {
	d, _ := New("t1", DefaultConfig())
	feed(d, sensors.CoolantTemp, 0, warm()[:29]...)
	if b, _ := d.Band(sensors.CoolantTemp); b.Ready {
		t.Fatal("ready after 29 readings")
	}
	feed(d, sensors.CoolantTemp, 29, 90)
	if b, _ := d.Band(sensors.CoolantTemp); !b.Ready {
		t.Fatal("not ready after 30 readings of a warm engine")
	}
}

func TestConfigValidateAndParse(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultGenericConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, json, field string
	}{
		{"unknown class", `{"engine": {}}`, `"engine"`},
		{"unknown field", `{"coolant": {"sustian": "10s"}}`, `"sustian"`},
		{"bad duration", `{"coolant": {"sustain": "ten"}}`, "coolant.sustain"},
		{"duration as number", `{"cargo": {"sustain": 10}}`, "cargo.sustain"},
		{"negative min readings", `{"coolant": {"min_readings": 0}}`, "coolant.min_readings"},
		{"warmup too big", `{"cargo": {"warmup": 65}}`, "cargo.warmup"},
		{"crit below warn", `{"coolant": {"crit_high": 100}}`, "coolant.crit_high"},
		{"not an object", `[1,2]`, "config"},
		{"trailing data", `{} {}`, "trailing"},
		{"bad hysteresis", `{"coolant": {"hysteresis": 2}}`, "coolant.hysteresis"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if !errors.Is(err, ErrConfig) || !contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tc.field)
			}
		})
	}
	c, err := ParseConfig([]byte(`{"coolant": {"sustain": "5s", "warn_high": null, "crit_high": 108}, "cargo": {"onset_only": false}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Coolant.Sustain != 5*time.Second || !math.IsNaN(c.Coolant.WarnHigh) || c.Coolant.CritHigh != 108 || c.Cargo.Hash() != DefaultConfig().Cargo.Hash() {
		t.Fatalf("parsed %+v", c)
	}
	if c.Hash() == DefaultConfig().Hash() {
		t.Error("different configs hash equally")
	}
	if c, err := ParseConfig([]byte(`{"cargo": {"learn_on_return": false}}`)); err != nil || c.Cargo.LearnOnReturn || !c.Coolant.LearnOnReturn {
		t.Errorf("learn_on_return: %+v, %v", c.Cargo, err)
	}
	if DefaultConfig().Hash() != DefaultConfig().Hash() {
		t.Error("hash not stable")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// simReadings returns a reproducible stream of readings from a simulated
// truck with an overheat injected, for determinism and restore tests.
func simReadings(seed uint64, seconds int) []sensors.Reading {
	sim := newTruckSim(seed, seed%2 == 0)
	var out []sensors.Reading
	for s := 0; s < seconds; s++ {
		if s == seconds/2 {
			sim.faultSig, sim.faultAt, sim.faultRate, sim.faultMax = sensors.CoolantTemp, sim.t, 0.4, 25
		}
		out = sim.step(out)
	}
	return out
}

func replayAll(t *testing.T, d *Detector, rs []sensors.Reading) []Transition {
	t.Helper()
	var out []Transition
	for _, r := range rs {
		if tr, ok := d.Observe(r); ok {
			out = append(out, tr)
		}
		out = d.Advance(r.Time, out)
	}
	return out
}

func sameTransitions(a, b []Transition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Truck != y.Truck || x.Signal != y.Signal || x.Kind != y.Kind || x.Severity != y.Severity || x.Active != y.Active ||
			x.Phase != y.Phase || x.Start != y.Start || x.Time != y.Time || x.ConfigHash != y.ConfigHash ||
			math.Float64bits(x.Value) != math.Float64bits(y.Value) ||
			math.Float64bits(x.Baseline) != math.Float64bits(y.Baseline) ||
			math.Float64bits(x.Low) != math.Float64bits(y.Low) || math.Float64bits(x.High) != math.Float64bits(y.High) {
			return false
		}
	}
	return true
}

// TestDeterministic: two detectors fed the same readings produce the same
// transitions bit for bit, and the same saved state.
func TestDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rs := simReadings(seed, 3*3600)
		a, _ := New("t1", DefaultConfig())
		b, _ := New("t1", DefaultConfig())
		ta, tb := replayAll(t, a, rs), replayAll(t, b, rs)
		if len(ta) == 0 {
			t.Fatalf("seed %d: no transitions at all (the overheat should raise)", seed)
		}
		if !sameTransitions(ta, tb) {
			t.Fatalf("seed %d: transitions differ", seed)
		}
		sa, _ := a.MarshalBinary()
		sb, _ := b.MarshalBinary()
		if string(sa) != string(sb) {
			t.Fatalf("seed %d: saved states differ", seed)
		}
	}
}

// TestSaveRestore: at many cut points, a detector restored from the saved
// state of the original continues exactly as the original does.
func TestSaveRestore(t *testing.T) {
	rs := simReadings(7, 2*3600)
	want := replayAll(t, mustNew(t), rs)
	for _, cut := range []int{0, 1, 17, 29, 30, 31, 500, len(rs) / 2, len(rs)/2 + 40, len(rs) - 1} {
		orig := mustNew(t)
		head := replayAll(t, orig, rs[:cut])
		state, err := orig.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var restored Detector
		if err := restored.UnmarshalBinary(state); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if restored.Truck() != "t1" || restored.Config().Hash() != DefaultConfig().Hash() {
			t.Fatalf("cut %d: restored identity %q %x", cut, restored.Truck(), restored.Config().Hash())
		}
		tail := replayAll(t, &restored, rs[cut:])
		if !sameTransitions(append(head, tail...), want) {
			t.Fatalf("cut %d: restored detector diverged", cut)
		}
	}
}

func mustNew(t *testing.T) *Detector {
	d, err := New("t1", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUnmarshalRejects(t *testing.T) {
	d := mustNew(t)
	replayAll(t, d, simReadings(3, 600))
	good, _ := d.MarshalBinary()
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("XXXXX"), good[5:]...)},
		{"bad version", append(append([]byte{}, good[:5]...), append([]byte{9}, good[6:]...)...)},
		{"truncated", good[:len(good)-1]},
		{"extra byte", append(append([]byte{}, good...), 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Detector
			if err := r.UnmarshalBinary(tc.data); !errors.Is(err, ErrState) {
				t.Fatalf("err = %v, want ErrState", err)
			}
		})
	}
}

// TestSetConfig: a reload keeps the learned band and changes the decision.
func TestSetConfig(t *testing.T) {
	d := mustNew(t)
	feed(d, sensors.CoolantTemp, 0, warm()...)
	before, _ := d.Band(sensors.CoolantTemp)
	cfg := DefaultConfig()
	cfg.Coolant.Sustain = 3 * time.Second
	if err := d.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	after, _ := d.Band(sensors.CoolantTemp)
	if before.Low != after.Low || before.High != after.High {
		t.Fatal("reload lost the learned band")
	}
	got := feed(d, sensors.CoolantTemp, 40, repeat(103.5, 5)...)
	if len(got) != 1 || got[0].Time != sec(42) || got[0].ConfigHash != cfg.Hash() {
		t.Fatalf("after reload: %+v", got)
	}
	bad := cfg
	bad.Cargo.Warmup = 0
	if err := d.SetConfig(bad); !errors.Is(err, ErrConfig) || d.Config().Hash() != cfg.Hash() {
		t.Fatalf("invalid reload: err %v, hash %x", err, d.Config().Hash())
	}
}

func TestObserveAllocs(t *testing.T) {
	d := mustNew(t)
	rs := simReadings(5, 600)
	buf := make([]Transition, 0, 4)
	allocs := testing.AllocsPerRun(5, func() {
		for _, r := range rs {
			d.Observe(r)
			buf = d.Advance(r.Time, buf[:0])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pass", allocs)
	}
}

func BenchmarkObserve(b *testing.B) {
	rs := simReadings(11, 4*3600)
	d, _ := New("t1", DefaultConfig())
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		d.Observe(rs[n])
		if n++; n == len(rs) {
			n = 0
		}
	}
	b.StopTimer()
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(1/perOp, "detect_readings_per_s:readings/s")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		for _, r := range rs[:1000] {
			d.Observe(r)
		}
	}))/1000, "detect_allocs_per_reading:allocs")
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"coolant": {"sustain": "5s", "warn_high": null}}`, `{"engine": {}}`,
		`{"cargo": {"warmup": 65}}`, `{"coolant": {"max_rise": 3, "rise_window": "0s"}}`, `[1]`, `{"cargo":{"decay":0.5}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not ErrConfig: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config invalid: %v", err)
		}
		d, err := New("f", c)
		if err != nil {
			t.Fatal(err)
		}
		feed(d, sensors.CoolantTemp, 0, warm()...)
	})
}

func FuzzUnmarshalBinary(f *testing.F) {
	d, _ := New("t1", DefaultConfig())
	f.Add([]byte{})
	s0, _ := d.MarshalBinary()
	f.Add(s0)
	var tmp []Transition
	for _, r := range simReadings(2, 300) {
		d.Observe(r)
		tmp = d.Advance(r.Time, tmp[:0])
	}
	s1, _ := d.MarshalBinary()
	f.Add(s1)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Detector
		if err := r.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("error not ErrState: %v", err)
			}
			return
		}
		// Whatever decoded must run without panicking and save again.
		for _, rd := range simReadings(3, 60) {
			r.Observe(rd)
		}
		r.Advance(t0+int64(time.Hour), nil)
		if _, err := r.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSeriesGeneric: the generic class flags the onset of a new extreme,
// and of unprecedented reading-to-reading variability within the range,
// for one reading each.
func TestSeriesGeneric(t *testing.T) {
	noise := func(i int) float64 { return float64((i*7919)%13) / 13 } // deterministic, 0..1
	cases := []struct {
		name  string
		value func(i int) float64
		kind  Kind
		from  int // first reading index where the alert may come
		to    int // last
	}{
		{"jump above everything seen", func(i int) float64 {
			if i >= 400 {
				return 5 + noise(i)
			}
			return noise(i)
		}, KindDeviation, 400, 400},
		{"slow wave starts jumping within its range", func(i int) float64 {
			if i >= 400 {
				return 0.2 + 0.6*float64(i%2)
			}
			return 0.5 + 0.45*math.Sin(float64(i)/16) + 0.02*noise(i)
		}, KindVolatility, 400, 403},
		{"stationary noise stays quiet", noise, KindInvalid, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSeries(DefaultGenericConfig())
			if err != nil {
				t.Fatal(err)
			}
			var raised []int
			for i := 0; i < 600; i++ {
				tr, ok := s.Observe(sec(float64(300*i)), tc.value(i))
				if ok && tr.Phase == Raised && i >= 300 { // after learning, as NAB's probation
					raised = append(raised, i)
					if tr.Kind != tc.kind {
						t.Errorf("reading %d: kind %s, want %s", i, tr.Kind, tc.kind)
					}
				}
				if (s.Score() >= 0.5) != s.Band().Open {
					t.Fatalf("reading %d: score %v but open=%v", i, s.Score(), s.Band().Open)
				}
			}
			if tc.kind == KindInvalid {
				if len(raised) != 0 {
					t.Fatalf("raised at %v", raised)
				}
				return
			}
			if len(raised) != 1 || raised[0] < tc.from || raised[0] > tc.to {
				t.Fatalf("raised at %v, want once in [%d, %d]", raised, tc.from, tc.to)
			}
		})
	}
}

// TestHashCoversEveryField: changing any one field of a SignalConfig
// changes the hash and survives a save/restore, so no setting can be
// forgotten by the hash or the saved state.
func TestHashCoversEveryField(t *testing.T) {
	base := DefaultConfig()
	rv := reflect.ValueOf(&base.Coolant).Elem()
	for i := 0; i < rv.NumField(); i++ {
		name := rv.Type().Field(i).Name
		c := DefaultConfig()
		f := reflect.ValueOf(&c.Coolant).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Float64:
			if math.IsNaN(f.Float()) {
				f.SetFloat(1)
			} else {
				f.SetFloat(f.Float() + 0.125)
			}
		default:
			t.Fatalf("field %s: kind %s not covered by this test", name, f.Kind())
		}
		if c.Hash() == base.Hash() {
			t.Errorf("field %s does not change the hash", name)
		}
		d, err := New("t1", c)
		if err != nil {
			continue // the perturbed value is invalid; the hash still covers it
		}
		b, _ := d.MarshalBinary()
		var r Detector
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
		if r.Config().Hash() != c.Hash() {
			t.Errorf("field %s does not survive save/restore", name)
		}
	}
}

// TestLearnOnReturn: an excursion beyond the band that comes back widens
// the band (by what MaxGrowth allows for its length) only once it is back;
// a steady climb is not learned on its way to the threshold, so it is
// raised sooner than with learning at once.
func TestLearnOnReturn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Coolant.MaxGrowth = 1 // °C/min
	cfg.Coolant.MaxRise = 0   // the jump to 95 is not the point here
	d, _ := New("t1", cfg)
	feed(d, sensors.CoolantTemp, 0, warm()...)
	if tr := feed(d, sensors.CoolantTemp, 40, repeat(95, 120)...); len(tr) != 0 {
		t.Fatalf("95 °C is inside the margin, got %v", tr)
	}
	if b, _ := d.Band(sensors.CoolantTemp); b.High > 91 {
		t.Fatalf("high %.3f while the excursion is under way, want 91 or less", b.High)
	}
	feed(d, sensors.CoolantTemp, 160, 90)
	if b, _ := d.Band(sensors.CoolantTemp); math.Abs(b.High-93) > 0.1 {
		t.Errorf("high %.3f after a 2-minute excursion to 95 came back, want 93 (91 + 1 °C/min × 2 min)", b.High)
	}

	// A move to a new level no faster than drift is learned at once.
	d, _ = New("t1", cfg)
	cfg.Coolant.MaxRise = DefaultConfig().Coolant.MaxRise // measures the rate
	if err := d.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	feed(d, sensors.CoolantTemp, 0, warm()...)
	for i := 0; i < 600; i++ {
		v := math.Min(95, 91+2*float64(i)/60) // 2 °C/min, then 95
		if tr, ok := d.Observe(sensors.Reading{Time: sec(40 + float64(i)), Value: v, Signal: sensors.CoolantTemp}); ok {
			t.Fatalf("drift to a new level raised %+v", tr)
		}
	}
	if b, _ := d.Band(sensors.CoolantTemp); b.High < 94.5 {
		t.Errorf("high %.2f after drifting to 95 and staying, want about 95", b.High)
	}

	// A climb of 3 °C/min from 90 °C, with MaxGrowth 0.5 °C/min: faster
	// than drift (5 × MaxGrowth).
	raiseAt := func(learnOnReturn bool) (at float64, high float64) {
		cfg := DefaultConfig()
		cfg.Coolant.MaxGrowth, cfg.Coolant.LearnOnReturn, cfg.Coolant.MinMargin = 0.5, learnOnReturn, 8.5
		d, _ := New("t1", cfg)
		feed(d, sensors.CoolantTemp, 0, warm()...)
		for i := 0; i < 600; i++ {
			v := 90 + 3*float64(i)/60
			if tr, ok := d.Observe(sensors.Reading{Time: sec(40 + float64(i)), Value: v, Signal: sensors.CoolantTemp}); ok && tr.Phase == Raised {
				b, _ := d.Band(sensors.CoolantTemp)
				return float64(i), b.High
			}
		}
		return math.Inf(1), math.NaN()
	}
	on, onHigh := raiseAt(true)
	off, offHigh := raiseAt(false)
	t.Logf("3 °C/min climb raised after %.0f s (band high %.2f) learning on return, %.0f s (high %.2f) learning at once", on, onHigh, off, offHigh)
	if !(on < off-30) || onHigh > 91.5 {
		t.Errorf("learning on return raised after %v s (high %.2f), learning at once after %v s: want it at least 30 s sooner, the band not followed up", on, onHigh, off)
	}
}

// TestProducts: "product" sets the cargo limits of that cargo; limits in
// "cargo" override it; an unknown product is an error naming it; the
// product is part of the hash and the saved state.
func TestProducts(t *testing.T) {
	for _, p := range Products {
		c, err := ParseConfig([]byte(`{"product": "` + p.Name + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.Product != p.Name || c.Cargo.WarnHigh != p.WarnHigh || c.Cargo.CritHigh != p.CritHigh || p.Why == "" {
			t.Errorf("%s: cargo limits %v/%v, want %v/%v", p.Name, c.Cargo.WarnHigh, c.Cargo.CritHigh, p.WarnHigh, p.CritHigh)
		}
		if c.Hash() == DefaultConfig().Hash() {
			t.Errorf("%s: hash equals the default's", p.Name)
		}
		d, _ := New("t1", c)
		b, _ := d.MarshalBinary()
		var r Detector
		if err := r.UnmarshalBinary(b); err != nil || r.Config().Product != p.Name || r.Config().Hash() != c.Hash() {
			t.Errorf("%s: restored %q (%v)", p.Name, r.Config().Product, err)
		}
	}
	c, err := ParseConfig([]byte(`{"product": "lpg", "cargo": {"crit_high": 52}}`))
	if err != nil || c.Cargo.WarnHigh != 40 || c.Cargo.CritHigh != 52 {
		t.Errorf("lpg with crit_high 52: %v/%v, %v", c.Cargo.WarnHigh, c.Cargo.CritHigh, err)
	}
	if _, err := ParseConfig([]byte(`{"product": "milk"}`)); !errors.Is(err, ErrConfig) || !contains(err.Error(), `"milk"`) {
		t.Errorf("unknown product: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"product": 3}`)); !errors.Is(err, ErrConfig) || !contains(err.Error(), "product") {
		t.Errorf("product not a string: %v", err)
	}
	bad := DefaultConfig()
	bad.Product = "milk"
	if _, err := New("t1", bad); !errors.Is(err, ErrConfig) {
		t.Errorf("New with an unknown product: %v", err)
	}
}

// truckReadings is a truck-mode stream: engine speed, oil and coolant
// temperature, cargo, with a 20-minute engine stop (bus quiet) and an
// overheat with a frozen sensor after it.
func truckReadings(t *testing.T) []sensors.Reading {
	e := newEngine(9)
	var rs []sensors.Reading
	var buf []sensors.Reading
	run := func(d time.Duration, each func()) {
		for end := e.t + int64(d); e.t < end; {
			if each != nil {
				each()
			}
			buf = e.step(time.Second, buf[:0])
			rs = append(rs, buf...)
		}
	}
	run(30*time.Minute, nil)
	run(5*time.Second, func() { e.on = false })
	run(20*time.Minute, func() { e.quiet = true })
	e.quiet, e.on, e.soak = false, true, 8
	run(20*time.Minute, nil)
	start := e.t
	run(30*time.Minute, func() {
		e.extraC = math.Min(25, 2*float64(e.t-start)/float64(time.Minute))
		if e.t-start > int64(3*time.Minute) && math.IsNaN(e.frozenC) {
			e.frozenC = 96
		}
	})
	return rs
}

// TestSaveRestoreTruckMode: with engine state and oil temperature in
// play, a restored detector continues exactly as the original.
func TestSaveRestoreTruckMode(t *testing.T) {
	rs := truckReadings(t)
	want := replayAll(t, mustNew(t), rs)
	stuck := false
	for _, tr := range want {
		stuck = stuck || tr.Active.Has(KindStuck)
	}
	if len(want) == 0 || !stuck {
		t.Fatalf("scenario raised %d transitions, stuck %v: it should raise the overheat and the frozen sensor", len(want), stuck)
	}
	for _, cut := range []int{1, 1000, 30*60*4 + 20, 30*60*4 + 100, len(rs) / 2, len(rs) - 500} {
		orig := mustNew(t)
		head := replayAll(t, orig, rs[:cut])
		state, err := orig.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var restored Detector
		if err := restored.UnmarshalBinary(state); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		again, _ := restored.MarshalBinary()
		if string(again) != string(state) {
			t.Fatalf("cut %d: state changed in a save/restore round trip", cut)
		}
		tail := replayAll(t, &restored, rs[cut:])
		if !sameTransitions(append(head, tail...), want) {
			t.Fatalf("cut %d: restored detector diverged", cut)
		}
	}
}

func TestObserveAllocsTruckMode(t *testing.T) {
	d := mustNew(t)
	rs := truckReadings(t)
	buf := make([]Transition, 0, 4)
	allocs := testing.AllocsPerRun(2, func() {
		for _, r := range rs {
			d.Observe(r)
			buf = d.Advance(r.Time, buf[:0])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pass", allocs)
	}
}
