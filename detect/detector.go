package detect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// Detector watches the temperature signals (coolant, cargo) of one truck.
// Other signals are ignored. It is not safe for concurrent use: one
// goroutine owns it (the gateway's detect stage, or the cloud's per-truck
// worker).
type Detector struct {
	truck   string
	cfg     Config
	hash    uint64
	coolant series
	cargo   series
	eng     engineState
}

// engineState is what the detector knows of the engine from the engine
// ECU's own signals: engine speed (sensors.EngineSpeed) says whether it
// runs; coolant, oil, fuel and ambient temperature from the same ECU say
// the ECU is awake. The cargo probe and GPS never say anything about the
// engine. A truck that never sends engine speed counts as running.
type engineState struct {
	Known, On bool
	T         int64 // time of the last engine-speed reading
	OffT      int64 // when it last stopped
}

// runningRPM is the engine speed from which the engine counts as running.
// Cranking is 150-250 rpm and idle 550-800; below 400 the engine is
// stopped or spinning down (a logger that stops with the ignition may
// keep a last sample of 300-360 rpm).
const runningRPM = 400

// New returns a detector for truck with cfg, which must be valid.
func New(truck string, cfg Config) (*Detector, error) {
	if truck == "" {
		return nil, fmt.Errorf("detect new: %w", ErrTruck)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect new: %w", err)
	}
	return &Detector{truck: truck, cfg: cfg, hash: cfg.Hash()}, nil
}

// Truck returns the truck the detector watches.
func (d *Detector) Truck() string { return d.truck }

// Config returns the configuration in force.
func (d *Detector) Config() Config { return d.cfg }

// SetConfig replaces the configuration without losing what was learned:
// the learned bands, open alerts and pending conditions carry over and the
// next reading is judged by the new settings. Transitions carry the new
// hash from then on. An invalid cfg is rejected and the old one kept.
func (d *Detector) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("detect set config: %w", err)
	}
	d.cfg, d.hash = cfg, cfg.Hash()
	return nil
}

func (d *Detector) lookup(sig sensors.Signal) (*series, *SignalConfig) {
	switch sig {
	case sensors.CoolantTemp:
		return &d.coolant, &d.cfg.Coolant
	case sensors.CargoTemp:
		return &d.cargo, &d.cfg.Cargo
	}
	return nil, nil
}

// Observe folds one reading into the detector state and returns the alert
// transition it caused, if any: at most one, since at most one alert is
// open per signal. Coolant and cargo temperature are watched; engine speed
// is the engine's state (a stopped engine is no missing data, its heat
// soak no deviation) and engine oil temperature the context of coolant's
// stuck check; they raise nothing themselves. Readings of other signals
// are ignored, NaN or infinite values and readings older than the
// signal's last one are ignored (counted in Band.Rejected). It never
// allocates and never reads a clock.
func (d *Detector) Observe(r sensors.Reading) (Transition, bool) {
	switch r.Signal {
	case sensors.EngineSpeed:
		d.engine(r.Time, r.Value)
		return Transition{}, false
	case sensors.OilTemp:
		d.ecuAwake(r.Time)
		d.coolant.context(r.Time, r.Value)
		return Transition{}, false
	case sensors.FuelTemp, sensors.AmbientTemp, sensors.CoolantTemp:
		d.ecuAwake(r.Time)
	}
	s, c := d.lookup(r.Signal)
	if s == nil {
		return Transition{}, false
	}
	ev, ok := s.observe(c, r.Time, r.Value)
	if !ok {
		return Transition{}, false
	}
	return d.transition(r.Signal, s, ev, r.Time, r.Value), true
}

// Advance tells the detector that the caller's clock reads now (Unix ns)
// and appends the missing-data transitions that follow to out, which it
// returns. Call it periodically (e.g. every second) from the owner's
// goroutine; it is how the detector learns that readings stopped. A signal
// that never delivered a reading is never missing. now must come from the
// same clock as the readings' times: where readings arrive late (the
// cloud, behind a store-and-forward queue), drive it from reading times,
// not from the wall clock, or gateway and cloud will disagree. It does not allocate
// when out has room for two transitions.
func (d *Detector) Advance(now int64, out []Transition) []Transition {
	run := d.running(now)
	for _, sig := range [...]sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp} {
		s, c := d.lookup(sig)
		if ev, ok := s.advance(c, now, run); ok {
			out = append(out, d.transition(sig, s, ev, now, s.st.LastX))
		}
	}
	return out
}

// Band returns the learned normal band of sig and its alert state, for the
// cab display and the console. ok is false for signals the detector does
// not watch.
func (d *Detector) Band(sig sensors.Signal) (b Band, ok bool) {
	s, c := d.lookup(sig)
	if s == nil {
		return Band{}, false
	}
	return s.band(c), true
}

