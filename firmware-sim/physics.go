package firmwaresim

import (
	"math"
	"math/rand/v2"
	"time"
)

// physics is one truck's simulated world: engine, cargo tank, weather and
// a drive along a route. It advances in fixed steps from a seeded random
// source, so a seed (and start time) always gives the same values.
type physics struct {
	rng *rand.Rand

	start   time.Time // sim clock at the truck's start (time of day, sun)
	elapsed float64   // seconds since start

	// Weather.
	ambientBase float64 // daily mean ambient, °C
	ambient     float64 // °C
	cloud       float64 // 0 clear .. 1 overcast
	sunGain     float64 // °C the tank gains in full sun
	swing       float64 // half amplitude of the diurnal swing, °C

	// Engine.
	setpoint float64 // thermostat set point, °C (88-92)
	engine   float64 // true coolant temperature, °C
	load     float64 // 0..1

	// Cargo tank.
	cargo float64 // true cargo temperature, °C
	tau   float64 // cargo thermal time constant, s

	// Drive.
	route     []waypoint
	seg       int     // current segment: route[seg] -> route[seg+1]
	segPos    float64 // metres along the segment
	speed     float64 // km/h
	driver    float64 // fraction of the limit the driver keeps (0.9..1)
	stopUntil float64 // elapsed seconds until which the truck stands (loading)
	slowUntil float64 // elapsed seconds until which traffic slows it
	lat, lon  float64 // degrees
	heading   float64 // degrees from north, clockwise
	sats      int

	// Fault inputs, set by the scenario each step.
	fanFailed       bool
	coolantLoss     float64 // °C added to the equilibrium by coolant loss
	cargoHeatRate   float64 // °C/s added by an external fire/heat source
	cargoHeatActive bool

	// truck is the realistic model (TruckScenario.Model "truck"), nil for
	// the original one.
	truck       *truckModel
	stepSeconds float64 // the realistic model's step
}

// waypoint is a route point; speed is the limit (km/h) on the way to it,
// stop is how long the truck stands there (s).
type waypoint struct {
	lat, lon float64
	limit    float64
	stop     float64
}

// Places trucks drive between (Benelux and the Rhine-Ruhr area).
var places = [][2]float64{
	{51.9500, 4.1400}, // Rotterdam Maasvlakte
	{51.2600, 4.4000}, // Antwerp port
	{51.6800, 4.6000}, // Moerdijk
	{52.0900, 5.1200}, // Utrecht
	{51.4400, 5.4700}, // Eindhoven
	{51.3700, 6.1700}, // Venlo
	{51.4300, 6.7600}, // Duisburg
	{50.9400, 6.9600}, // Cologne
	{51.0500, 3.7200}, // Ghent
	{52.3800, 4.9000}, // Amsterdam
	{51.9800, 5.9100}, // Arnhem
	{51.5900, 4.7800}, // Breda
}

// newPhysics sets up truck idx. route may be nil for a generated route.
func newPhysics(rng *rand.Rand, idx int, warm bool, start time.Time, route [][2]float64, ambient *float64) *physics {
	p := &physics{rng: rng, start: start}
	p.ambientBase = 8 + 17*rng.Float64()
	if ambient != nil {
		p.ambientBase = *ambient
	}
	p.cloud = 0.7 * rng.Float64()
	p.sunGain = 5 + 4*rng.Float64()
	p.swing = 5
	p.ambient = p.ambientAt(0)
	p.setpoint = 88 + 4*rng.Float64()
	if warm {
		p.engine = p.setpoint
	} else {
		p.engine = p.ambient
	}
	p.tau = 2*3600 + 2*3600*rng.Float64() // a full tank reacts over hours
	p.cargo = p.ambient + 2*rng.NormFloat64()
	p.driver = 0.9 + 0.1*rng.Float64()
	p.sats = 8 + rng.IntN(5)
	p.route = makeRoute(rng, idx, route)
	p.lat, p.lon = p.route[0].lat, p.route[0].lon
	p.heading = bearing(p.route[0], p.route[1])
	if warm {
		// A warm truck is already on its way.
		p.speed = p.route[1].limit * p.driver
	}
	return p
}

// newTruckPhysics sets up truck idx with scenario ts: the original model,
// or the realistic one for Model "truck" (drawn after the original's
// draws).
func newTruckPhysics(rng *rand.Rand, idx int, warm bool, start time.Time, ts TruckScenario) *physics {
	p := newPhysics(rng, idx, warm, start, ts.Route, ts.Ambient)
	if ts.Model == ModelTruck {
		p.truck = newTruckModel(p, ts, warm)
	}
	return p
}

