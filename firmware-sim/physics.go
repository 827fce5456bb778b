package firmwaresim

import (
	"math"
	"math/rand/v2"
	"time"
)

// physics is one truck's simulated state. It advances in fixed steps, so
// a given seed always gives the same values.
type physics struct {
	rng *rand.Rand

	elapsed float64 // seconds since the truck started

	ambient  float64 // °C
	setpoint float64 // thermostat-regulated coolant temperature, °C
	engine   float64 // true engine coolant temperature, °C (before faults)
	coolant  float64 // coolant value sent, °C
	cargo    float64 // cargo-tank temperature, °C

	speed       float64 // km/h
	cruise      float64 // target speed, km/h
	cruiseUntil float64 // elapsed seconds when the target changes
	load        float64 // 0..1 engine load

	lat, lon float64 // degrees
	heading  float64 // degrees from north, clockwise
	sats     int
}

func newPhysics(rng *rand.Rand, idx int, warm bool) *physics {
	p := &physics{rng: rng}
	p.ambient = 10 + 15*rng.Float64()
	p.setpoint = 88 + 4*rng.Float64()
	if warm {
		p.engine = p.setpoint
	} else {
		p.engine = p.ambient
	}
	p.cargo = p.ambient + rng.Float64()
	// Trucks start spread around the Rotterdam port area, heading inland.
	p.lat = 51.90 + 0.2*rng.Float64()
	p.lon = 4.20 + 0.4*rng.Float64() + 0.001*float64(idx%100)
	p.heading = 60 + 60*rng.Float64()
	p.sats = 8 + rng.IntN(5)
	p.cruise = 60 + 25*rng.Float64()
	p.cruiseUntil = 60 + 120*rng.Float64()
	return p
}

// step advances the state by dt.
func (p *physics) step(dt time.Duration) {
	s := dt.Seconds()
	p.elapsed += s

	// Driving: accelerate towards a cruise target that changes now and then,
	// with small Ornstein-Uhlenbeck fluctuations.
	if p.elapsed >= p.cruiseUntil {
		p.cruise = 50 + 40*p.rng.Float64()
		p.cruiseUntil = p.elapsed + 60 + 240*p.rng.Float64()
	}
	accel := math.Max(-3, math.Min(1.5, (p.cruise-p.speed)*0.2)) // km/h per s
	p.speed += accel*s + 0.3*math.Sqrt(s)*p.rng.NormFloat64()
	p.speed = math.Max(0, p.speed)
	p.load = math.Max(0.1, math.Min(1, 0.25+p.speed/160+accel/3))

	// Engine: warms towards the thermostat set point at a rate set by load,
	// then the thermostat holds it; load and ambient move it a little.
	target := p.setpoint + 3*(p.load-0.5) + 0.05*(p.ambient-15)
	tau := 240 / (0.3 + p.load) // seconds
	if p.engine < p.setpoint-3 {
		p.engine += (target + 20 - p.engine) / tau * s // warm-up: thermostat closed
	} else {
		p.engine += (target - p.engine) / 20 * s
	}

	// Cargo tank: a large thermal mass following ambient plus sun load.
	sun := 4 * math.Max(0, math.Sin(p.elapsed/3600*math.Pi/12)) // slow, mild
	p.cargo += (p.ambient + sun - p.cargo) / 3600 * s

	// Position: move along the heading at the current speed.
	p.heading += 0.5 * math.Sqrt(s) * p.rng.NormFloat64()
	dist := p.speed / 3.6 * s // metres
	const earth = 6371000.0
	rad := p.heading * math.Pi / 180
	p.lat += dist * math.Cos(rad) / earth * 180 / math.Pi
	p.lon += dist * math.Sin(rad) / (earth * math.Cos(p.lat*math.Pi/180)) * 180 / math.Pi
	if p.rng.IntN(600) == 0 {
		p.sats = max(4, min(14, p.sats+p.rng.IntN(3)-1))
	}
}

// coolantSensor is the coolant value the ECU sends, with sensor noise.
func (p *physics) coolantSensor() float64 { return p.engine + 0.2*p.rng.NormFloat64() }

// cargoSensor is the probe value, with sensor noise.
func (p *physics) cargoSensor() float64 { return p.cargo + 0.05*p.rng.NormFloat64() }
