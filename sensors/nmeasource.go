package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// DefaultNMEABaud is the serial speed used when NMEASource.Baud is 0.
const DefaultNMEABaud = 9600

// DefaultSerialReadTimeout bounds one serial read, so Run notices
// cancellation (and tarm/serial's Close never waits on a blocked read).
const DefaultSerialReadTimeout = 200 * time.Millisecond

// SerialStats counts a serial source's port life.
type SerialStats struct {
	Opens      uint64 // successful opens
	OpenErrors uint64 // failed opens
	ReadErrors uint64 // reads that failed (the port is then reopened)
	Bytes      uint64 // bytes read
	Batches    uint64 // emit calls
}

type serialCounters struct {
	opens, openErrors, readErrors, bytes, batches atomic.Uint64
}

func (c *serialCounters) snapshot() SerialStats {
	return SerialStats{
		Opens: c.opens.Load(), OpenErrors: c.openErrors.Load(), ReadErrors: c.readErrors.Load(),
		Bytes: c.bytes.Load(), Batches: c.batches.Load(),
	}
}

// NMEASource reads NMEA 0183 sentences from a serial port (or a
// pseudo-terminal such as firmware-sim's) and emits readings in batches.
// Set the exported fields, then call Run once. Stats and SerialStats are
// safe for concurrent use at any time.
type NMEASource struct {
	// Port is the device path, e.g. /dev/ttyUSB0 or /dev/pts/3.
	Port string
	// Baud is the serial speed; default DefaultNMEABaud.
	Baud int
	// ReadTimeout bounds one read; default DefaultSerialReadTimeout.
	ReadTimeout time.Duration
	// Now stamps readings (Unix ns UTC). Default time.Now.
	Now func() time.Time
	// Flags, when set, returns flags to add to readings stamped at t.
	Flags func(t int64) Flags
	// OnFix, when set, is called (from Run's goroutine) with each valid
	// GNSS UTC time and the local time the sentence arrived, for clock
	// correction.
	OnFix func(fix GNSSFix, local int64)
	// Logger receives port events and rate-limited bad-input reports; nil
	// means silent.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reopen attempts.
	MinBackoff, MaxBackoff time.Duration

	c  nmeaCounters
	sc serialCounters
}

// Stats returns a snapshot of the sentence counters.
func (s *NMEASource) Stats() NMEAStats { return s.c.snapshot() }

// SerialStats returns a snapshot of the port counters.
func (s *NMEASource) SerialStats() SerialStats { return s.sc.snapshot() }

// Run opens the port and calls emit with the readings of each read until
// ctx is cancelled; then it returns nil. emit must not keep the slice. Bad
// lines are counted and skipped; a port that fails or vanishes is reopened
// with backoff.
func (s *NMEASource) Run(ctx context.Context, emit func([]Reading)) error {
	if s.Port == "" {
		return fmt.Errorf("nmea source: %w: empty port", ErrBadAddress)
	}
	p := &NMEAParser{c: &s.c}
	var lastFix int64
	lr := lineReader{
		port: s.Port, baud: s.Baud, readTimeout: s.ReadTimeout, now: s.Now, flags: s.Flags,
		logger: s.Logger, minB: s.MinBackoff, maxB: s.MaxBackoff, sc: &s.sc, tooLong: &s.c.tooLong,
		component: "nmea",
	}
	return lr.run(ctx, emit, func(line []byte, t int64, out []Reading) ([]Reading, error) {
		out, err := p.Parse(string(line), t, out)
		if s.OnFix != nil {
			if f := p.LastFix(); f.Valid && f.UnixNano != lastFix {
				lastFix = f.UnixNano
				s.OnFix(f, t)
			}
		}
		if errors.Is(err, ErrNMEAUnsupported) {
			err = nil
		}
		return out, err
	})
}

// lineReader is the serial-port loop shared by the NMEA and probe sources.
type lineReader struct {
	port        string
	baud        int
	readTimeout time.Duration
	now         func() time.Time
	flags       func(int64) Flags
	logger      *slog.Logger
	minB, maxB  time.Duration
	sc          *serialCounters
	tooLong     *atomic.Uint64
	component   string
}

func (lr *lineReader) run(ctx context.Context, emit func([]Reading), parse func(line []byte, t int64, out []Reading) ([]Reading, error)) error {
	if lr.baud == 0 {
		lr.baud = DefaultNMEABaud
	}
	if lr.readTimeout <= 0 {
		lr.readTimeout = DefaultSerialReadTimeout
	}
	if lr.now == nil {
		lr.now = time.Now
	}
	if lr.minB <= 0 {
		lr.minB = DefaultMinBackoff
	}
	if lr.maxB < lr.minB {
		lr.maxB = max(DefaultMaxBackoff, lr.minB)
	}
	log := lr.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", lr.component, "port", lr.port)
	var lastBadLog time.Time
	backoff := lr.minB
	buf := make([]byte, 4096)
	line := make([]byte, 0, MaxNMEALine)
	out := make([]Reading, 0, 64)
	for ctx.Err() == nil {
		port, err := serial.OpenPort(&serial.Config{Name: lr.port, Baud: lr.baud, ReadTimeout: lr.readTimeout})
		if err != nil {
			lr.sc.openErrors.Add(1)
			log.Debug("serial open failed", "err", err, "retry_in", backoff)
		} else {
			lr.sc.opens.Add(1)
			log.Info("serial port open")
			line = line[:0]
			discarding := false
			for ctx.Err() == nil {
				n, err := port.Read(buf)
				if n > 0 {
					lr.sc.bytes.Add(uint64(n))
					t := lr.now().UnixNano()
					out = out[:0]
					for _, b := range buf[:n] {
						if b != '\n' {
							if discarding {
								continue
							}
							if len(line) >= MaxNMEALine {
								lr.tooLong.Add(1)
								discarding = true
								line = line[:0]
								continue
							}
							line = append(line, b)
							continue
						}
						if discarding {
							discarding = false
							continue
						}
						var perr error
						out, perr = parse(line, t, out)
						if perr != nil && time.Since(lastBadLog) > 10*time.Second {
							lastBadLog = time.Now()
							log.Warn("bad serial input (further reports suppressed for 10s)", "err", perr)
						}
						line = line[:0]
					}
					if len(out) > 0 {
						if lr.flags != nil {
							if fl := lr.flags(t); fl != 0 {
								for i := range out {
									out[i].Flags |= fl
								}
							}
						}
						lr.sc.batches.Add(1)
						emit(out)
					}
					backoff = lr.minB
				}
				if err != nil && !errors.Is(err, io.EOF) {
					lr.sc.readErrors.Add(1)
					log.Warn("serial read failed; reopening", "err", err)
					break
				}
			}
			port.Close()
		}
		if ctx.Err() != nil {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, lr.maxB)
	}
	return nil
}