// running reports whether missing data counts at now: the engine is known
// to run, engine speed above runningRPM still arriving (or the truck never
// sends engine speed). When engine speed goes quiet with every other
// engine-ECU signal, that is the ignition switched off (or the whole bus
// lost, which is the gateway's bus-health concern): no temperature is
// missing then.
func (d *Detector) running(now int64) bool {
	e := &d.eng
	return !e.Known || (e.On && now-e.T <= d.staleEngine())
}

// ecuAwake notes a reading from the engine ECU other than engine speed at
// t: when engine speed is known to be off but has been quiet for a while,
// the engine is no longer known to be off (an ECU that sends temperatures
// but lost engine speed), so its heat soak ends.
func (d *Detector) ecuAwake(t int64) {
	if e := &d.eng; e.Known && !e.On && t-e.T > d.staleEngine() {
		e.On = true
		d.started(t)
	}
}

// engine folds in an engine-speed reading.
func (d *Detector) engine(t int64, rpm float64) {
	e := &d.eng
	if !finite(rpm) || (e.Known && t < e.T) {
		return
	}
	on := rpm >= runningRPM
	was, known := e.On, e.Known
	if known && was && t-e.T > d.staleEngine() {
		// Engine speed went quiet while running (the ignition went off
		// without a last sample below runningRPM): it stopped then.
		was, e.OffT = false, e.T
		d.coolant.st.EngOff, d.cargo.st.EngOff = true, true
	}
	e.Known, e.On, e.T = true, on, t
	switch {
	case !on && (was || !known):
		e.OffT = t
		d.coolant.st.EngOff, d.cargo.st.EngOff = true, true
	case on && known && !was:
		d.started(t)
	}
}

// started notes an engine start at t: missing data counts from here, and
// coolant's heat soak lasts as long as the engine was off, at most
// HeatSoak.
func (d *Detector) started(t int64) {
	soak := min(t-d.eng.OffT, int64(d.cfg.Coolant.HeatSoak))
	for _, s := range []*series{&d.coolant, &d.cargo} {
		s.st.EngOff, s.st.EngOnT, s.st.SoakUntil = false, t, t+soak
	}
}

// staleEngine is how long without engine speed, while temperatures come,
// an engine known to be off is taken to be running.
func (d *Detector) staleEngine() int64 {
	if m := int64(d.cfg.Coolant.MissingAfter); m > 0 {
		return m
	}
	return int64(30 * time.Second)
}

func (d *Detector) transition(sig sensors.Signal, s *series, ev event, t int64, v float64) Transition {
	tr := Transition{
		Truck: d.truck, Signal: sig, Kind: ev.kind, Severity: ev.sev, Phase: ev.phase,
		Start: ev.start, Time: t, Value: v, Baseline: s.baseline(), ConfigHash: d.hash,
		Low: math.NaN(), High: math.NaN(), Active: ev.active,
	}
	if s.st.Ready {
		tr.Low, tr.High = s.st.Lo, s.st.Hi
	}
	return tr
}

// Series is the detector of one signal of unknown nature, as used by
// cmd/detect-replay: the same algorithm as Detector, without truck or
// signal. Not safe for concurrent use.
type Series struct {
	cfg  SignalConfig
	hash uint64
	s    series
}

// NewSeries returns a single-signal detector; cfg must be valid.
func NewSeries(cfg SignalConfig) (*Series, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect new series: %w", err)
	}
	return &Series{cfg: cfg, hash: cfg.Hash()}, nil
}

// Observe folds in the value v measured at t (Unix ns) and returns the
// alert transition it caused, if any (Truck and Signal empty). It never
// allocates.
func (x *Series) Observe(t int64, v float64) (Transition, bool) {
	ev, ok := x.s.observe(&x.cfg, t, v)
	if !ok {
		return Transition{}, false
	}
	return x.transition(ev, t, v), true
}

// Advance tells the series that the caller's clock reads now (Unix ns, on
// the readings' clock) and returns the missing-data transition that
// follows, if any, as Detector.Advance does. It never allocates.
func (x *Series) Advance(now int64) (Transition, bool) {
	ev, ok := x.s.advance(&x.cfg, now, true)
	if !ok {
		return Transition{}, false
	}
	return x.transition(ev, now, x.s.st.LastX), true
}

func (x *Series) transition(ev event, t int64, v float64) Transition {
	tr := Transition{Kind: ev.kind, Severity: ev.sev, Phase: ev.phase, Start: ev.start, Time: t, Value: v,
		Baseline: x.s.baseline(), ConfigHash: x.hash, Low: math.NaN(), High: math.NaN(), Active: ev.active}
	if x.s.st.Ready {
		tr.Low, tr.High = x.s.st.Lo, x.s.st.Hi
	}
	return tr
}

