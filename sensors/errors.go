package sensors

import "errors"

// Sentinel errors. Callers match them with errors.Is; the wrapped error text
// names the input that was wrong and where.
var (
	// ErrDBC reports a DBC file that cannot be used: a syntax error, or a
	// signal that the decoder cannot map (unknown TankguardSignal name,
	// standard 11-bit id, signal outside its message).
	ErrDBC = errors.New("invalid DBC")
	// ErrUnknownSignal reports a Signal that the DBC does not carry.
	ErrUnknownSignal = errors.New("signal not in DBC")
	// ErrBadAddress reports a CAN or serial address that is not understood.
	ErrBadAddress = errors.New("bad address")
	// ErrNMEAGarbage reports a serial line that is not an NMEA sentence.
	ErrNMEAGarbage = errors.New("nmea: not a sentence")
	// ErrNMEAChecksum reports a sentence whose checksum is missing or wrong.
	ErrNMEAChecksum = errors.New("nmea: bad checksum")
	// ErrNMEAMalformed reports a sentence with a valid checksum whose fields
	// do not parse.
	ErrNMEAMalformed = errors.New("nmea: malformed sentence")
	// ErrNMEAUnsupported reports a well-formed sentence of a type tankguard
	// does not use (GSV, GSA, ...). It is counted as ignored, not as bad.
	ErrNMEAUnsupported = errors.New("nmea: sentence type not used")
	// ErrCandump reports a candump log line that does not parse.
	ErrCandump = errors.New("candump: malformed line")
)

// ErrDM1 reports DM1 (active trouble codes) data that does not decode.
var ErrDM1 = errors.New("dm1: malformed message")
