package firmwaresim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("90s", "1m30s") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "90s" or 90 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: want \"90s\" or seconds, got %s", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// FaultKind names one kind of injected fault.
type FaultKind string

// Fault kinds. See the package documentation for each kind's parameters.
const (
	FaultOverheat     FaultKind = "overheat"       // coolant ramps to Peak over Ramp; hazard
	FaultCoolantLoss  FaultKind = "coolant_loss"   // coolant equilibrium rises Rate °C/min up to Peak; hazard
	FaultFanFailure   FaultKind = "fan_failure"    // radiator fan dead: coolant settles 15-25 °C higher; hazard
	FaultCargoHeating FaultKind = "cargo_heating"  // fire: cargo rises Rate °C/min up to Peak; hazard
	FaultStuck        FaultKind = "sensor_stuck"   // Signal repeats its value from the fault start
	FaultDropout      FaultKind = "sensor_dropout" // Signal's message missing (Mode "missing") or J1939 "error"/"not_available"
	FaultGlitch       FaultKind = "glitch"         // Count single samples of Signal off by Amplitude, Every apart
	FaultNoiseBurst   FaultKind = "noise_burst"    // Signal gets extra Gaussian noise of sigma Amplitude
	FaultCANSilence   FaultKind = "can_silence"    // no CAN frames at all
	FaultCANGarbage   FaultKind = "can_garbage"    // with Probability per frame: bit flips, bad DLC, 11-bit ids, unknown PGNs
	FaultNMEAGarbage  FaultKind = "nmea_garbage"   // with Probability per sentence: bad checksums, truncation, noise lines
	FaultGPSLoss      FaultKind = "gps_loss"       // receiver loses its fix (RMC V, GGA 0); VP not available
	FaultClockJump    FaultKind = "clock_jump"     // GNSS time in NMEA shifted by Offset
	// Kinds of the realistic model (TruckScenario.Model "truck").
	FaultThermostatStuck FaultKind = "thermostat_stuck" // thermostat stuck closed: only the bypass cools; hazard
)

// faultInfo describes each kind: whether it is a hazard that must raise an
// alert, and which signal it affects by default ("" when not one signal).
var faultInfo = map[FaultKind]struct {
	hazard bool
	signal string
}{
	FaultOverheat:     {true, "coolant_temp"},
	FaultCoolantLoss:  {true, "coolant_temp"},
	FaultFanFailure:   {true, "coolant_temp"},
	FaultCargoHeating: {true, "cargo_temp"},
	FaultStuck:        {false, "coolant_temp"},
	FaultDropout:      {false, "coolant_temp"},
	FaultGlitch:       {false, "coolant_temp"},
	FaultNoiseBurst:   {false, "coolant_temp"},
	FaultCANSilence:   {false, ""},
	FaultCANGarbage:   {false, ""},
	FaultNMEAGarbage:  {false, ""},
	FaultGPSLoss:      {false, ""},
	FaultClockJump:    {false, ""},

	FaultThermostatStuck: {true, "coolant_temp"},
}

// realisticOnly are the fault kinds only the realistic model has.
var realisticOnly = map[FaultKind]bool{FaultThermostatStuck: true}

// Fault is one entry of a truck's fault timeline. Only the fields a kind
// uses matter; zero values take the kind's defaults.
type Fault struct {
	// Kind is the fault kind (see the Fault* constants).
	Kind FaultKind `json:"kind"`
	// Signal is the affected signal for sensor faults (stuck, dropout,
	// glitch, noise_burst), as sensors.Signal.String(); default coolant_temp.
	Signal string `json:"signal,omitempty"`
	// At is when the fault starts, after the truck starts (its first CAN
	// client connects).
	At Duration `json:"at"`
	// Duration is how long the fault lasts; 0 means until the end.
	Duration Duration `json:"duration,omitempty"`
	// Ramp is how long overheat takes to reach Peak (default 30s).
	Ramp Duration `json:"ramp,omitempty"`
	// Peak is the value a rising fault stops at (°C). Defaults: overheat
	// 115, coolant_loss 125, cargo_heating 150.
	Peak float64 `json:"peak,omitempty"`
	// Rate is the rise of coolant_loss and cargo_heating in °C per minute.
	// Defaults: coolant_loss 4, cargo_heating 20.
	Rate float64 `json:"rate,omitempty"`
	// Amplitude is the glitch offset (default +40) or the noise_burst sigma
	// (default 3), in the signal's unit.
	Amplitude float64 `json:"amplitude,omitempty"`
	// Count is how many glitch samples (default 1), Every apart (default 10s).
	Count int      `json:"count,omitempty"`
	Every Duration `json:"every,omitempty"`
	// Probability is the share of frames (can_garbage) or sentences
	// (nmea_garbage) corrupted; default 0.1.
	Probability float64 `json:"probability,omitempty"`
	// Mode of sensor_dropout: "missing" (default; message not sent),
	// "error" or "not_available" (J1939 special values sent).
	Mode string `json:"mode,omitempty"`
	// Offset is the clock_jump shift of GNSS time (may be negative).
	Offset Duration `json:"offset,omitempty"`
}

