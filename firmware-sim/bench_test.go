package firmwaresim

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkTruckSecond measures the simulator's own work for one truck-second
// at real rates (10 ticks: physics, faults, 13 frames encoded and decoded
// for truth), without socket I/O. 1,000 trucks need 1,000 truck-seconds per
// second; the metric says how many one core can do.
func BenchmarkTruckSecond(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	warm := true
	ts := TruckScenario{Warm: &warm, Faults: []Fault{{Kind: FaultNoiseBurst, At: Duration(time.Hour)}}}
	tr := &truck{
		id: "truck-01", scen: ts, started: true,
		phys:   newPhysics(rand.New(rand.NewPCG(1, 0)), 0, true, simStart, nil, nil),
		faults: newFaultStates(ts.Faults),
	}
	now := simStart
	b.ReportAllocs()
	for b.Loop() {
		for range 10 {
			s.step(tr, now)
			now = now.Add(DefaultTick)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "truck_seconds_per_s:truck-s/s")
}