// Score is an anomaly score in [0,1] for the last reading: 0.5 or more
// exactly when an alert is open; below 0.5 it grows as the reading nears
// the deviation threshold.
func (x *Series) Score() float64 { return x.s.score(&x.cfg) }

// Band returns the learned normal band and alert state.
func (x *Series) Band() Band { return x.s.band(&x.cfg) }

// State encoding: magic, version, truck, config (both classes, then the
// product), then each watched signal's state and the engine's, all
// little-endian with fixed sizes.
var stateMagic = []byte("TGDET")

const stateVersion = 5

var (
	seriesStateSize = binary.Size(seriesState{})
	engineStateSize = binary.Size(engineState{})
)

// MarshalBinary saves the detector's state (truck, configuration and
// everything learned) so that UnmarshalBinary, on this or another
// platform, restores a detector that continues exactly as this one would.
func (d *Detector) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(d.truck)+2*signalConfigSize+2*seriesStateSize)
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(d.truck)))
	b = append(b, d.truck...)
	b = d.cfg.Coolant.appendBinary(b)
	b = d.cfg.Cargo.appendBinary(b)
	b = binary.AppendUvarint(b, uint64(len(d.cfg.Product)))
	b = append(b, d.cfg.Product...)
	var err error
	for _, s := range []*series{&d.coolant, &d.cargo} {
		if b, err = binary.Append(b, binary.LittleEndian, &s.st); err != nil {
			return nil, fmt.Errorf("detect save state: %w", err)
		}
	}
	if b, err = binary.Append(b, binary.LittleEndian, &d.eng); err != nil {
		return nil, fmt.Errorf("detect save state: %w", err)
	}
	return b, nil
}

// UnmarshalBinary restores state saved by MarshalBinary, replacing d's
// truck, configuration and learned state. On error d is unchanged; the
// error names what was wrong and wraps ErrState.
func (d *Detector) UnmarshalBinary(data []byte) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("detect restore state: %w: "+format, append([]any{ErrState}, a...)...)
	}
	if !bytes.HasPrefix(data, stateMagic) {
		return fail("bad magic")
	}
	b := data[len(stateMagic):]
	if len(b) < 1 || b[0] != stateVersion {
		return fail("unsupported version")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)-k) || n > 1<<10 {
		return fail("bad truck id length")
	}
	truck := string(b[k : k+int(n)])
	b = b[k+int(n):]
	if len(b) < 2*signalConfigSize {
		return fail("%d bytes after the truck id, want at least %d", len(b), 2*signalConfigSize)
	}
	var cfg Config
	cfg.Coolant.decodeBinary(b[:signalConfigSize])
	cfg.Cargo.decodeBinary(b[signalConfigSize : 2*signalConfigSize])
	b = b[2*signalConfigSize:]
	n, k = binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || n > 64 {
		return fail("bad product length")
	}
	cfg.Product = string(b[k : k+int(n)])
	b = b[k+int(n):]
	if err := cfg.Validate(); err != nil {
		return fail("config: %v", err)
	}
	if want := 2*seriesStateSize + engineStateSize; len(b) != want {
		return fail("%d bytes of signal state, want %d", len(b), want)
	}
	var sts [2]seriesState
	for i := range sts {
		if _, err := binary.Decode(b[:seriesStateSize], binary.LittleEndian, &sts[i]); err != nil {
			return fail("signal %d: %v", i, err)
		}
		if err := sts[i].check(); err != nil {
			return fail("signal %d: %v", i, err)
		}
		b = b[seriesStateSize:]
	}
	var eng engineState
	if _, err := binary.Decode(b, binary.LittleEndian, &eng); err != nil {
		return fail("engine: %v", err)
	}
	d.truck, d.cfg, d.hash = truck, cfg, cfg.Hash()
	d.coolant.st, d.cargo.st, d.eng = sts[0], sts[1], eng
	return nil
}

// check rejects decoded state whose indices or enums are out of range.
func (st *seriesState) check() error {
	switch {
	case st.NWarm < 0 || st.NWarm > warmCap:
		return fmt.Errorf("warm-up count %d out of range", st.NWarm)
	case st.RHead < 0 || st.RHead >= riseCap || st.RLen < 0 || st.RLen > riseCap:
		return fmt.Errorf("rise ring %d/%d out of range", st.RHead, st.RLen)
	case st.LHead < 0 || st.LHead >= lvlCap || st.LLen < 0 || st.LLen > lvlCap:
		return fmt.Errorf("level ring %d/%d out of range", st.LHead, st.LLen)
	case st.Kind >= numKinds || st.Sev >= numSeverities:
		return fmt.Errorf("alert kind %d / severity %d out of range", st.Kind, st.Sev)
	case st.Open != (st.Sev != SeverityNone):
		return fmt.Errorf("alert open=%v with severity %v", st.Open, st.Sev)
	}
	return nil
}