// TruckScenario configures one truck.
type TruckScenario struct {
	// Warm starts the engine at its normal temperature instead of ambient,
	// so tests need not wait for warm-up.
	Warm *bool `json:"warm,omitempty"`
	// Ambient is the truck's daily mean ambient temperature (°C); default
	// random 8..25.
	Ambient *float64 `json:"ambient,omitempty"`
	// Route is a list of [lat, lon] stops driven in order and repeated;
	// default a generated tour between Benelux/Rhine-Ruhr depots.
	Route [][2]float64 `json:"route,omitempty"`
	// CargoProbe selects how the cargo temperature is sent: "can" (default,
	// PGN 65400) or "serial" (the probe line protocol on its own
	// pseudo-terminal; see sensors.ProbeParser).
	CargoProbe string `json:"cargo_probe,omitempty"`
	// VTG adds a VTG sentence after RMC and GGA.
	VTG bool `json:"vtg,omitempty"`
	// Faults is the truck's fault timeline.
	Faults []Fault `json:"faults,omitempty"`

	// Model selects the truck physics: "" (the original model, which every
	// scenario written before it means) or "truck", the realistic heavy
	// diesel tanker (see the package documentation, "Realistic model"):
	// ignition and engine stops, thermostat and fan, grade and payload,
	// engine speed, oil, fuel and ambient temperature on the bus. The
	// fields below need it.
	Model string `json:"model,omitempty"`
	// AmbientSwing is the half amplitude (°C) of the diurnal ambient
	// swing; default random 3..8.
	AmbientSwing *float64 `json:"ambient_swing,omitempty"`
	// SunLoad is how many °C full sun adds to the tank's equilibrium;
	// default random 5..9.
	SunLoad *float64 `json:"sun_load,omitempty"`
	// Payload is the cargo load as a share of the maximum (0..1, 25 t);
	// default random 0.3..1. Loading events set it to 1.
	Payload *float64 `json:"payload,omitempty"`
	// Hills is the steepest road grade (percent) of the generated route's
	// sections; default random 1..4.
	Hills *float64 `json:"hills,omitempty"`
	// Stops selects the generated stops at route points: "random"
	// (default: short idles, long idles, engine-off breaks of minutes to
	// hours, loading at the depot) or "none" (only the events below).
	Stops string `json:"stops,omitempty"`
	// Events are scripted operations (engine off, idle, climb, loading) at
	// given times, on top of the generated ones.
	Events []Event `json:"events,omitempty"`
}

// EventKind names a scripted operation of the realistic model.
type EventKind string

// Event kinds.
const (
	EventEngineOff EventKind = "engine_off" // truck stops, engine off (and ignition, unless KeyOn) for Duration
	EventIdle      EventKind = "idle"       // truck stops, engine idles for Duration
	EventClimb     EventKind = "climb"      // road climbs at Grade percent for Duration
	EventLoad      EventKind = "load"       // truck stops, engine drives the pump (PTO); cargo filled with product at ProductTemp
)

// Event is one scripted operation of a truck of the realistic model.
type Event struct {
	Kind EventKind `json:"kind"`
	// At is when it starts, after the truck starts; Duration how long it
	// lasts (required).
	At       Duration `json:"at"`
	Duration Duration `json:"duration"`
	// Grade of a climb, percent (default 6).
	Grade float64 `json:"grade,omitempty"`
	// ProductTemp is the loaded product's temperature (°C) for load;
	// default ambient + 8.
	ProductTemp *float64 `json:"product_temp,omitempty"`
	// KeyOn keeps the ignition on through an engine_off stop: the engine
	// ECU keeps sending (0 rpm), and on a cold day the heater's electric
	// pump draws heat from the still coolant.
	KeyOn bool `json:"key_on,omitempty"`
}

