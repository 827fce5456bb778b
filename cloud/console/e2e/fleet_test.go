package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// simTruck is one synthetic truck: it drives, its temperatures follow
// simple physics, and like a gateway it runs the detector (edge alerts)
// and numbers everything it sends.
type simTruck struct {
	id                        string
	seq                       uint64
	lat, lon, heading, speed  float64
	coolant, cargo, cruise    float64
	overheat, cargoHot, quiet bool
	ackAfter                  time.Duration // the driver acknowledges a raised alert after this (0: never)
	rng                       *rand.Rand
	det                       *detect.Detector
	pendingAck                []detect.Transition
}

// fleet publishes synthetic trucks' batches to the cloud's broker, one
// batch per truck per second. Its methods are safe for concurrent use.
type fleet struct {
	mu     sync.Mutex
	cl     mqtt.Client
	trucks []*simTruck
	byID   map[string]*simTruck
}

// area is where trucks start: centre and spread in degrees of latitude
// (longitude: 1.6 times that, or wide times if set).
type area struct{ lat, lon, spread, wide float64 }

func newFleet(brokerAddr string, n int, a area, seed uint64) (*fleet, error) {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID(fmt.Sprintf("e2e-fleet-%d", seed)).
		SetCleanSession(true).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second)
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("fleet connect: %v", tok.Error())
	}
	f := &fleet{cl: cl, byID: map[string]*simTruck{}}
	rng := rand.New(rand.NewPCG(seed, 7))
	if a.wide == 0 {
		a.wide = 1.6
	}
	for i := range n {
		id := fmt.Sprintf("truck-%03d", i+1)
		if n > 999 {
			id = fmt.Sprintf("truck-%04d", i+1)
		}
		det, err := detect.New(id, detect.DefaultConfig())
		if err != nil {
			return nil, err
		}
		t := &simTruck{
			id: id, lat: a.lat + (rng.Float64()-0.5)*a.spread, lon: a.lon + (rng.Float64()-0.5)*a.spread*a.wide,
			heading: rng.Float64() * 2 * math.Pi, speed: 40 + rng.Float64()*40, cruise: 62 + rng.Float64()*26,
			coolant: 86 + rng.Float64()*4, cargo: 14 + rng.Float64()*6,
			rng: rand.New(rand.NewPCG(seed, uint64(i))), det: det,
		}
		f.trucks = append(f.trucks, t)
		f.byID[id] = t
	}
	return f, nil
}

func (f *fleet) close() { f.cl.Disconnect(100) }

// step advances t by dt seconds to at and returns its readings and edge
// alerts, numbered.
func (t *simTruck) step(at time.Time, dt float64) uplink.Batch {
	r := t.rng
	// Driving: cruise with noise, the odd slowdown; heading wanders.
	target := t.cruise
	if int(at.Unix()/90+int64(len(t.id)))%7 == 0 {
		target = 15
	}
	t.speed += (target-t.speed)*0.08*dt + r.NormFloat64()*1.2
	t.speed = max(0, min(t.speed, 95))
	t.heading += r.NormFloat64() * 0.03 * dt
	km := t.speed * dt / 3600
	t.lat += km * math.Cos(t.heading) / 111.2
	t.lon += km * math.Sin(t.heading) / (111.2 * math.Cos(t.lat*math.Pi/180))
	// Engine: settles near 88 °C; an overheat climbs to 118 °C.
	goal := 88 + 3*math.Sin(float64(at.Unix())/600+float64(len(t.id)))
	if t.overheat {
		goal = 120
	}
	rate := 0.05
	if t.overheat {
		rate = 0.25
	}
	t.coolant += (goal-t.coolant)*rate*dt + r.NormFloat64()*0.15
	goalCargo := 17.0
	if t.cargoHot {
		goalCargo = 47.5
	}
	t.cargo += (goalCargo-t.cargo)*0.02*dt + r.NormFloat64()*0.05
	ns := at.UnixNano()
	var b uplink.Batch
	b.Truck = t.id
	add := func(sig sensors.Signal, v float64) {
		t.seq++
		rd := sensors.Reading{Seq: t.seq, Time: ns, Signal: sig, Value: v}
		b.Readings = append(b.Readings, rd)
		if tr, ok := t.det.Observe(rd); ok {
			b.Alerts = append(b.Alerts, tr)
			if tr.Phase == detect.Raised && t.ackAfter > 0 {
				t.pendingAck = append(t.pendingAck, tr)
			}
		}
	}
	add(sensors.CoolantTemp, math.Round(t.coolant))
	add(sensors.CargoTemp, math.Round(t.cargo*10)/10)
	add(sensors.WheelSpeed, math.Round(t.speed*10)/10)
	add(sensors.GNSSLatitude, t.lat)
	add(sensors.GNSSLongitude, t.lon)
	for i := range b.Alerts {
		t.seq++
		b.Alerts[i].Seq = t.seq
	}
	for len(t.pendingAck) > 0 && at.UnixNano()-t.pendingAck[0].Time >= int64(t.ackAfter) {
		a := t.pendingAck[0]
		t.pendingAck = t.pendingAck[1:]
		t.seq++
		b.Acks = append(b.Acks, detect.Ack{Seq: t.seq, Truck: t.id, Signal: a.Signal, Start: a.Start, Time: ns, By: "driver", Severity: a.Severity})
	}
	return b
}

