package firmwaresim

import (
	"math"
	"slices"
	"time"
)

// truckModel is the realistic heavy-diesel tanker (TruckScenario.Model
// "truck"): ignition and engine on/off, a three-node engine (head,
// coolant, block) with thermostat, radiator, ram air, an on/off fan with
// hysteresis and a cab heater, heat soak after a stop, load from speed, acceleration, grade,
// payload and the PTO pump, oil and fuel temperatures, and a duty cycle of
// idles, engine-off breaks and loading. It lives beside the original model
// (physics' own fields) so that old scenarios keep their values bit for
// bit: a truck without it never touches this code or its random draws.
//
// Temperatures are °C; heat flows are in °C per second of the coolant
// node (whose heat capacity is 1; the head's is headCap, the block's
// blockCap).
type truckModel struct {
	// Engine state.
	engineOn  bool    // the engine runs
	keyOn     bool    // the engine is stopped with the ignition on: ECU awake, heater pump running
	stopKeyOn bool    // the current engine-off stop keeps the key on
	stoppedAt float64 // elapsed s when the ignition last went off (ECU quiet soon after)
	rpm       float64
	head      float64 // hot metal around the combustion chambers
	block     float64 // engine bulk mass
	oil, fuel float64
	fanOn     bool

	// Truck constants (per truck, from the seed).
	thOpen      float64 // thermostat starts opening, °C (82..86)
	thSpan      float64 // °C from starting to open to fully open
	fanOnAt     float64 // fan switches on at, °C
	fanOffAt    float64 // and off at
	idleHeat    float64 // heat into the head at idle
	loadHeat    float64 // extra at full load
	payload     float64 // 0..1 of 25 t
	hills       float64 // steepest grade of generated sections, fraction
	randomStops bool

	// Drive inputs.
	grade      float64 // current road grade, fraction
	accel      float64 // smoothed acceleration, m/s² (the driver's, not the sensor's jitter)
	gradeUntil float64 // elapsed s until which grade holds
	pto        float64 // PTO (pump) load 0..1 while loading

	// Loading: the cargo mixes towards product until loadUntil.
	product   float64
	loadUntil float64

	// Duty: the current stop's kind and end (elapsed s); the next
	// scripted event.
	stopKind EventKind
	stopEnd  float64
	events   []Event
	next     int

	// Fault inputs set each step.
	thermostatStuck bool
	coolingLost     float64 // 0..1 share of radiator capacity lost (coolant loss)
	overheatLevel   float64 // coolant forced at least to this (overheat); NaN none
}

// The engine is three lumped heat capacities (coolant node 1):
//   - head: the hot metal around the combustion chambers, which takes the
//     fuel's heat; it is hotter than the coolant by the heat flow, and
//     after a stop that difference soaks into the still coolant (heat
//     soak: the coolant rises a few °C before it cools);
//   - coolant: what the sensor at the engine outlet reads; it gives heat
//     through the thermostat to the radiator (ram air, fan) and to the
//     block;
//   - block: the engine's bulk mass, warmed with the coolant while the
//     thermostat is closed (the small loop runs through it); once open,
//     most of the flow goes through the radiator loop and the block
//     follows slowly, so fan cycling moves only head and coolant: the
//     sawtooth of a real engine at idle.
const (
	headCap      = 1.0
	blockCap     = 8.5
	headCouple   = 0.05   // head -> coolant per s with the pump running
	headSoak     = 0.012  // ... stopped (heat soak)
	blockClosed  = 0.05   // coolant <-> block, thermostat closed
	blockOpen    = 0.004  // ... fully open
	blockStopped = 0.0015 // ... pump stopped
	radBase      = 0.0008 // radiator at no airflow and no fan, per s per °C
	radRam       = 0.0114 // extra at full ram air (80 km/h)
	radFan       = 0.008  // extra with the fan on
	bypass       = 0.03   // thermostat share open when closed (bypass, leak)
	coolantLoss  = 0.0008 // coolant to ambient through hoses and heater, pump running
	coolantStill = 0.0001 // ... stopped
	blockLoss    = 0.0002 // block to ambient, running (the coolant flow keeps it warm)
	blockStill   = 0.0009 // ... stopped: the stopped engine cools through its surface
	heater       = 0.0012 // cab heater, per s per °C above the cab, at full demand
	heaterKeyOn  = 0.0024 // ... engine stopped, ignition on (electric pump)
	maxBoil      = 128.0  // a pressurised system boils over here
	ecuLinger    = 3.0    // s the ECU keeps sending (0 rpm) after the engine stops
)