// Scenario is the simulator's script: per-truck settings and fault
// timelines. The JSON form is documented in the package documentation;
// firmware-sim/testdata/scenario.json is an example.
type Scenario struct {
	// Seed makes the run deterministic; Config.Seed overrides it when
	// non-zero.
	Seed int64 `json:"seed,omitempty"`
	// TimeOfDay, "HH:MM" UTC, fixes the time of day the physics starts at
	// (sun, diurnal ambient), so a run's values depend only on the seed;
	// default: the clock's time when each truck starts.
	TimeOfDay string `json:"time_of_day,omitempty"`
	// Default applies to every truck not named in Trucks.
	Default TruckScenario `json:"default"`
	// Trucks maps a truck id ("truck-01") to its settings.
	Trucks map[string]TruckScenario `json:"trucks,omitempty"`
}

// ParseScenario decodes a JSON scenario, rejecting unknown fields, and
// validates it.
func ParseScenario(b []byte) (Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Scenario{}, fmt.Errorf("parse scenario: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Scenario{}, err
	}
	return s, nil
}

// Validate reports the first problem, naming the truck and fault.
func (s Scenario) Validate() error {
	check := func(name string, ts TruckScenario) error {
		if err := ts.validateModel(name); err != nil {
			return err
		}
		for i, f := range ts.Faults {
			if _, ok := faultInfo[f.Kind]; !ok {
				return fmt.Errorf("scenario: %s fault %d: unknown kind %q (known: %s)", name, i, f.Kind, knownKinds())
			}
			if realisticOnly[f.Kind] && ts.Model != ModelTruck {
				return fmt.Errorf("scenario: %s fault %d: kind %s needs \"model\": %q", name, i, f.Kind, ModelTruck)
			}
			if f.At < 0 || f.Duration < 0 || f.Ramp < 0 || f.Every < 0 || f.Count < 0 {
				return fmt.Errorf("scenario: %s fault %d (%s): negative time or count", name, i, f.Kind)
			}
			if f.Signal != "" {
				if _, err := sensors.ParseSignal(f.Signal); err != nil {
					return fmt.Errorf("scenario: %s fault %d (%s): %w", name, i, f.Kind, err)
				}
			}
			if f.Probability < 0 || f.Probability > 1 {
				return fmt.Errorf("scenario: %s fault %d (%s): probability %v outside 0..1", name, i, f.Kind, f.Probability)
			}
			switch f.Mode {
			case "", "missing", "error", "not_available":
			default:
				return fmt.Errorf("scenario: %s fault %d (%s): mode %q, want missing, error or not_available", name, i, f.Kind, f.Mode)
			}
		}
		switch ts.CargoProbe {
		case "", "can", "serial":
		default:
			return fmt.Errorf("scenario: %s: cargo_probe %q, want can or serial", name, ts.CargoProbe)
		}
		for i, p := range ts.Route {
			if p[0] < -90 || p[0] > 90 || p[1] < -180 || p[1] > 180 {
				return fmt.Errorf("scenario: %s: route point %d %v is not a [lat, lon]", name, i, p)
			}
		}
		if len(ts.Route) == 1 {
			return fmt.Errorf("scenario: %s: a route needs at least two points", name)
		}
		return nil
	}
	if s.TimeOfDay != "" {
		if _, err := time.Parse("15:04", s.TimeOfDay); err != nil {
			return fmt.Errorf("scenario: time_of_day %q: want HH:MM", s.TimeOfDay)
		}
	}
	if err := check("default", s.Default); err != nil {
		return err
	}
	for name, ts := range s.Trucks {
		if err := check(name, ts); err != nil {
			return err
		}
	}
	return nil
}

// ModelTruck is TruckScenario.Model for the realistic truck.
const ModelTruck = "truck"

