package detect

import (
	"fmt"

	"github.com/abc4logistics/tankguard/sensors"
)

// Kind says what condition an alert is about.
type Kind uint8

// Alert kinds. Their numbers are part of the uplink wire format and the
// archive: never renumber, only append.
const (
	KindInvalid    Kind = iota
	KindDeviation       // readings stayed away from the learned normal for the sustain period
	KindLimit           // readings crossed a configured absolute limit
	KindRateOfRise      // the value rose faster than the configured rate
	KindStuck           // the sensor repeated the same value for too long (flat line)
	KindMissing         // no readings for longer than the configured gap plus grace
	KindVolatility      // the reading-to-reading variability left its learned range
	numKinds
)

var kindNames = [numKinds]string{"invalid", "deviation", "limit", "rate_of_rise", "stuck", "missing", "volatility"}

// String returns the kind's stable snake_case name.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds is a set of kinds, bit 1<<k for kind k: every condition active on
// a signal at once (an open limit alert on a frozen sensor: limit and
// stuck).
type Kinds uint16

// Has reports whether k is in the set.
func (m Kinds) Has(k Kind) bool { return k < 16 && m&(1<<k) != 0 }

// String lists the set's kinds in kind order, joined by "+" ("" if empty).
func (m Kinds) String() string {
	var b []byte
	for k := Kind(1); k < numKinds; k++ {
		if m.Has(k) {
			if len(b) > 0 {
				b = append(b, '+')
			}
			b = append(b, kindNames[k]...)
		}
	}
	return string(b)
}

// Severity orders how urgent an alert is.
type Severity uint8

// Severities, in increasing urgency.
const (
	SeverityNone     Severity = iota
	SeverityInfo              // worth a look; no action needed now
	SeverityWarning           // the driver should check soon
	SeverityCritical          // stop safely now
	numSeverities
)

var severityNames = [numSeverities]string{"none", "info", "warning", "critical"}

// String returns the severity's stable lower-case name.
func (s Severity) String() string {
	if s < numSeverities {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// Phase is the step of an alert's lifecycle that a Transition reports.
type Phase uint8

// Phases.
const (
	PhaseInvalid Phase = iota
	Raised             // the alert opened
	Changed            // its severity (or kind) changed while open
	Cleared            // the condition ended
	numPhases
)

var phaseNames = [numPhases]string{"invalid", "raised", "changed", "cleared"}

// String returns the phase's stable lower-case name.
func (p Phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Transition is one step in the lifecycle of one alert on one signal of one
// truck. At most one alert is open per (truck, signal); it carries the most
// urgent condition present. It is a value type: copy it freely.
type Transition struct {
	// Seq is the per-truck sequence number assigned by the gateway's buffer
	// (shared with readings); 0 before that and in the cloud's own
	// re-detection.
	Seq      uint64
	Truck    string
	Signal   sensors.Signal
	Kind     Kind
	Severity Severity
	Phase    Phase
	// Start is when the condition began (Unix ns UTC): the first reading
	// that departed from normal, not the one that completed the sustain
	// period.
	Start int64
	// Time is the time of the reading that caused this transition.
	Time int64
	// Value is that reading's value; Baseline the learned normal at that
	// moment (NaN while none is learned).
	Value    float64
	Baseline float64
	// ConfigHash identifies the detector configuration that decided.
	ConfigHash uint64
	// Low and High are the edges of the learned normal band at that moment
	// (NaN while none is learned); a reading counts as away from normal
	// when it is outside them by more than the configured margin.
	Low, High float64
	// Active is every condition active on the signal at that moment (Kind
	// is the most urgent of them); empty in Cleared. Stuck joining an open
	// alert makes a Changed transition even if Kind stays.
	Active Kinds
}

// Key identifies the alert a transition belongs to: the same for Raised,
// Changed and Cleared of one excursion.
func (t Transition) Key() string {
	return fmt.Sprintf("%s/%s/%d", t.Truck, t.Signal, t.Start)
}

// Ack records that someone acknowledged an open alert: the driver in the
// cab, or an operator in the fleet console. (Truck, Signal, Start) names
// the alert, as in Transition.Key. It is a value type.
type Ack struct {
	// Seq is the per-truck sequence number assigned by the gateway's buffer.
	Seq    uint64
	Truck  string
	Signal sensors.Signal
	// Start is the acknowledged alert's Start.
	Start int64
	// Time is when it was acknowledged, Unix ns UTC.
	Time int64
	// By names who: the fleet user's name for AckFleet; for AckDriver a
	// label ("driver"). Nothing decides anything by it: Origin says who.
	By string
	// Severity is the severity that was acknowledged; a worse one sounds again.
	Severity Severity
	// Origin says where the acknowledgement was made. It is set by the
	// code that takes it in, from the channel it came by (the cab button,
	// a truck's uplink, the cloud's command topic), never from By.
	Origin AckOrigin
}

// AckOrigin says where an acknowledgement was made.
type AckOrigin uint8

// Acknowledgement origins.
const (
	AckOriginUnknown AckOrigin = iota
	// AckDriver: the driver pressed the acknowledge button on the cab
	// display (and only the cab makes these).
	AckDriver
	// AckFleet: a named fleet user acknowledged in the console.
	AckFleet
)

// String returns "driver", "fleet" or "unknown".
func (o AckOrigin) String() string {
	switch o {
	case AckDriver:
		return "driver"
	case AckFleet:
		return "fleet"
	}
	return "unknown"
}

// MarshalText encodes o as its String.
func (o AckOrigin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText decodes "driver", "fleet" or "unknown".
func (o *AckOrigin) UnmarshalText(b []byte) error {
	for _, v := range []AckOrigin{AckOriginUnknown, AckDriver, AckFleet} {
		if v.String() == string(b) {
			*o = v
			return nil
		}
	}
	return fmt.Errorf("detect: ack origin %q: want driver or fleet", b)
}

// Key returns the Key of the acknowledged alert.
func (a Ack) Key() string {
	return fmt.Sprintf("%s/%s/%d", a.Truck, a.Signal, a.Start)
}
