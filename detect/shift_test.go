package detect

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestSeriesShift: the generic class flags a level that leaves its usual
// distribution while staying within the range seen (two old spikes make a
// new extreme impossible), as a deviation, soon after the shift and at
// the same time whether read every 5 minutes or every minute; the same
// noise without the shift raises nothing.
func TestSeriesShift(t *testing.T) {
	const shiftAt = 5 * 24 * time.Hour
	value := func(rng *rand.Rand, at time.Duration, shifted bool) float64 {
		v := 10 + rng.NormFloat64()
		if at >= 24*time.Hour && at < 24*time.Hour+5*time.Minute || at >= 2*24*time.Hour && at < 2*24*time.Hour+5*time.Minute {
			v += 20 // the spikes that set the range
		}
		if shifted && at >= shiftAt {
			v += 8 // eight noise standard deviations, inside the range
		}
		return v
	}
	got := map[time.Duration][]time.Duration{}
	for _, tc := range []struct {
		every   time.Duration
		shifted bool
	}{{5 * time.Minute, true}, {time.Minute, true}, {5 * time.Minute, false}, {time.Minute, false}} {
		s, err := NewSeries(DefaultGenericConfig())
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, uint64(tc.every)))
		var raised []time.Duration
		for at := time.Duration(0); at < 7*24*time.Hour; at += tc.every {
			tr, ok := s.Observe(t0+int64(at), value(rng, at, tc.shifted))
			if ok && tr.Phase == Raised && at > 3*24*time.Hour { // after the spikes' alerts
				raised = append(raised, at)
				if tr.Kind != KindDeviation {
					t.Errorf("every %v: raised %s, want deviation", tc.every, tr.Kind)
				}
			}
		}
		if !tc.shifted {
			if len(raised) != 0 {
				t.Errorf("every %v, no shift: raised at %v", tc.every, raised)
			}
			continue
		}
		got[tc.every] = raised
		if len(raised) != 1 || raised[0] < shiftAt || raised[0] > shiftAt+3*time.Hour {
			t.Errorf("every %v: raised at %v, want once within 3 h after the shift at %v", tc.every, raised, shiftAt)
		}
	}
	if a, b := got[5*time.Minute], got[time.Minute]; len(a) == 1 && len(b) == 1 && (a[0]-b[0] > 10*time.Minute || b[0]-a[0] > 10*time.Minute) {
		t.Errorf("raised at %v every 5 min, at %v every minute: want within 10 min", a[0], b[0])
	}
	t.Logf("shift at %v raised at %v (every 5 min), %v (every minute)", shiftAt, got[5*time.Minute], got[time.Minute])
}

// TestSeriesObserveAllocs: the generic class, with every condition on,
// never allocates per reading.
func TestSeriesObserveAllocs(t *testing.T) {
	s, err := NewSeries(DefaultGenericConfig())
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	allocs := testing.AllocsPerRun(20000, func() {
		s.Observe(t0+int64(i)*int64(5*time.Minute), float64(i%97)+float64(i/5000))
		s.Score()
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reading, want 0", allocs)
	}
}

// TestShiftNotOnDrift: over a whole day, the slowly drifting noisy 1 Hz
// temperatures of observation 7 (read every second and every 5 s) raise
// no level shift: a random-walk level is the long-term spread itself, not
// a departure from it.
func TestShiftNotOnDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("a day of readings per series")
	}
	for _, every := range []int{1, 5} {
		raised, shifts := 0, 0
		for seed := uint64(0); seed < 6; seed++ {
			x, err := NewSeries(DefaultGenericConfig())
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range driftSeries(seed, 24) {
				if i%every != 0 {
					continue
				}
				if tr, ok := x.Observe(sec(float64(i)), v); ok && tr.Phase == Raised {
					raised++
					if x.s.st.ShiftOn {
						shifts++
						t.Errorf("every %d s, series %d at %v: level shift raised at %v", every, seed, time.Duration(i)*time.Second, v)
					}
				}
			}
		}
		t.Logf("every %d s: %d alerts in 144 h (%.3f per hour), %d level shifts", every, raised, float64(raised)/144, shifts)
		if float64(raised)/144 > 0.1 {
			t.Errorf("every %d s: %.3f alerts per hour, want at most 0.1", every, float64(raised)/144)
		}
	}
}