// newTruckModel draws truck constants after the original model has taken
// its draws, so the original part of physics is unchanged.
func newTruckModel(p *physics, ts TruckScenario, warm bool) *truckModel {
	rng := p.rng
	m := &truckModel{engineOn: true, randomStops: ts.Stops != "none"}
	m.thOpen = 82 + 4*rng.Float64()
	m.thSpan = 7 + 2*rng.Float64()
	m.fanOnAt = m.thOpen + m.thSpan + 3 + 2*rng.Float64()
	m.fanOffAt = m.fanOnAt - 5 - 2*rng.Float64()
	m.idleHeat = 0.22 + 0.02*rng.Float64()
	m.loadHeat = 0.95 + 0.1*rng.Float64()
	m.payload = 0.3 + 0.7*rng.Float64()
	if ts.Payload != nil {
		m.payload = *ts.Payload
	}
	m.hills = (1 + 3*rng.Float64()) / 100
	if ts.Hills != nil {
		m.hills = *ts.Hills / 100
	}
	p.swing = 3 + 5*rng.Float64()
	if ts.AmbientSwing != nil {
		p.swing = *ts.AmbientSwing
	}
	if ts.Ambient == nil {
		// Hot and cold days: a daily mean from -22 to +33 °C (with the
		// swing, -30 to +41 °C).
		p.ambientBase = -22 + 55*rng.Float64()
	}
	if ts.SunLoad != nil {
		p.sunGain = *ts.SunLoad
	}
	p.ambient = p.ambientAt(0)
	p.cargo = p.ambient + 2*rng.NormFloat64()
	if warm {
		p.engine = m.thOpen + 0.4*m.thSpan
		m.head, m.block = p.engine+3, p.engine
	} else {
		p.engine = p.ambient
		m.head, m.block = p.ambient, p.ambient
	}
	m.oil, m.fuel = m.block, p.ambient
	m.events = slices.Clone(ts.Events)
	slices.SortStableFunc(m.events, func(a, b Event) int { return int(a.At - b.At) })
	m.overheatLevel = math.NaN()
	p.stopUntil = -1
	return m
}

// running reports whether the engine runs.
func (m *truckModel) running() bool { return m.engineOn }

// ecuAwake reports whether the engine ECU sends (EEC1, ET1, AMB, CCVS):
// while the engine runs or the ignition is on, and ecuLinger seconds after
// the ignition went off.
func (m *truckModel) ecuAwake(elapsed float64) bool {
	return m.engineOn || m.keyOn || elapsed-m.stoppedAt < ecuLinger
}

// duty starts and ends stops: scripted events first, then, at a route
// point's stop, a generated one. It runs before drive.
func (p *physics) duty(s float64) {
	m := p.truck
	for m.next < len(m.events) && p.elapsed >= time.Duration(m.events[m.next].At).Seconds() {
		e := m.events[m.next]
		m.next++
		end := p.elapsed + time.Duration(e.Duration).Seconds()
		if e.Kind == EventClimb {
			m.grade, m.gradeUntil = orDefault(e.Grade, 6)/100, end
			continue
		}
		m.stopKind, m.stopEnd, m.stopKeyOn = e.Kind, end, e.KeyOn
		if e.Kind == EventLoad {
			m.product = p.ambient + 8
			if e.ProductTemp != nil {
				m.product = *e.ProductTemp
			}
		}
	}
	if m.stopKind != "" {
		p.stopUntil = m.stopEnd
		if p.elapsed >= m.stopEnd {
			if m.stopKind == EventLoad {
				m.payload = 1
			}
			m.stopKind = ""
		}
	}
	stopped := m.stopKind != "" && p.speed == 0
	wantOn := !(stopped && m.stopKind == EventEngineOff)
	keyOn := !wantOn && m.stopKeyOn
	if (m.engineOn || m.keyOn) && !wantOn && !keyOn {
		m.stoppedAt = p.elapsed
	}
	m.engineOn, m.keyOn = wantOn, keyOn
	m.pto = 0
	if stopped && m.stopKind == EventLoad {
		m.pto = 0.25
		m.loadUntil = m.stopEnd
	}
	if p.elapsed >= m.gradeUntil {
		// Generated roads: a new grade every 0.5-3 km of driving time.
		m.grade = m.hills * (2*p.rng.Float64() - 1)
		m.gradeUntil = p.elapsed + 30 + 150*p.rng.Float64()
	}
}

