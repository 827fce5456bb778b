package firmwaresim

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"go.einride.tech/can"

	"github.com/abc4logistics/tankguard/sensors"
)

// FaultsHeader is the first line of the fault ground-truth CSV.
const FaultsHeader = "truck,kind,signal,start_unix_ns,end_unix_ns,hazard"

// faultState is the mutable part of one scheduled fault.
type faultState struct {
	Fault
	sig      sensors.Signal // affected signal (sensor faults)
	glitches int            // glitch samples applied so far
	stuckSet bool
	stuckVal float64
	// from is the true coolant when a realistic overheat started (NaN
	// before): its ramp starts there, not at the set point.
	from float64
}

// effects are the faults active at one instant, folded together.
type effects struct {
	dropout     [sensors.NumSignals]string
	noise       [sensors.NumSignals]float64
	canSilent   bool
	canGarbage  float64
	nmeaGarbage float64
	gpsLost     bool
	clockOffset time.Duration
}

func newFaultStates(fs []Fault) []faultState {
	out := make([]faultState, len(fs))
	for i, f := range fs {
		out[i].Fault = f
		out[i].from = math.NaN()
		name := f.Signal
		if name == "" {
			name = faultInfo[f.Kind].signal
		}
		if s, err := sensors.ParseSignal(name); err == nil {
			out[i].sig = s
		}
	}
	return out
}