// makeRoute builds a closed tour: depot, 2-4 places, back to the depot,
// with intermediate points every ~5 km and urban limits near places.
func makeRoute(rng *rand.Rand, idx int, given [][2]float64) []waypoint {
	var stops [][2]float64
	if len(given) >= 2 {
		stops = append(stops, given...)
	} else {
		depot := places[idx%len(places)]
		stops = append(stops, depot)
		n := 2 + rng.IntN(3)
		for len(stops) <= n {
			next := places[rng.IntN(len(places))]
			if next != stops[len(stops)-1] {
				stops = append(stops, next)
			}
		}
		stops = append(stops, depot)
	}
	var wps []waypoint
	for i := 0; i+1 < len(stops); i++ {
		a, b := stops[i], stops[i+1]
		if i == 0 {
			wps = append(wps, waypoint{lat: a[0], lon: a[1]})
		}
		d := distance(a[0], a[1], b[0], b[1])
		parts := max(1, int(d/5000))
		for j := 1; j <= parts; j++ {
			f := float64(j) / float64(parts)
			w := waypoint{lat: a[0] + (b[0]-a[0])*f, lon: a[1] + (b[1]-a[1])*f, limit: 85}
			if j < parts {
				// Roads are not straight: up to ~800 m off the line.
				w.lat += 0.007 * rng.NormFloat64()
				w.lon += 0.011 * rng.NormFloat64()
			}
			if j == 1 || j == parts {
				w.limit = 50 // leaving or entering town
			}
			if j == parts {
				w.stop = 30 + 90*rng.Float64()
			}
			wps = append(wps, w)
		}
	}
	if len(wps) < 2 {
		wps = append(wps, waypoint{lat: wps[0].lat + 0.05, lon: wps[0].lon, limit: 80})
	}
	return wps
}

const earthRadius = 6371000.0

// distance is the great-circle distance in metres.
func distance(lat1, lon1, lat2, lon2 float64) float64 {
	r := math.Pi / 180
	dlat, dlon := (lat2-lat1)*r, (lon2-lon1)*r
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*r)*math.Cos(lat2*r)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

// bearing from a to b in degrees clockwise from north.
func bearing(a, b waypoint) float64 {
	r := math.Pi / 180
	y := math.Sin((b.lon-a.lon)*r) * math.Cos(b.lat*r)
	x := math.Cos(a.lat*r)*math.Sin(b.lat*r) - math.Sin(a.lat*r)*math.Cos(b.lat*r)*math.Cos((b.lon-a.lon)*r)
	return math.Mod(math.Atan2(y, x)/r+360, 360)
}

// solarHour is local solar time in hours at elapsed seconds.
func (p *physics) solarHour(elapsed float64) float64 {
	t := p.start.Add(time.Duration(elapsed * float64(time.Second))).UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600 + p.lon/15
	return math.Mod(h+24, 24)
}

// ambientAt is the diurnal ambient temperature: coolest near dawn, warmest
// mid-afternoon.
func (p *physics) ambientAt(elapsed float64) float64 {
	return p.ambientBase + p.swing*math.Sin(2*math.Pi*(p.solarHour(elapsed)-9)/24)
}

// sun is the share of full sunshine on the tank (0 at night).
func (p *physics) sun() float64 {
	return math.Max(0, math.Sin(math.Pi*(p.solarHour(p.elapsed)-6)/12)) * (1 - p.cloud)
}

// step advances the world by dt.
func (p *physics) step(dt time.Duration) {
	s := dt.Seconds()
	p.elapsed += s
	p.ambient = p.ambientAt(p.elapsed)
	p.cloud = math.Max(0, math.Min(1, p.cloud+0.002*math.Sqrt(s)*p.rng.NormFloat64()))
	if p.truck != nil {
		p.stepSeconds = s
		p.duty(s)
		prev := p.speed
		p.drive(s)
		p.load = p.truckLoad((p.speed - prev) / 3.6 / s)
		p.truckEngine(s)
		p.truckCargo(s)
		return
	}
	p.drive(s)
	p.engineStep(s)
	p.cargoStep(s)
}