// routeStop picks a generated stop for a route point (the original model
// stands there stop seconds with the engine running).
func (p *physics) routeStop(stop float64) {
	m := p.truck
	if !m.randomStops || m.stopKind != "" {
		return
	}
	r := p.rng.Float64()
	m.stopKeyOn = false
	switch {
	case r < 0.28: // a short idle, as the original model
		m.stopKind, m.stopEnd = EventIdle, p.elapsed+stop
	case r < 0.35: // as short, the engine stopped with the key on
		m.stopKind, m.stopEnd, m.stopKeyOn = EventEngineOff, p.elapsed+stop, true
	case r < 0.55: // waiting with the engine idling
		m.stopKind, m.stopEnd = EventIdle, p.elapsed+300+1500*p.rng.Float64()
	case r < 0.85: // engine off: a delivery, a break; sometimes hours
		d := 600 + 3000*p.rng.Float64()
		if p.rng.Float64() < 0.2 {
			d = 2*3600 + 6*3600*p.rng.Float64()
		}
		m.stopKind, m.stopEnd = EventEngineOff, p.elapsed+d
		if p.rng.Float64() < 0.5 {
			m.payload = 0 // delivered
		}
	default: // loading warm product from storage
		m.stopKind, m.stopEnd = EventLoad, p.elapsed+1200+1500*p.rng.Float64()
		// Storage tanks follow the daily mean, warmed by the sun.
		m.product = math.Min(35, p.ambientBase+3+8*p.rng.Float64())
	}
	p.stopUntil = m.stopEnd
}

// truckLoad is the engine load (0..1) from the power the drive needs: rolling
// resistance, air drag, grade and acceleration for the truck's mass, plus
// the PTO pump; idle when standing.
func (p *physics) truckLoad(accel float64) float64 {
	m := p.truck
	if !m.engineOn {
		return 0
	}
	v := p.speed / 3.6
	mass := 15000 + 25000*m.payload
	const g, crr, cda, rho, pmax = 9.81, 0.006, 6.0, 1.2, 330e3
	m.accel += (accel - m.accel) * math.Min(1, p.stepSeconds/4)
	force := mass*g*(crr+m.grade) + 0.5*rho*cda*v*v + mass*math.Max(-1, m.accel)
	load := math.Max(0, force*v) / pmax
	return math.Max(0.02, math.Min(1, load+m.pto))
}