// publish sends batches and waits for their PUBACKs.
func (f *fleet) publish(bs []uplink.Batch) error {
	toks := make([]mqtt.Token, 0, len(bs))
	for _, b := range bs {
		p, err := uplink.Encode(b)
		if err != nil {
			return err
		}
		kind := uplink.KindTelemetry
		if len(b.Alerts) > 0 || len(b.Acks) > 0 {
			kind = uplink.KindAlerts
		}
		toks = append(toks, f.cl.Publish(uplink.Topic(b.Truck, kind), 1, false, p))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publish: %v", tok.Error())
		}
	}
	return nil
}

// tick advances every truck by one second to at and publishes.
func (f *fleet) tick(at time.Time) error {
	f.mu.Lock()
	bs := make([]uplink.Batch, 0, len(f.trucks))
	for _, t := range f.trucks {
		if t.quiet {
			continue
		}
		bs = append(bs, t.step(at, 1))
	}
	f.mu.Unlock()
	return f.publish(bs)
}

// backlog publishes the trucks' last d at 1 Hz, as gateways that were
// offline do; episode, if set, runs for each truck's second s of the
// backlog before it is stepped (to inject faults in the past).
func (f *fleet) backlog(ids []string, d time.Duration, now time.Time, episode func(t *simTruck, ago time.Duration)) error {
	for _, id := range ids {
		t := f.byID[id]
		var pending uplink.Batch
		pending.Truck = id
		for at := now.Add(-d); at.Before(now); at = at.Add(time.Second) {
			if episode != nil {
				episode(t, now.Sub(at))
			}
			b := t.step(at, 1)
			pending.Readings = append(pending.Readings, b.Readings...)
			pending.Alerts = append(pending.Alerts, b.Alerts...)
			pending.Acks = append(pending.Acks, b.Acks...)
			if len(pending.Readings) >= 2000 || len(b.Alerts)+len(b.Acks) > 0 {
				if err := f.publish([]uplink.Batch{pending}); err != nil {
					return err
				}
				pending = uplink.Batch{Truck: id}
			}
		}
		if len(pending.Readings) > 0 {
			if err := f.publish([]uplink.Batch{pending}); err != nil {
				return err
			}
		}
	}
	return nil
}

// setOffline makes a truck fall silent with its gateway's last will.
func (f *fleet) setOffline(id string) error {
	f.mu.Lock()
	f.byID[id].quiet = true
	f.mu.Unlock()
	tok := f.cl.Publish(uplink.Topic(id, uplink.KindStatus), 1, true, uplink.StatusOffline)
	tok.WaitTimeout(5 * time.Second)
	return tok.Error()
}

func (f *fleet) set(id string, fn func(t *simTruck)) {
	f.mu.Lock()
	fn(f.byID[id])
	f.mu.Unlock()
}
