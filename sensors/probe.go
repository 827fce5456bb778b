package sensors

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	nmea "github.com/adrianmo/go-nmea"
)

// The serial cargo-tank probe protocol, an alternative to the CAN PGN 65400.
//
// The probe sends one NMEA 0183 proprietary sentence per measurement, 1 Hz
// by default, 9600 baud 8N1, ASCII, CR LF terminated:
//
//	$PTGCT,<compartment>,<temperature>,<status>*hh
//
//	PTGCT        P = proprietary, TG = tankguard, CT = cargo temperature
//	compartment  0..9, 0 = whole tank (integer)
//	temperature  °C, decimal with up to 3 fraction digits, -60..400;
//	             empty when status is V
//	status       A = valid, V = sensor fault (no reading)
//	hh           NMEA checksum: XOR of the bytes between $ and *, 2 hex digits
//
// Example: $PTGCT,0,21.53,A*hh with hh = NMEAChecksum("PTGCT,0,21.53,A").
// Any other line on the port (e.g. a probe's boot banner) is counted and
// skipped. Readings are CargoTemp; compartments are not yet distinguished.

// probeSentenceType is the go-nmea sentence type of a probe line: "P" is
// the talker of proprietary sentences and the rest the type.
const probeSentenceType = "TGCT"

// Probe temperature limits (°C) beyond which a reading is implausible.
const (
	probeMinTemp = -60
	probeMaxTemp = 400
)

// probeSentence is a parsed $PTGCT sentence.
type probeSentence struct {
	nmea.BaseSentence
	compartment int64
	temp        float64
	valid       bool
}

func parseProbeSentence(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := probeSentence{BaseSentence: s}
	if len(p.Fields) != 3 {
		return nil, fmt.Errorf("want 3 fields, got %d", len(p.Fields))
	}
	m.compartment = p.Int64(0, "compartment")
	m.valid = p.EnumString(2, "status", "A", "V") == "A"
	if m.valid {
		m.temp = p.Float64(1, "temperature")
	}
	return m, p.Err()
}

// ProbeStats counts what a probe parser saw; NoFix counts sentences in
// which the probe reported a sensor fault (status V).
type ProbeStats = NMEAStats

// ProbeParser parses cargo-tank probe lines (see the protocol above) into
// CargoTemp readings. Parse is not safe for concurrent use; Stats is.
type ProbeParser struct {
	p nmea.SentenceParser
	c *nmeaCounters
}

// NewProbeParser returns a parser with its own counters.
func NewProbeParser() *ProbeParser { return newProbeParser(&nmeaCounters{}) }

func newProbeParser(c *nmeaCounters) *ProbeParser {
	return &ProbeParser{
		c: c,
		p: nmea.SentenceParser{CustomParsers: map[string]nmea.ParserFunc{probeSentenceType: parseProbeSentence}},
	}
}

// Stats returns a snapshot of the parser's counters.
func (p *ProbeParser) Stats() ProbeStats { return p.c.snapshot() }

// Parse appends the reading carried by one probe line (stamped t) to out.
// Bad lines return out unchanged and an error wrapping ErrNMEAGarbage,
// ErrNMEAChecksum, ErrNMEAMalformed or ErrNMEAUnsupported (other
// sentences), each counted.
func (p *ProbeParser) Parse(line string, t int64, out []Reading) ([]Reading, error) {
	s, err := p.c.sentence(&p.p, line, "probe line")
	if s == nil || err != nil {
		return out, err
	}
	m, ok := s.(probeSentence)
	if !ok {
		p.c.ignored.Add(1)
		return out, fmt.Errorf("%w: %s on a probe port", ErrNMEAUnsupported, s.DataType())
	}
	if !m.valid {
		p.c.noFix.Add(1)
		return out, nil
	}
	if m.compartment < 0 || m.compartment > 9 || !(m.temp >= probeMinTemp && m.temp <= probeMaxTemp) || math.IsInf(m.temp, 0) {
		p.c.malformed.Add(1)
		return out, fmt.Errorf("%w: %q: compartment or temperature out of range", ErrNMEAMalformed, clip(line))
	}
	p.c.used.Add(1)
	p.c.readings.Add(1)
	return append(out, Reading{Time: t, Value: m.temp, Signal: CargoTemp}), nil
}

// ProbeSource reads a serial cargo-tank probe and emits CargoTemp readings.
// Set the exported fields, then call Run once; Stats and SerialStats are
// safe for concurrent use.
type ProbeSource struct {
	// Port is the device path.
	Port string
	// Baud is the serial speed; default DefaultNMEABaud (9600).
	Baud int
	// ReadTimeout bounds one read; default DefaultSerialReadTimeout.
	ReadTimeout time.Duration
	// Now stamps readings (Unix ns UTC). Default time.Now.
	Now func() time.Time
	// Flags, when set, returns flags to add to readings stamped at t.
	Flags func(t int64) Flags
	// Logger receives port events and rate-limited bad-input reports.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reopen attempts.
	MinBackoff, MaxBackoff time.Duration

	c  nmeaCounters
	sc serialCounters
}

// Stats returns a snapshot of the line counters.
func (s *ProbeSource) Stats() ProbeStats { return s.c.snapshot() }

// SerialStats returns a snapshot of the port counters.
func (s *ProbeSource) SerialStats() SerialStats { return s.sc.snapshot() }

// Run reads the probe until ctx is cancelled, then returns nil. emit must
// not keep the slice.
func (s *ProbeSource) Run(ctx context.Context, emit func([]Reading)) error {
	if s.Port == "" {
		return fmt.Errorf("probe source: %w: empty port", ErrBadAddress)
	}
	p := newProbeParser(&s.c)
	lr := lineReader{
		port: s.Port, baud: s.Baud, readTimeout: s.ReadTimeout, now: s.Now, flags: s.Flags,
		logger: s.Logger, minB: s.MinBackoff, maxB: s.MaxBackoff, sc: &s.sc, tooLong: &s.c.tooLong,
		component: "probe",
	}
	return lr.run(ctx, emit, func(line []byte, t int64, out []Reading) ([]Reading, error) {
		return p.Parse(string(line), t, out)
	})
}