// validateModel checks the realistic model's fields of truck name.
func (ts TruckScenario) validateModel(name string) error {
	switch ts.Model {
	case "", ModelTruck:
	default:
		return fmt.Errorf("scenario: %s: model %q, want \"\" or %q", name, ts.Model, ModelTruck)
	}
	if ts.Ambient != nil && (*ts.Ambient < -30 || *ts.Ambient > 50) {
		return fmt.Errorf("scenario: %s: ambient %v outside -30..50 °C", name, *ts.Ambient)
	}
	if ts.Model != ModelTruck {
		for field, set := range map[string]bool{
			"ambient_swing": ts.AmbientSwing != nil, "sun_load": ts.SunLoad != nil, "payload": ts.Payload != nil,
			"hills": ts.Hills != nil, "stops": ts.Stops != "", "events": len(ts.Events) > 0,
		} {
			if set {
				return fmt.Errorf("scenario: %s: %s needs \"model\": %q", name, field, ModelTruck)
			}
		}
		return nil
	}
	if v := ts.AmbientSwing; v != nil && (*v < 0 || *v > 15) {
		return fmt.Errorf("scenario: %s: ambient_swing %v outside 0..15 °C", name, *v)
	}
	if v := ts.SunLoad; v != nil && (*v < 0 || *v > 20) {
		return fmt.Errorf("scenario: %s: sun_load %v outside 0..20 °C", name, *v)
	}
	if v := ts.Payload; v != nil && (*v < 0 || *v > 1) {
		return fmt.Errorf("scenario: %s: payload %v outside 0..1", name, *v)
	}
	if v := ts.Hills; v != nil && (*v < 0 || *v > 12) {
		return fmt.Errorf("scenario: %s: hills %v outside 0..12 %%", name, *v)
	}
	switch ts.Stops {
	case "", "random", "none":
	default:
		return fmt.Errorf("scenario: %s: stops %q, want random or none", name, ts.Stops)
	}
	for i, e := range ts.Events {
		switch e.Kind {
		case EventEngineOff, EventIdle, EventClimb, EventLoad:
		default:
			return fmt.Errorf("scenario: %s event %d: unknown kind %q (known: climb, engine_off, idle, load)", name, i, e.Kind)
		}
		if e.At < 0 || e.Duration <= 0 {
			return fmt.Errorf("scenario: %s event %d (%s): at must be >= 0 and duration > 0", name, i, e.Kind)
		}
		if e.Grade < -12 || e.Grade > 12 {
			return fmt.Errorf("scenario: %s event %d (%s): grade %v outside -12..12 %%", name, i, e.Kind, e.Grade)
		}
		if e.KeyOn && e.Kind != EventEngineOff {
			return fmt.Errorf("scenario: %s event %d (%s): key_on is for engine_off", name, i, e.Kind)
		}
		if p := e.ProductTemp; p != nil && (*p < -30 || *p > 60) {
			return fmt.Errorf("scenario: %s event %d (%s): product_temp %v outside -30..60 °C", name, i, e.Kind, *p)
		}
	}
	return nil
}

// ValidateTrucks checks that every truck the scenario names is one of n
// trucks with prefix, so a fault for a truck that does not exist is an
// error, not silently ignored.
func (s Scenario) ValidateTrucks(prefix string, n int) error {
	for name := range s.Trucks {
		found := false
		for i := 0; i < n && !found; i++ {
			found = TruckID(prefix, i, n) == name
		}
		if !found {
			return fmt.Errorf("scenario: truck %q does not exist (%d trucks: %s .. %s)", name, n, TruckID(prefix, 0, n), TruckID(prefix, n-1, n))
		}
	}
	return nil
}

func knownKinds() string {
	var ks []string
	for k := range faultInfo {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// For returns the settings of truck id.
func (s Scenario) For(id string) TruckScenario {
	if ts, ok := s.Trucks[id]; ok {
		return ts
	}
	return s.Default
}

// AddFaultFlag parses the command-line shortcut "truck-01@60s" for kind
// and adds the fault to s.
func (s *Scenario) AddFaultFlag(kind FaultKind, spec string) error {
	id, at, ok := strings.Cut(spec, "@")
	if !ok || id == "" {
		return fmt.Errorf("-%s %q: want TRUCK@OFFSET, e.g. truck-01@60s", kind, spec)
	}
	d, err := time.ParseDuration(at)
	if err != nil {
		return fmt.Errorf("-%s %q: %w", kind, spec, err)
	}
	if s.Trucks == nil {
		s.Trucks = map[string]TruckScenario{}
	}
	ts, ok := s.Trucks[id]
	if !ok {
		ts = s.Default
		ts.Faults = append([]Fault(nil), s.Default.Faults...)
	}
	ts.Faults = append(ts.Faults, Fault{Kind: kind, At: Duration(d)})
	s.Trucks[id] = ts
	return s.Validate()
}

// physicsStart is the time the physics of a truck created at now starts at.
func (s Scenario) physicsStart(now time.Time) time.Time {
	if s.TimeOfDay == "" {
		return now
	}
	tod, err := time.Parse("15:04", s.TimeOfDay)
	if err != nil {
		return now
	}
	return time.Date(2026, 6, 21, tod.Hour(), tod.Minute(), 0, 0, time.UTC)
}
