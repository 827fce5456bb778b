package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCargoLoadingSettles: warm product loaded into the tank (firmware-sim's
// load event: the gap to the product closes as (1 - t/L)^3, a rise that
// slows from its start) is normal; the same tank with a fire warming it by
// 0.5 °C/min, which does not slow, is raised.
func TestCargoLoadingSettles(t *testing.T) {
	const base, step, loadS = 10.0, 7.0, 1200.0
	for _, fire := range []bool{false, true} {
		for seed := uint64(1); seed <= 6; seed++ {
			s, err := NewSeries(DefaultConfig().Cargo)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(seed, 7))
			raised := int64(-1)
			for sec := int64(0); sec < 3600; sec++ {
				v := base
				if u := float64(sec - 1200); u > 0 {
					if fire {
						v += float64(0.5 * u / 60)
					} else {
						v += step - float64(step*math.Pow(math.Max(0, 1-u/loadS), 3))
					}
				}
				v = math.Round((v+0.05*rng.NormFloat64())*10) / 10
				tr, ok := s.Observe(sec*int64(time.Second), v)
				if ok && tr.Phase == Raised && raised < 0 {
					raised = sec
				}
			}
			switch {
			case !fire && raised >= 0:
				t.Errorf("seed %d: loading raised an alert at %d s", seed, raised)
			case fire && raised < 0:
				t.Errorf("seed %d: fire raised nothing", seed)
			case fire && raised > 1200+8*60:
				// band edge ~10.1 + margin 3: departs about 6.5 min in.
				t.Errorf("seed %d: fire raised at %d s, want by %d", seed, raised, 1200+8*60)
			}
		}
	}
}