func (f Fault) active(elapsed time.Duration) bool {
	at := time.Duration(f.At)
	return elapsed >= at && (f.Duration == 0 || elapsed < at+time.Duration(f.Duration))
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// applyPhysicalFaults sets the physics inputs of the faults active at
// elapsed (coolant loss, fan failure, cargo heating).
func (t *truck) applyPhysicalFaults(elapsed time.Duration) {
	p := t.phys
	p.fanFailed, p.coolantLoss, p.cargoHeatActive, p.cargoHeatRate = false, 0, false, 0
	if m := p.truck; m != nil {
		m.thermostatStuck, m.coolingLost, m.overheatLevel = false, 0, math.NaN()
	}
	for i := range t.faults {
		f := &t.faults[i]
		if !f.active(elapsed) {
			continue
		}
		since := (elapsed - time.Duration(f.At)).Minutes()
		if m := p.truck; m != nil {
			// The realistic model: faults act on the engine's physics.
			switch f.Kind {
			case FaultOverheat:
				if math.IsNaN(f.from) {
					f.from = p.engine
				}
				if lv := f.overheatLevel(p, elapsed); math.IsNaN(m.overheatLevel) || lv > m.overheatLevel {
					m.overheatLevel = lv
				}
				continue
			case FaultCoolantLoss:
				// The radiator loses up to 90 % of its capacity over ramp
				// (default 10 min) as the coolant level falls.
				ramp := time.Duration(f.Ramp)
				if ramp <= 0 {
					ramp = 10 * time.Minute
				}
				m.coolingLost = max(m.coolingLost, 0.9*min(1, since/ramp.Minutes()))
				continue
			case FaultThermostatStuck:
				m.thermostatStuck = true
				continue
			}
		}
		switch f.Kind {
		case FaultFanFailure:
			p.fanFailed = true
		case FaultCoolantLoss:
			peak := orDefault(f.Peak, 125)
			p.coolantLoss = math.Max(p.coolantLoss, math.Min(orDefault(f.Rate, 4)*since, math.Max(0, peak-p.setpoint)))
		case FaultCargoHeating:
			if p.cargo < orDefault(f.Peak, 150) {
				p.cargoHeatActive = true
				p.cargoHeatRate = orDefault(f.Rate, 20) / 60
			}
		}
	}
}

// effectsAt folds the transport and sensor faults active at elapsed.
func (t *truck) effectsAt(elapsed time.Duration) effects {
	var e effects
	for i := range t.faults {
		f := &t.faults[i]
		if !f.active(elapsed) {
			if f.Kind == FaultStuck {
				f.stuckSet = false
			}
			continue
		}
		switch f.Kind {
		case FaultDropout:
			mode := f.Mode
			if mode == "" {
				mode = "missing"
			}
			e.dropout[f.sig] = mode
		case FaultNoiseBurst:
			e.noise[f.sig] = math.Max(e.noise[f.sig], orDefault(f.Amplitude, 3))
		case FaultCANSilence:
			e.canSilent = true
		case FaultCANGarbage:
			e.canGarbage = math.Max(e.canGarbage, orDefault(f.Probability, 0.1))
		case FaultNMEAGarbage:
			e.nmeaGarbage = math.Max(e.nmeaGarbage, orDefault(f.Probability, 0.1))
		case FaultGPSLoss:
			e.gpsLost = true
		case FaultClockJump:
			e.clockOffset += time.Duration(f.Offset)
		}
	}
	if e.gpsLost {
		e.dropout[sensors.VPLatitude] = "not_available"
		e.dropout[sensors.VPLongitude] = "not_available"
	}
	// The faults sensorValue must look at this tick, in timeline order: a
	// truck has hundreds of finished nuisance faults on a long run.
	t.live = t.live[:0]
	for i := range t.faults {
		f := &t.faults[i]
		switch f.Kind {
		case FaultOverheat, FaultStuck:
			if f.active(elapsed) {
				t.live = append(t.live, i)
			}
		case FaultGlitch:
			every := time.Duration(f.Every)
			if every <= 0 {
				every = 10 * time.Second
			}
			if f.glitches < max(1, f.Count) && elapsed >= time.Duration(f.At)+time.Duration(f.glitches)*every {
				t.live = append(t.live, i)
			}
		}
	}
	return e
}

// overheatLevel is the noise-free coolant value an active overheat fault
// forces at elapsed: a ramp from the set point to Peak over Ramp.
func (f *faultState) overheatLevel(p *physics, elapsed time.Duration) float64 {
	ramp := time.Duration(f.Ramp)
	if ramp <= 0 {
		ramp = 30 * time.Second
	}
	peak := orDefault(f.Peak, 115)
	prog := min(1, float64(elapsed-time.Duration(f.At))/float64(ramp))
	from := p.setpoint
	if p.truck != nil {
		from = f.from // the realistic model ramps from where the engine was
	}
	return from + (peak-from)*prog
}

// trueValues are the noise-free coolant and cargo temperatures at elapsed,
// with the hazardous faults applied: what a perfect sensor would read.
func (t *truck) trueValues(elapsed time.Duration) (coolant, cargo float64) {
	coolant, cargo = t.phys.engine, t.phys.cargo
	if t.phys.truck != nil {
		return coolant, cargo // faults act on the physics itself
	}
	for i := range t.faults {
		if f := &t.faults[i]; f.Kind == FaultOverheat && f.active(elapsed) {
			coolant = max(coolant, f.overheatLevel(t.phys, elapsed))
		}
	}
	return coolant, cargo
}

// sensorValue is what the sensor of sig reports at elapsed: the physics
// plus noise, with overheat, noise bursts, glitches and stuck applied.
// effectsAt(elapsed) must have run first (it lists the live faults).
func (t *truck) sensorValue(sig sensors.Signal, elapsed time.Duration, e *effects) float64 {
	p := t.phys
	var v float64
	switch sig {
	case sensors.CoolantTemp:
		v = p.coolantSensor()
	case sensors.CargoTemp:
		v = p.cargoSensor()
	case sensors.WheelSpeed:
		v = p.speedSensor()
	case sensors.VPLatitude:
		v = p.lat
	case sensors.VPLongitude:
		v = p.lon
	case sensors.EngineSpeed:
		v = p.rpmSensor()
	case sensors.OilTemp:
		v = p.oilSensor()
	case sensors.FuelTemp:
		v = p.fuelSensor()
	case sensors.AmbientTemp:
		v = p.ambientSensor()
	}
	for _, i := range t.live {
		f := &t.faults[i]
		switch {
		case f.Kind == FaultOverheat && sig == sensors.CoolantTemp && f.active(elapsed) && p.truck == nil:
			v = max(v, f.overheatLevel(p, elapsed)+0.3*p.rng.NormFloat64())
		case f.Kind == FaultGlitch && f.sig == sig:
			count := max(1, f.Count)
			every := time.Duration(f.Every)
			if every <= 0 {
				every = 10 * time.Second
			}
			if f.glitches < count && elapsed >= time.Duration(f.At)+time.Duration(f.glitches)*every {
				f.glitches++
				v += orDefault(f.Amplitude, 40)
			}
		}
	}
	if sd := e.noise[sig]; sd > 0 {
		v += sd * p.rng.NormFloat64()
	}
	for _, i := range t.live {
		f := &t.faults[i]
		if f.Kind == FaultStuck && f.sig == sig && f.active(elapsed) {
			if !f.stuckSet {
				f.stuckSet, f.stuckVal = true, v
			}
			v = f.stuckVal
		}
	}
	return v
}

// corruptFrames damages frames with probability prob each, and sometimes
// adds a junk frame, the way a noisy bus or a misbehaving node would.
func (t *truck) corruptFrames(frames []can.Frame, prob float64) []can.Frame {
	rng := t.phys.rng
	n := len(frames)
	for i := 0; i < n; i++ {
		if rng.Float64() >= prob {
			continue
		}
		f := &frames[i]
		switch rng.IntN(4) {
		case 0: // a bit flip that slipped past the CRC
			bit := rng.IntN(64)
			f.Data[bit/8] ^= 1 << (bit % 8)
		case 1: // truncated
			f.Length = uint8(rng.IntN(8))
		case 2: // 11-bit id
			f.IsExtended = false
			f.ID &= 0x7FF
		case 3: // a PGN nobody described
			f.ID = 0x18FF0000 | uint32(rng.IntN(0x78))<<8 | uint32(rng.IntN(256))
		}
	}
	if rng.Float64() < prob {
		var f can.Frame
		f.ID = rng.Uint32() & 0x1FFFFFFF
		f.IsExtended = true
		f.Length = uint8(rng.IntN(9))
		for i := range f.Data {
			f.Data[i] = byte(rng.IntN(256))
		}
		frames = append(frames, f)
	}
	return frames
}

// corruptSentence damages one "$...*hh" body (without CR LF) as a noisy
// serial line would; the caller appends CR LF.
func (t *truck) corruptSentence(b []byte) []byte {
	rng := t.phys.rng
	switch rng.IntN(4) {
	case 0: // wrong checksum
		b[len(b)-1] = "0123456789ABCDEF"[(int(b[len(b)-1])+1+rng.IntN(14))%16]
	case 1: // truncated
		b = b[:1+rng.IntN(len(b)-1)]
	case 2: // a changed character
		i := 1 + rng.IntN(len(b)-4)
		b[i] = byte('0' + rng.IntN(10))
		if b[i] == '$' || b[i] == '*' {
			b[i] = '7'
		}
	case 3: // line noise
		n := 3 + rng.IntN(40)
		b = b[:0]
		for j := 0; j < n; j++ {
			c := byte(rng.IntN(256))
			if c == '\n' {
				c = '~'
			}
			b = append(b, c)
		}
	}
	return b
}

// faultWindows is truck t's fault timeline in absolute times, for a
// truck that started at start.
func (t *truck) faultWindows(start time.Time) []FaultWindow {
	out := make([]FaultWindow, 0, len(t.faults))
	for _, f := range t.faults {
		info := faultInfo[f.Kind]
		w := FaultWindow{Truck: t.id, Kind: f.Kind, Start: start.Add(time.Duration(f.At)).UnixNano(), Hazard: info.hazard}
		if info.signal != "" || f.Signal != "" {
			w.Signal = f.sig.String()
		}
		end := time.Duration(f.Duration)
		if f.Kind == FaultGlitch {
			every := time.Duration(f.Every)
			if every <= 0 {
				every = 10 * time.Second
			}
			end = time.Duration(max(1, f.Count)) * every
		}
		if end > 0 {
			w.End = w.Start + int64(end)
		}
		out = append(out, w)
	}
	return out
}

// writeFaultWindows records the truck's fault timeline in the fault truth
// file, with absolute times from its start.
func (s *Sim) writeFaultWindows(t *truck, start time.Time) {
	if s.faultsOut == nil {
		return
	}
	b := appendFaultLines(nil, t.faultWindows(start))
	s.faultsOut.write(b)
}

// FaultWindow is one line of the fault ground-truth file.
type FaultWindow struct {
	Truck string
	Kind  FaultKind
	// Signal is the affected signal's name, empty for faults of a whole
	// bus or the GNSS receiver.
	Signal string
	// Start and End are Unix ns; End is 0 when the fault lasts to the end.
	Start, End int64
	// Hazard is true when the fault must raise an alert.
	Hazard bool
}

// ReadFaults parses a fault ground-truth CSV (Config.FaultsPath).
func ReadFaults(r io.Reader) ([]FaultWindow, error) {
	sc := bufio.NewScanner(r)
	var out []FaultWindow
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 && text == FaultsHeader {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 6 {
			return nil, fmt.Errorf("faults line %d: want 6 fields, got %q", line, text)
		}
		w := FaultWindow{Truck: f[0], Kind: FaultKind(f[1]), Signal: f[2]}
		var err error
		if w.Start, err = strconv.ParseInt(f[3], 10, 64); err != nil {
			return nil, fmt.Errorf("faults line %d: start: %w", line, err)
		}
		if f[4] != "" {
			if w.End, err = strconv.ParseInt(f[4], 10, 64); err != nil {
				return nil, fmt.Errorf("faults line %d: end: %w", line, err)
			}
		}
		if w.Hazard, err = strconv.ParseBool(f[5]); err != nil {
			return nil, fmt.Errorf("faults line %d: hazard: %w", line, err)
		}
		out = append(out, w)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read faults: %w", err)
	}
	return out, nil
}
