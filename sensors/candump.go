package sensors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.einride.tech/can"
)

// CandumpRecord is one line of a can-utils candump log (candump -l):
//
//	(1700000000.123456) can0 18FEEE00#8CFFFFFFFFFFFFFF
type CandumpRecord struct {
	// Time is the capture time, Unix ns UTC (microsecond resolution).
	Time int64
	// Interface is the CAN interface name, e.g. "can0".
	Interface string
	// Frame is the CAN frame.
	Frame can.Frame
}

// ParseCandumpLine parses one candump log line. It fails with ErrCandump
// naming what was wrong; CAN FD frames ("##") are rejected as malformed.
func ParseCandumpLine(line string) (CandumpRecord, error) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "(")
	if !ok {
		return CandumpRecord{}, fmt.Errorf("%w: %q: no (timestamp)", ErrCandump, clip(line))
	}
	ts, rest, ok := strings.Cut(rest, ")")
	if !ok {
		return CandumpRecord{}, fmt.Errorf("%w: %q: unterminated (timestamp", ErrCandump, clip(line))
	}
	sec, frac, ok := strings.Cut(ts, ".")
	if !ok || len(frac) == 0 || len(frac) > 9 {
		return CandumpRecord{}, fmt.Errorf("%w: %q: timestamp is not SECONDS.FRACTION", ErrCandump, clip(line))
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	f, err2 := strconv.ParseUint(frac, 10, 64)
	if err1 != nil || err2 != nil || s < 0 || s > 1<<33 {
		return CandumpRecord{}, fmt.Errorf("%w: %q: bad timestamp", ErrCandump, clip(line))
	}
	for i := len(frac); i < 9; i++ {
		f *= 10
	}
	fields := strings.Fields(rest)
	if len(fields) != 2 {
		return CandumpRecord{}, fmt.Errorf("%w: %q: want (time) interface ID#DATA", ErrCandump, clip(line))
	}
	if strings.Contains(fields[1], "##") {
		return CandumpRecord{}, fmt.Errorf("%w: %q: CAN FD frames are not supported", ErrCandump, clip(line))
	}
	var fr can.Frame
	if err := fr.UnmarshalString(fields[1]); err != nil {
		return CandumpRecord{}, fmt.Errorf("%w: %q: %v", ErrCandump, clip(line), err)
	}
	if err := fr.Validate(); err != nil {
		return CandumpRecord{}, fmt.Errorf("%w: %q: %v", ErrCandump, clip(line), err)
	}
	return CandumpRecord{Time: s*1e9 + int64(f), Interface: fields[0], Frame: fr}, nil
}

// AppendCandumpLine appends r as a candump log line (microsecond timestamp,
// newline-terminated) to b.
func AppendCandumpLine(b []byte, r CandumpRecord) []byte {
	us := r.Time / 1000
	b = append(b, '(')
	b = strconv.AppendInt(b, us/1e6, 10)
	b = append(b, '.')
	frac := us % 1e6
	for d := int64(100000); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	b = append(b, ") "...)
	b = append(b, r.Interface...)
	b = append(b, ' ')
	b = appendFrame(b, r.Frame)
	return append(b, '\n')
}

// appendFrame appends f as can.Frame.String writes it (ID#DATA, upper-case
// hex, 8 id digits for extended frames, #R for remote), without
// allocating: the gateway records every frame of its bus this way.
func appendFrame(b []byte, f can.Frame) []byte {
	const hexDigits = "0123456789ABCDEF"
	digits := 3
	if f.IsExtended {
		digits = 8
	}
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[f.ID>>(4*i)&0xF])
	}
	b = append(b, '#')
	if f.IsRemote {
		b = append(b, 'R')
		if f.Length > 0 {
			b = strconv.AppendInt(b, int64(f.Length), 10)
		}
		return b
	}
	for _, c := range f.Data[:min(f.Length, 8)] {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return b
}

// CandumpStats counts a candump replay.
type CandumpStats struct {
	Lines     uint64 // lines read
	Frames    uint64 // frames passed to the decoder
	Skipped   uint64 // frames of other interfaces (Interface filter)
	Malformed uint64 // lines that do not parse (counted, skipped)
}

// CandumpReplay feeds a candump log through a CANDecoder, so recordings
// from real trucks can be replayed through the gateway. Readings carry the
// log's timestamps. Set the fields, then call Run once; Stats is safe for
// concurrent use.
type CandumpReplay struct {
	// Log is the candump log to read. Run does not close it.
	Log io.Reader
	// Decoder decodes the frames.
	Decoder *CANDecoder
	// Interface, when set, replays only frames captured on that interface.
	Interface string
	// Speed paces the replay: 0 replays as fast as possible, 1 in real
	// time (by the log's timestamps), 2 twice as fast, and so on.
	Speed float64
	// Logger receives rate-limited reports of malformed lines; nil means
	// silent.
	Logger *slog.Logger
	// OnDM1, when set, receives every DM1 in the log (single-frame or
	// reassembled, timed out on the log's timestamps), from Run's
	// goroutine; it owns the DM1.
	OnDM1 func(DM1)

	dm1                               atomic.Pointer[DM1Listener]
	lines, frames, skipped, malformed atomic.Uint64
}

// Stats returns a snapshot of the replay's counters.
func (r *CandumpReplay) Stats() CandumpStats {
	return CandumpStats{Lines: r.lines.Load(), Frames: r.frames.Load(), Skipped: r.skipped.Load(), Malformed: r.malformed.Load()}
}

// DM1Stats returns the DM1 and transport-protocol counters (zero when
// OnDM1 is not set).
func (r *CandumpReplay) DM1Stats() DM1Stats {
	if l := r.dm1.Load(); l != nil {
		return l.Stats()
	}
	return DM1Stats{}
}

// Run replays the whole log, calling emit with batches of readings (emit
// must not keep the slice), and returns nil at the end of the log, or
// ctx's error when cancelled first. Malformed lines are counted and
// skipped; only a read error of Log ends the replay early.
func (r *CandumpReplay) Run(ctx context.Context, emit func([]Reading)) error {
	if r.Decoder == nil || r.Log == nil {
		return errors.New("candump replay: no decoder or log")
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var diag *DM1Listener
	if r.OnDM1 != nil {
		diag = NewDM1Listener(r.OnDM1)
		r.dm1.Store(diag)
	}
	sc := bufio.NewScanner(r.Log)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	out := make([]Reading, 0, 256)
	var first int64
	start := time.Now()
	var lastBadLog time.Time
	flush := func() {
		if len(out) > 0 {
			emit(out)
			out = out[:0]
		}
	}
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.lines.Add(1)
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		rec, err := ParseCandumpLine(line)
		if err != nil {
			r.malformed.Add(1)
			if time.Since(lastBadLog) > 10*time.Second {
				lastBadLog = time.Now()
				log.Warn("skipping malformed candump line (further reports suppressed for 10s)", "line", r.lines.Load(), "err", err)
			}
			continue
		}
		if r.Interface != "" && rec.Interface != r.Interface {
			r.skipped.Add(1)
			continue
		}
		if r.Speed > 0 {
			if first == 0 {
				first = rec.Time
			}
			due := start.Add(time.Duration(float64(rec.Time-first) / r.Speed))
			if d := time.Until(due); d > 0 {
				flush()
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		r.frames.Add(1)
		if diag != nil {
			diag.Frame(rec.Frame, rec.Time)
		}
		out = r.Decoder.Decode(rec.Frame, rec.Time, out)
		if len(out) >= 200 {
			flush()
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("candump replay: %w", err)
	}
	return nil
}
