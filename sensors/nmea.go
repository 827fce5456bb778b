package sensors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	nmea "github.com/adrianmo/go-nmea"
)

// knotsToKmh converts NMEA speed over ground (knots) to km/h.
const knotsToKmh = 1.852

// NMEAStats counts what an NMEA parser saw. Every line lands in exactly one
// of Used, NoFix, Ignored, Garbage, Checksum, Malformed or TooLong.
type NMEAStats struct {
	Lines     uint64 // lines offered (including empty ones, which are skipped)
	Used      uint64 // RMC, GGA or VTG sentences that produced readings
	Readings  uint64 // readings produced
	NoFix     uint64 // valid RMC/VTG sentences flagged void (no fix): no position
	Ignored   uint64 // well-formed sentences of other types (GSV, GSA, ...)
	Garbage   uint64 // lines that are not NMEA sentences
	Checksum  uint64 // sentences with a missing or wrong checksum
	Malformed uint64 // sentences with a good checksum and unparsable fields
	TooLong   uint64 // lines longer than MaxNMEALine, discarded
}

// MaxNMEALine is the longest line accepted from a serial port. NMEA 0183
// allows 82 characters; some receivers exceed it, so there is headroom.
const MaxNMEALine = 512

type nmeaCounters struct {
	lines, used, readings, noFix, ignored, garbage, checksum, malformed, tooLong atomic.Uint64
}

func (c *nmeaCounters) snapshot() NMEAStats {
	return NMEAStats{
		Lines: c.lines.Load(), Used: c.used.Load(), Readings: c.readings.Load(),
		NoFix: c.noFix.Load(), Ignored: c.ignored.Load(), Garbage: c.garbage.Load(),
		Checksum: c.checksum.Load(), Malformed: c.malformed.Load(), TooLong: c.tooLong.Load(),
	}
}

// NMEAParser turns NMEA 0183 sentences (any talker: GP, GN, GL, GA, ...)
// into readings: RMC gives GNSSLatitude, GNSSLongitude and GNSSSpeed when
// its status is A (valid); GGA gives GNSSFixQuality and GNSSSatellites; VTG
// gives GNSSSpeed when no RMC was seen on the stream. Parse is not safe for
// concurrent use; Stats is.
type NMEAParser struct {
	p       nmea.SentenceParser
	c       *nmeaCounters
	sawRMC  bool
	lastFix GNSSFix
}

// GNSSFix is the UTC time and validity of the latest RMC sentence.
type GNSSFix struct {
	// Valid is true when the receiver reported a valid fix (status A) with
	// a date and time.
	Valid bool
	// UnixNano is the receiver's UTC time of the fix.
	UnixNano int64
}

// NewNMEAParser returns a parser with its own counters.
func NewNMEAParser() *NMEAParser { return &NMEAParser{c: &nmeaCounters{}} }

// Stats returns a snapshot of the parser's counters. Safe for concurrent use.
func (p *NMEAParser) Stats() NMEAStats { return p.c.snapshot() }

// LastFix returns the UTC time carried by the latest valid RMC sentence.
func (p *NMEAParser) LastFix() GNSSFix { return p.lastFix }

// sentence counts and parses one line of sentence framing (NMEA 0183, or
// the probe protocol built on it) with sp: nil and no error for a blank
// line; else the sentence, or an error wrapping ErrNMEAGarbage,
// ErrNMEAChecksum or ErrNMEAMalformed, counted. what names the line in
// errors.
func (c *nmeaCounters) sentence(sp *nmea.SentenceParser, line, what string) (nmea.Sentence, error) {
	c.lines.Add(1)
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return nil, nil
	}
	if len(line) > MaxNMEALine {
		c.tooLong.Add(1)
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrNMEAGarbage, what, len(line))
	}
	if err := checkNMEAFraming(line); err != nil {
		if errors.Is(err, ErrNMEAChecksum) {
			c.checksum.Add(1)
		} else {
			c.garbage.Add(1)
		}
		return nil, err
	}
	s, err := sp.Parse(line)
	if err != nil {
		c.malformed.Add(1)
		return nil, fmt.Errorf("%w: %q: %v", ErrNMEAMalformed, clip(line), err)
	}
	return s, nil
}

