package detect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// NOTE: first, thin detector for the walking skeleton. Issue 10 replaces the
// internals; the exported API (Config, DefaultConfig, New, Observe) stays.

// SignalConfig configures detection for one temperature signal.
type SignalConfig struct {
	// Sustain is how long readings must stay away from normal (or beyond a
	// limit) before an alert is raised.
	Sustain time.Duration
	// Warmup is how many readings are learned before deviations count.
	Warmup int
	// MaxDeviation is how far (in the signal's unit) a reading may be from
	// the learned baseline and still be normal.
	MaxDeviation float64
	// HighLimit is an absolute limit; readings above it are critical.
	HighLimit float64
}

// Config is the detector configuration for every signal class.
type Config struct {
	Coolant SignalConfig
	Cargo   SignalConfig
}

// DefaultConfig returns the configuration used when none is given.
func DefaultConfig() Config {
	return Config{
		Coolant: SignalConfig{Sustain: 10 * time.Second, Warmup: 20, MaxDeviation: 8, HighLimit: 105},
		Cargo:   SignalConfig{Sustain: 10 * time.Second, Warmup: 20, MaxDeviation: 6, HighLimit: 50},
	}
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	for _, s := range []struct {
		name string
		c    SignalConfig
	}{{"coolant", c.Coolant}, {"cargo", c.Cargo}} {
		switch {
		case s.c.Sustain <= 0:
			return fmt.Errorf("detect config: %s.sustain must be positive, got %v", s.name, s.c.Sustain)
		case s.c.Warmup < 1:
			return fmt.Errorf("detect config: %s.warmup must be at least 1, got %d", s.name, s.c.Warmup)
		case !(s.c.MaxDeviation > 0):
			return fmt.Errorf("detect config: %s.max_deviation must be positive, got %v", s.name, s.c.MaxDeviation)
		}
	}
	return nil
}

// Hash identifies the configuration in transitions.
func (c Config) Hash() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", c)
	return h.Sum64()
}

type signalState struct {
	n         int
	baseline  float64
	away      bool
	awaySince int64
	open      bool
	start     int64
	severity  Severity
	kind      Kind
}

// Detector watches the temperature signals of one truck. It is not safe for
// concurrent use.
type Detector struct {
	truck string
	cfg   Config
	hash  uint64
	state [sensors.NumSignals]signalState
}

// New returns a detector for truck with cfg.
func New(truck string, cfg Config) (*Detector, error) {
	if truck == "" {
		return nil, errors.New("detect: empty truck id")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{truck: truck, cfg: cfg, hash: cfg.Hash()}, nil
}

func (d *Detector) signalConfig(s sensors.Signal) *SignalConfig {
	switch s {
	case sensors.CoolantTemp:
		return &d.cfg.Coolant
	case sensors.CargoTemp:
		return &d.cfg.Cargo
	}
	return nil
}

// Observe folds one reading into the detector state and returns the alert
// transition it caused, if any. It never allocates.
func (d *Detector) Observe(r sensors.Reading) (t Transition, ok bool) {
	sc := d.signalConfig(r.Signal)
	if sc == nil || math.IsNaN(r.Value) {
		return t, false
	}
	st := &d.state[r.Signal]
	base := math.NaN()
	if st.n >= sc.Warmup {
		base = st.baseline
	}
	kind, sev := KindInvalid, SeverityNone
	switch {
	case r.Value > sc.HighLimit:
		kind, sev = KindLimit, SeverityCritical
	case st.n >= sc.Warmup && math.Abs(r.Value-st.baseline) > sc.MaxDeviation:
		kind, sev = KindDeviation, SeverityWarning
	}
	if sev == SeverityNone {
		st.away = false
		// Learn only normal readings.
		st.n++
		if st.n == 1 {
			st.baseline = r.Value
		} else {
			st.baseline += (r.Value - st.baseline) / math.Min(float64(st.n), 60)
		}
		if st.open {
			st.open = false
			return d.transition(r, st, Cleared, base), true
		}
		return t, false
	}
	if !st.away {
		st.away, st.awaySince = true, r.Time
	}
	if r.Time-st.awaySince < int64(sc.Sustain) {
		return t, false
	}
	if !st.open {
		st.open, st.start, st.kind, st.severity = true, st.awaySince, kind, sev
		return d.transition(r, st, Raised, base), true
	}
	if sev != st.severity {
		st.kind, st.severity = kind, sev
		return d.transition(r, st, Changed, base), true
	}
	return t, false
}

func (d *Detector) transition(r sensors.Reading, st *signalState, p Phase, base float64) Transition {
	return Transition{
		Truck: d.truck, Signal: r.Signal, Kind: st.kind, Severity: st.severity, Phase: p,
		Start: st.start, Time: r.Time, Value: r.Value, Baseline: base, ConfigHash: d.hash,
	}
}
