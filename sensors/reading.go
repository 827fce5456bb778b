package sensors

import "fmt"

// Signal names one measured quantity of a truck. The zero value is invalid.
type Signal uint8

// The signals a gateway reads. Their numbers are part of the uplink wire
// format and the archive: never renumber, only append.
const (
	SignalInvalid  Signal = iota
	CoolantTemp           // engine coolant temperature, °C (J1939 PGN 65262 SPN 110)
	CargoTemp             // cargo-tank temperature, °C (proprietary PGN, see sensors/tankguard.dbc)
	WheelSpeed            // wheel-based vehicle speed, km/h (J1939 PGN 65265 SPN 84)
	VPLatitude            // latitude from J1939 vehicle position, degrees (PGN 65267 SPN 584)
	VPLongitude           // longitude from J1939 vehicle position, degrees (PGN 65267 SPN 585)
	GNSSLatitude          // latitude from NMEA RMC/GGA, degrees
	GNSSLongitude         // longitude from NMEA RMC/GGA, degrees
	GNSSSpeed             // speed over ground from NMEA RMC/VTG, km/h
	GNSSFixQuality        // GGA fix quality (0 none, 1 GPS, 2 DGPS, ...)
	GNSSSatellites        // GGA satellites in use
	EngineSpeed           // engine speed, rpm (J1939 PGN 61444 EEC1 SPN 190); 0 = engine stopped
	OilTemp               // engine oil temperature, °C (J1939 PGN 65262 ET1 SPN 175)
	FuelTemp              // engine fuel temperature, °C (J1939 PGN 65262 ET1 SPN 174)
	AmbientTemp           // ambient air temperature, °C (J1939 PGN 65269 AMB SPN 171)
	numSignals
)

var signalInfo = [numSignals]struct{ name, unit string }{
	SignalInvalid:  {"invalid", ""},
	CoolantTemp:    {"coolant_temp", "degC"},
	CargoTemp:      {"cargo_temp", "degC"},
	WheelSpeed:     {"wheel_speed", "km/h"},
	VPLatitude:     {"vp_latitude", "deg"},
	VPLongitude:    {"vp_longitude", "deg"},
	GNSSLatitude:   {"gnss_latitude", "deg"},
	GNSSLongitude:  {"gnss_longitude", "deg"},
	GNSSSpeed:      {"gnss_speed", "km/h"},
	GNSSFixQuality: {"gnss_fix_quality", ""},
	GNSSSatellites: {"gnss_satellites", ""},
	EngineSpeed:    {"engine_speed", "rpm"},
	OilTemp:        {"oil_temp", "degC"},
	FuelTemp:       {"fuel_temp", "degC"},
	AmbientTemp:    {"ambient_temp", "degC"},
}

// NumSignals is one more than the largest valid Signal, for tables indexed
// by Signal.
const NumSignals = int(numSignals)

// Valid reports whether s is a known signal.
func (s Signal) Valid() bool { return s > SignalInvalid && s < numSignals }

// String returns the signal's stable snake_case name, as used in the
// archive, the console and configuration files.
func (s Signal) String() string {
	if s < numSignals {
		return signalInfo[s].name
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// Unit returns the signal's unit ("degC", "km/h", "deg" or "").
func (s Signal) Unit() string {
	if s < numSignals {
		return signalInfo[s].unit
	}
	return ""
}

// IsTemperature reports whether the detector watches s as a temperature.
func (s Signal) IsTemperature() bool { return s == CoolantTemp || s == CargoTemp }

// ParseSignal returns the Signal whose String is name.
func ParseSignal(name string) (Signal, error) {
	for s := SignalInvalid + 1; s < numSignals; s++ {
		if signalInfo[s].name == name {
			return s, nil
		}
	}
	return SignalInvalid, fmt.Errorf("unknown signal %q", name)
}

// Flags qualify a Reading.
type Flags uint8

const (
	// ClockUntrusted marks a reading taken before the gateway's clock was
	// confirmed (by GNSS time or NTP); its Time may be wrong.
	ClockUntrusted Flags = 1 << iota
)

// Reading is one measured value of one signal of one truck. It is a small
// value type: copy it freely; it holds no references.
type Reading struct {
	// Seq is the per-truck sequence number, assigned when the gateway's
	// buffer accepts the reading; 0 before that. (Truck, Seq) is unique
	// and is what the cloud deduplicates on.
	Seq uint64
	// Time is when the value was measured, Unix nanoseconds UTC.
	Time int64
	// Value is in the signal's Unit.
	Value  float64
	Signal Signal
	Flags  Flags
}