// truckEngine advances the engine: heat from the load into the block, the
// block into the coolant (strongly with the pump, weakly without: heat
// soak), the coolant out through the thermostat and radiator (ram air and
// fan) and to ambient.
func (p *physics) truckEngine(s float64) {
	m := p.truck
	amb := p.ambient
	airflow := math.Min(1, p.speed/80)
	if m.engineOn {
		idle := 620 + 40*math.Sin(p.elapsed/7)
		m.rpm = idle
		if p.speed > 1 || p.load > 0.1 {
			m.rpm = math.Max(idle, 950+850*p.load+150*math.Sin(p.elapsed/23))
		}
		if m.pto > 0 {
			m.rpm = 1000
		}
	} else {
		m.rpm = 0
	}
	tc, th, tb := p.engine, m.head, m.block
	var dc, dh, db float64
	// The cab heater draws more the colder the day (full below -10 °C).
	demand := math.Max(0, math.Min(1, (15-amb)/25))
	if m.engineOn {
		q := m.idleHeat + m.loadHeat*p.load
		open := math.Max(bypass, math.Min(1, (tc-m.thOpen)/m.thSpan))
		if m.thermostatStuck {
			open = bypass
		}
		if tc >= m.fanOnAt {
			m.fanOn = true
		} else if tc <= m.fanOffAt {
			m.fanOn = false
		}
		rad := radBase + radRam*airflow
		if m.fanOn && !p.fanFailed {
			rad += radFan
		}
		rad *= 1 - m.coolingLost
		kb := blockClosed + (blockOpen-blockClosed)*(open-bypass)/(1-bypass)
		fh, fb := headCouple*(th-tc), kb*(tc-tb)
		dh = (q - fh) / headCap
		dc = fh - fb - open*rad*(tc-amb) - coolantLoss*(tc-amb) - heater*demand*math.Max(0, tc-20)
		db = (fb - blockLoss*(tb-amb)) / blockCap
	} else {
		m.fanOn = false
		fh, fb := headSoak*(th-tc), blockStopped*(tc-tb)
		dh = -fh / headCap
		dc = fh - fb - coolantStill*(tc-amb)
		if m.keyOn {
			// Ignition on: the heater's electric pump keeps coolant
			// flowing through the heater core.
			dc -= heaterKeyOn * demand * math.Max(0, tc-20)
		}
		db = (fb - blockStill*(tb-amb)) / blockCap
	}
	tc += dc * s
	th += dh * s
	tb += db * s
	if !math.IsNaN(m.overheatLevel) && tc < m.overheatLevel {
		// A forced overheat heats the head with it.
		th += m.overheatLevel - tc
		tc = m.overheatLevel
	}
	tc, th = math.Min(tc, maxBoil), math.Min(th, maxBoil+20)
	p.engine, m.head, m.block = tc, th, tb
	// Oil runs hotter than the block under load; fuel warms from the
	// return flow and cools towards the tank (ambient).
	oilTarget := (tc+th)/2 + 2
	if m.engineOn {
		oilTarget += 10 * p.load
	}
	m.oil += (oilTarget - m.oil) / 300 * s
	fuelTarget := amb
	if m.engineOn {
		fuelTarget = amb + 0.25*math.Max(0, tc-amb)
	}
	m.fuel += (fuelTarget - m.fuel) / 1800 * s
}

// truckCargo: the tank follows ambient and sun, faster when nearly empty;
// loading mixes in product.
func (p *physics) truckCargo(s float64) {
	m := p.truck
	target := p.ambient + p.sunGain*p.sun()
	tau := p.tau * (0.5 + 0.5*m.payload)
	p.cargo += (target - p.cargo) / tau * s
	if p.elapsed < m.loadUntil {
		left := math.Max(60, m.loadUntil-p.elapsed)
		p.cargo += (m.product - p.cargo) * math.Min(1, s/left*3)
	}
	if p.cargoHeatActive {
		p.cargo += p.cargoHeatRate * s
	}
}

// Realistic sensors: oil and ambient with the DBC's 1/32 °C, fuel 1 °C.
func (p *physics) oilSensor() float64  { return p.truck.oil + 0.2*p.rng.NormFloat64() }
func (p *physics) fuelSensor() float64 { return p.truck.fuel + 0.3*p.rng.NormFloat64() }
func (p *physics) rpmSensor() float64 {
	if p.truck.rpm == 0 {
		return 0
	}
	return p.truck.rpm + 3*p.rng.NormFloat64()
}

// ambientSensor reads the air at the truck: ambient, warmed by the engine
// bay and the road when slow.
func (p *physics) ambientSensor() float64 {
	m := p.truck
	heat := 0.0
	if m.engineOn {
		heat = 1.5 * (1 - math.Min(1, p.speed/40))
	}
	return p.ambient + heat + 1.5*p.sun() + 0.1*p.rng.NormFloat64()
}
