package firmwaresim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
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

// Fault kinds. Hazards (those that must raise an alert) are marked.
const (
	// FaultOverheat ramps coolant from its normal band to Peak (default
	// 115 °C) over Ramp (default 30 s), then holds it. Hazard.
	FaultOverheat FaultKind = "overheat"
)

// faultInfo describes each kind: whether it is a hazard and which signal it
// affects by default.
var faultInfo = map[FaultKind]struct {
	hazard bool
	signal string
}{
	FaultOverheat: {true, "coolant_temp"},
}

// Fault is one entry of a truck's fault timeline.
type Fault struct {
	// Kind is the fault kind (see the Fault* constants).
	Kind FaultKind `json:"kind"`
	// At is when the fault starts, after the truck starts (its first CAN
	// client connects).
	At Duration `json:"at"`
	// Duration is how long the fault lasts; 0 means until the end.
	Duration Duration `json:"duration,omitempty"`
	// Ramp is how long a gradual fault takes to reach Peak (overheat).
	Ramp Duration `json:"ramp,omitempty"`
	// Peak is the value a gradual fault reaches (overheat: °C).
	Peak float64 `json:"peak,omitempty"`
}

// TruckScenario configures one truck.
type TruckScenario struct {
	// Warm starts the engine at its normal temperature instead of ambient,
	// so tests need not wait for warm-up.
	Warm *bool `json:"warm,omitempty"`
	// Faults is the truck's fault timeline.
	Faults []Fault `json:"faults,omitempty"`
}

// Scenario is the simulator's script: per-truck settings and fault
// timelines. The JSON form is documented in firmware-sim/testdata/scenario.json.
type Scenario struct {
	// Seed makes the run deterministic; Config.Seed overrides it when
	// non-zero.
	Seed int64 `json:"seed,omitempty"`
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
		for i, f := range ts.Faults {
			if _, ok := faultInfo[f.Kind]; !ok {
				return fmt.Errorf("scenario: %s fault %d: unknown kind %q (known: %s)", name, i, f.Kind, knownKinds())
			}
			if f.At < 0 || f.Duration < 0 || f.Ramp < 0 {
				return fmt.Errorf("scenario: %s fault %d (%s): negative time", name, i, f.Kind)
			}
		}
		return nil
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

// ParseFaultFlag parses the command-line shortcut "truck-01@60s" for kind
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
