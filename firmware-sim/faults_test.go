package firmwaresim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

func warmScenario(faults ...Fault) TruckScenario {
	warm := true
	return TruckScenario{Warm: &warm, Faults: faults}
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

func at(d time.Duration) Duration { return Duration(d) }

func TestFaultKinds(t *testing.T) {
	min := time.Minute
	for _, tc := range []struct {
		name  string
		fault Fault
		sig   sensors.Signal
		dur   time.Duration
		check func(t *testing.T, before, during []float64)
	}{
		{
			name: "coolant loss rises gradually past the limit", fault: Fault{Kind: FaultCoolantLoss, At: at(2 * min)},
			sig: sensors.CoolantTemp, dur: 12 * min,
			check: func(t *testing.T, before, during []float64) {
				if maxOf(before) > 97 {
					t.Errorf("coolant %.1f before the fault", maxOf(before))
				}
				if during[60] > 100 {
					t.Errorf("not gradual: %.1f after one minute", during[60])
				}
				if maxOf(during) < 110 {
					t.Errorf("coolant only reached %.1f", maxOf(during))
				}
			},
		},
		{
			name: "fan failure settles well above the band", fault: Fault{Kind: FaultFanFailure, At: at(min)},
			sig: sensors.CoolantTemp, dur: 10 * min,
			check: func(t *testing.T, before, during []float64) {
				if last := during[len(during)-1]; last < 104 || last > 125 {
					t.Errorf("fan failure settled at %.1f", last)
				}
			},
		},
		{
			name: "cargo heating rises fast", fault: Fault{Kind: FaultCargoHeating, At: at(min), Rate: 30, Peak: 90},
			sig: sensors.CargoTemp, dur: 5 * min,
			check: func(t *testing.T, before, during []float64) {
				if d := during[60] - before[len(before)-1]; d < 20 || d > 40 {
					t.Errorf("cargo rose %.1f in a minute, want about 30", d)
				}
				if m := maxOf(during); m > 92 {
					t.Errorf("cargo passed its peak: %.1f", m)
				}
			},
		},
		{
			name: "stuck sensor repeats one value", fault: Fault{Kind: FaultStuck, At: at(min), Duration: at(min), Signal: "cargo_temp"},
			sig: sensors.CargoTemp, dur: 3 * min,
			check: func(t *testing.T, before, during []float64) {
				for i := 1; i < 60; i++ {
					if during[i] != during[0] {
						t.Fatalf("value changed while stuck: %v != %v", during[i], during[0])
					}
				}
				if during[70] == during[0] {
					t.Errorf("still stuck after the window")
				}
			},
		},
		{
			name: "glitch is a single sample", fault: Fault{Kind: FaultGlitch, At: at(min), Count: 2, Every: at(30 * time.Second)},
			sig: sensors.CoolantTemp, dur: 3 * min,
			check: func(t *testing.T, before, during []float64) {
				n := 0
				for _, v := range during {
					if v > 120 {
						n++
					}
				}
				if n != 2 || during[0] < 120 || during[30] < 120 {
					t.Errorf("%d glitch samples (%.1f at 0s, %.1f at 30s), want 2", n, during[0], during[30])
				}
			},
		},
		{
			name: "noise burst widens the spread", fault: Fault{Kind: FaultNoiseBurst, At: at(min), Duration: at(min), Amplitude: 4},
			sig: sensors.CoolantTemp, dur: 2 * min,
			check: func(t *testing.T, before, during []float64) {
				if sd(during) < 2*sd(before) || sd(during) < 2 {
					t.Errorf("sd before %.2f, during %.2f", sd(before), sd(during))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := simulateSignal(11, warmScenario(tc.fault), tc.dur, tc.sig)
			k := int(time.Duration(tc.fault.At) / time.Second)
			tc.check(t, v[:k], v[k:])
		})
	}
}

func sd(v []float64) float64 {
	var m, s float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)))
}

func TestEffects(t *testing.T) {
	tr := &truck{faults: newFaultStates([]Fault{
		{Kind: FaultDropout, Signal: "wheel_speed", At: at(time.Second), Mode: "error"},
		{Kind: FaultCANSilence, At: at(2 * time.Second), Duration: at(time.Second)},
		{Kind: FaultGPSLoss, At: at(3 * time.Second)},
		{Kind: FaultClockJump, At: at(3 * time.Second), Offset: at(-time.Hour)},
	})}
	e := tr.effectsAt(0)
	if e.dropout[sensors.WheelSpeed] != "" || e.canSilent || e.gpsLost {
		t.Fatalf("effects before any fault: %+v", e)
	}
	e = tr.effectsAt(2500 * time.Millisecond)
	if e.dropout[sensors.WheelSpeed] != "error" || !e.canSilent {
		t.Fatalf("effects at 2.5s: %+v", e)
	}
	e = tr.effectsAt(4 * time.Second)
	if e.canSilent || !e.gpsLost || e.dropout[sensors.VPLatitude] != "not_available" || e.clockOffset != -time.Hour {
		t.Fatalf("effects at 4s: %+v", e)
	}
}

func TestGPSFollowsRouteAtSpeed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 0))
	route := [][2]float64{{51.95, 4.14}, {51.26, 4.40}}
	p := newPhysics(rng, 0, true, simStart, route, nil)
	var travelled, integral float64
	lat, lon := p.lat, p.lon
	for i := 0; i < 6000; i++ { // 10 minutes
		p.step(DefaultTick)
		integral += p.speed / 3.6 * DefaultTick.Seconds()
		travelled += distance(lat, lon, p.lat, p.lon)
		lat, lon = p.lat, p.lon
	}
	if integral < 5000 {
		t.Fatalf("only %.0f m in 10 minutes", integral)
	}
	if math.Abs(travelled-integral) > 0.02*integral {
		t.Fatalf("moved %.0f m along the track, speed integrates to %.0f m", travelled, integral)
	}
	// Still on the corridor between the two points (roads wander <~3 km).
	if p.lat > 51.96 || p.lat < 51.25 || p.lon < 4.0 || p.lon > 4.55 {
		t.Fatalf("left the route: %.4f %.4f", p.lat, p.lon)
	}
}

func TestCargoFollowsAmbientAndSun(t *testing.T) {
	amb := 20.0
	ts := TruckScenario{Ambient: &amb}
	rng := rand.New(rand.NewPCG(5, 0))
	night := newPhysics(rng, 0, true, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), ts.Route, ts.Ambient)
	rng2 := rand.New(rand.NewPCG(5, 0))
	day := newPhysics(rng2, 0, true, time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), ts.Route, ts.Ambient)
	night.cargo, day.cargo = 10, 10
	for i := 0; i < 4*36000; i++ { // 4 hours
		night.step(DefaultTick)
		day.step(DefaultTick)
	}
	if !(night.cargo > 11 && day.cargo > night.cargo+3) {
		t.Fatalf("after 4 h from 10 °C: cargo %.1f at night, %.1f by day (ambient mean 20)", night.cargo, day.cargo)
	}
}

func TestLoadRaisesCoolant(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 0))
	p := newPhysics(rng, 0, true, simStart, nil, nil)
	p.load = 0.1
	var lo, hi float64
	for i := 0; i < 3000; i++ {
		p.load = 0.1
		p.engineStep(0.1)
	}
	lo = p.engine
	for i := 0; i < 3000; i++ {
		p.load = 0.9
		p.engineStep(0.1)
	}
	hi = p.engine
	if hi-lo < 2 || hi > p.setpoint+6.5 {
		t.Fatalf("coolant %.1f at low load, %.1f at high load (set point %.1f)", lo, hi, p.setpoint)
	}
}