func (p *physics) drive(s float64) {
	prev := p.speed
	a, b := p.route[p.seg], p.route[p.seg+1]
	segLen := distance(a.lat, a.lon, b.lat, b.lon)
	target := b.limit * p.driver
	if p.elapsed < p.stopUntil {
		target = 0
	} else if p.elapsed < p.slowUntil {
		target = math.Min(target, 25)
	} else if p.rng.Float64() < s/900 { // a jam every ~15 minutes
		p.slowUntil = p.elapsed + 20 + 100*p.rng.Float64()
	}
	// Slow down for a stop ahead: v^2 = 2 a d with a = 1 m/s^2.
	if b.stop > 0 {
		left := math.Max(0, segLen-p.segPos)
		target = math.Min(target, 3.6*math.Sqrt(2*1.0*left)+2)
	}
	acc := 0.5 * 3.6 // km/h per s
	if target < p.speed {
		acc = 1.5 * 3.6
	}
	if d := target - p.speed; math.Abs(d) <= acc*s {
		p.speed = target
	} else {
		p.speed += math.Copysign(acc*s, d)
	}
	p.speed = math.Max(0, p.speed+0.15*math.Sqrt(s)*p.rng.NormFloat64()*b2f(p.speed > 5))

	p.segPos += p.speed / 3.6 * s
	for p.segPos >= segLen {
		p.segPos -= segLen
		if b.stop > 0 && p.stopUntil < p.elapsed {
			p.stopUntil = p.elapsed + b.stop
			if p.truck != nil {
				p.stopUntil = p.elapsed
				p.routeStop(b.stop)
			}
			p.segPos = 0
		}
		p.seg++
		if p.seg+1 >= len(p.route) {
			p.seg = 0 // tours repeat
		}
		a, b = p.route[p.seg], p.route[p.seg+1]
		segLen = distance(a.lat, a.lon, b.lat, b.lon)
		if segLen == 0 {
			segLen = 1
		}
	}
	f := p.segPos / segLen
	p.lat = a.lat + (b.lat-a.lat)*f
	p.lon = a.lon + (b.lon-a.lon)*f
	p.heading = bearing(a, b)
	accel := (p.speed - prev) / 3.6 / s // m/s^2
	p.load = math.Max(0.05, math.Min(1, 0.15+p.speed/130+accel*0.35))
	if p.rng.IntN(max(1, int(60/s))) == 0 {
		p.sats = max(5, min(14, p.sats+p.rng.IntN(3)-1))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// engineStep: below the thermostat band the engine warms at a rate set by
// load; in the band the thermostat holds an equilibrium that rises with
// load and ambient and falls with airflow; the fan caps it at set point + 6
// unless it failed.
func (p *physics) engineStep(s float64) {
	airflow := math.Min(1, p.speed/80)
	eq := p.setpoint + 5*(p.load-0.4) + 0.06*(p.ambient-20) - 1.0*airflow
	if p.fanFailed {
		eq += 10 + 14*p.load - 6*airflow
	} else {
		eq = math.Min(eq, p.setpoint+6)
	}
	eq += p.coolantLoss
	if p.engine < p.setpoint-3 && eq < p.setpoint+6 {
		// Thermostat closed: only the engine heats the coolant.
		p.engine += (0.08 + 0.3*p.load) * s
		return
	}
	p.engine += (eq - p.engine) / 40 * s
}

// cargoStep: the tank follows ambient plus sun slowly; a heat source (fire)
// adds its rate directly.
func (p *physics) cargoStep(s float64) {
	target := p.ambient + p.sunGain*p.sun()
	p.cargo += (target - p.cargo) / p.tau * s
	if p.cargoHeatActive {
		p.cargo += p.cargoHeatRate * s
	}
}

// Sensor models: noise (and, through the DBC, quantisation).
func (p *physics) coolantSensor() float64 {
	if p.truck != nil {
		// A real ECU filters its coolant reading: the KIT car's 1 °C
		// readings sit on plateaus for minutes.
		return p.engine + 0.1*p.rng.NormFloat64()
	}
	return p.engine + 0.3*p.rng.NormFloat64()
}
func (p *physics) cargoSensor() float64 { return p.cargo + 0.05*p.rng.NormFloat64() }
func (p *physics) speedSensor() float64 {
	if p.speed == 0 {
		return 0
	}
	return math.Max(0, p.speed+0.1*p.rng.NormFloat64())
}

// gpsJitter returns the receiver's position error in degrees (~2 m).
func (p *physics) gpsJitter() (dlat, dlon float64) {
	const sigma = 2.0 / earthRadius * 180 / math.Pi
	return sigma * p.rng.NormFloat64(), sigma * p.rng.NormFloat64() / math.Cos(p.lat*math.Pi/180)
}
