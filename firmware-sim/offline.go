package firmwaresim

import (
	"errors"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// Sample is what one truck emitted in one tick of Simulate.
type Sample struct {
	// Truck is the truck's index (0-based) and ID its id.
	Truck int
	ID    string
	// Time is the simulated clock (Unix ns) of the tick.
	Time int64
	// Readings are the values a gateway decodes from the CAN frames (and
	// probe lines) sent in this tick, exactly as the ground-truth file
	// records them; often none. The slice is reused: copy what you keep.
	Readings []sensors.Reading
	// Coolant and Cargo are the noise-free physical temperatures (°C) with
	// the hazardous faults applied: what a perfect sensor would read.
	Coolant, Cargo float64
	// Realistic trucks only (TruckScenario.Model "truck"):
	// CoolantHazard and CargoHazard say whether the hazard is physically
	// present (the hazard_present windows: true coolant above
	// HazardCoolant; true cargo above HazardCargo or a fire heating it);
	// Running whether the engine runs, Ignition whether the ignition is
	// on (engine running, or stopped with the key on), FanOn whether the
	// radiator fan runs.
	CoolantHazard, CargoHazard, Running, Ignition, FanOn bool
}

// Simulate runs every truck offline, as fast as the CPU allows, for d of
// simulated time from start: no listeners, terminals or wall clock, every
// truck started at start, every value emitted counted as taken. emit is
// called for each truck at each tick, in order. It returns the fault
// windows of every truck (what Config.FaultsPath receives, which it also
// writes, like TruthPath and CandumpPath).
//
// The readings are, bit for bit, those a live run of the same
// configuration with NoSerial emits, tick by tick; GNSS sentences are not
// produced. Use it to evaluate detection over thousands of truck-hours. A
// Sim runs either Run or Simulate, once.
func (s *Sim) Simulate(start time.Time, d time.Duration, emit func(*Sample)) (fw []FaultWindow, err error) {
	if s.cfg.CAN != "" {
		return nil, errors.New("firmware-sim: Simulate uses no bus; leave Config.CAN empty")
	}
	if err := s.openOutputs(); err != nil {
		return nil, err
	}
	defer func() {
		if cerr := s.closeOutputs(); err == nil {
			err = cerr
		}
	}()
	s.offline = true
	for i := 0; i < s.cfg.Trucks; i++ {
		t := s.newTruck(i, start)
		t.started = true
		s.trucks = append(s.trucks, t)
		fw = append(fw, t.faultWindows(start)...)
	}
	tick := s.cfg.Tick
	var smp Sample
	for k := int64(0); time.Duration(k)*tick < d; k++ {
		now := start.Add(time.Duration(k) * tick)
		for i, t := range s.trucks {
			t.out = t.out[:0]
			s.step(t, now)
			smp = Sample{Truck: i, ID: t.id, Time: now.UnixNano(), Readings: t.out}
			smp.Coolant, smp.Cargo = t.trueValues(time.Duration(k) * tick)
			if m := t.phys.truck; m != nil {
				smp.CoolantHazard, smp.CargoHazard = t.hazards.present[0], t.hazards.present[1]
				smp.Running, smp.Ignition, smp.FanOn = m.running(), m.engineOn || m.keyOn, m.fanOn
			}
			emit(&smp)
		}
	}
	return append(fw, s.writeHazardWindows()...), nil
}

// record writes readings truck t emitted to the truth file, and in an
// offline run keeps them for the tick's Sample.
func (s *Sim) record(t *truck, rs []sensors.Reading) {
	s.truth.write(t.id, rs)
	if s.offline {
		t.out = append(t.out, rs...)
	}
}