// Parse appends to out the readings carried by one line (with or without
// its CR LF), stamped with time t (Unix ns UTC). An empty line is skipped
// silently. A bad line returns out unchanged and an error wrapping one of
// ErrNMEAGarbage, ErrNMEAChecksum, ErrNMEAMalformed or ErrNMEAUnsupported;
// each is counted in Stats.
func (p *NMEAParser) Parse(line string, t int64, out []Reading) ([]Reading, error) {
	s, err := p.c.sentence(&p.p, line, "line")
	if s == nil || err != nil {
		return out, err
	}
	n := len(out)
	switch m := s.(type) {
	case nmea.RMC:
		p.sawRMC = true
		if m.Validity != nmea.ValidRMC {
			p.c.noFix.Add(1)
			return out, nil
		}
		if m.Date.Valid && m.Time.Valid {
			p.lastFix = GNSSFix{Valid: true, UnixNano: fixTime(m.Date, m.Time)}
		}
		if !plausible(GNSSLatitude, m.Latitude) || !plausible(GNSSLongitude, m.Longitude) || !(m.Speed >= 0) {
			p.c.malformed.Add(1)
			return out, fmt.Errorf("%w: %q: impossible position or speed", ErrNMEAMalformed, clip(line))
		}
		out = append(out,
			Reading{Time: t, Value: m.Latitude, Signal: GNSSLatitude},
			Reading{Time: t, Value: m.Longitude, Signal: GNSSLongitude},
			Reading{Time: t, Value: m.Speed * knotsToKmh, Signal: GNSSSpeed},
		)
	case nmea.GGA:
		q, err := strconv.Atoi(m.FixQuality)
		if err != nil || m.NumSatellites < 0 {
			p.c.malformed.Add(1)
			return out, fmt.Errorf("%w: %q: fix quality %q", ErrNMEAMalformed, clip(line), m.FixQuality)
		}
		out = append(out,
			Reading{Time: t, Value: float64(q), Signal: GNSSFixQuality},
			Reading{Time: t, Value: float64(m.NumSatellites), Signal: GNSSSatellites},
		)
	case nmea.VTG:
		if p.sawRMC {
			// RMC already gives speed over ground; a second reading of the
			// same quantity would double-count it.
			p.c.ignored.Add(1)
			return out, nil
		}
		if m.FFAMode == nmea.FAAModeDataNotValid || !(m.GroundSpeedKPH >= 0) {
			p.c.noFix.Add(1)
			return out, nil
		}
		out = append(out, Reading{Time: t, Value: m.GroundSpeedKPH, Signal: GNSSSpeed})
	default:
		p.c.ignored.Add(1)
		return out, fmt.Errorf("%w: %s", ErrNMEAUnsupported, s.DataType())
	}
	p.c.used.Add(1)
	p.c.readings.Add(uint64(len(out) - n))
	return out, nil
}

// checkNMEAFraming checks the $...*hh framing and checksum.
func checkNMEAFraming(line string) error {
	if len(line) < 6 || line[0] != '$' {
		return fmt.Errorf("%w: %q", ErrNMEAGarbage, clip(line))
	}
	star := strings.LastIndexByte(line, '*')
	if star < 0 || len(line)-star != 3 {
		return fmt.Errorf("%w: %q: no *hh checksum at the end", ErrNMEAChecksum, clip(line))
	}
	want, err := strconv.ParseUint(line[star+1:], 16, 8)
	if err != nil {
		return fmt.Errorf("%w: %q: checksum is not hex", ErrNMEAChecksum, clip(line))
	}
	var sum byte
	for i := 1; i < star; i++ {
		c := line[i]
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: %q: control or non-ASCII byte", ErrNMEAGarbage, clip(line))
		}
		sum ^= c
	}
	if uint64(sum) != want {
		return fmt.Errorf("%w: %q: computed %02X", ErrNMEAChecksum, clip(line), sum)
	}
	return nil
}

func plausible(s Signal, v float64) bool {
	lo, hi, ok := physicalLimits(s)
	return !ok || (v >= lo && v <= hi)
}

// clip shortens a bad input for an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// NMEAChecksum returns the two-hex-digit checksum of the sentence body
// between '$' and '*' (exclusive), for writers of NMEA sentences.
func NMEAChecksum(body string) string { return nmea.Checksum(body) }

// fixTime converts an RMC date and time to Unix ns, reading two-digit years
// 80..99 as 1980..1999 and 00..79 as 2000..2079 (GPS time began in 1980).
func fixTime(d nmea.Date, t nmea.Time) int64 {
	year := 2000 + d.YY
	if d.YY >= 80 {
		year = 1900 + d.YY
	}
	return time.Date(year, time.Month(d.MM), d.DD, t.Hour, t.Minute, t.Second, t.Millisecond*1e6, time.UTC).UnixNano()
}
