package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"go.einride.tech/can/pkg/socketcan"
)

// socketCANFrameLen is the size of one struct can_frame on the wire.
const socketCANFrameLen = 16

// Default reconnect backoff of CANSource and NMEASource.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// CANSourceStats counts a CANSource's connection life. Decoding counts are
// in the decoder's Stats.
type CANSourceStats struct {
	Connects    uint64 // successful dials
	DialErrors  uint64 // failed dials
	Disconnects uint64 // connections lost other than by cancellation
	Frames      uint64 // frames received (data and error frames)
	ErrorFrames uint64 // SocketCAN error frames (bus errors), not decoded
	Batches     uint64 // emit calls
}

type canSourceCounters struct {
	connects, dialErrors, disconnects, frames, errorFrames, batches atomic.Uint64
}

// CANSource reads one CAN bus and emits decoded readings in batches.
//
// Addr is either "tcp://127.0.0.1:PORT" (SocketCAN frames, 16 bytes each in
// the einride socketcan wire format, over a loopback TCP stream, as served
// by firmware-sim) or a SocketCAN interface name such as "can0" or "vcan0".
//
// Set the exported fields, then call Run once. Stats is safe for concurrent
// use at any time.
type CANSource struct {
	// Addr is the bus address (see the type comment).
	Addr string
	// Decoder decodes frames; it may be shared by several sources.
	Decoder *CANDecoder
	// Now stamps readings (Unix ns UTC). Default time.Now.
	Now func() time.Time
	// Flags, when set, returns flags to add to readings stamped at t, for
	// example ClockUntrusted before GNSS time confirmed the clock.
	Flags func(t int64) Flags
	// Logger receives connection events; nil means silent.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (doubling). Defaults DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnDM1, when set, receives every DM1 (active trouble codes) on the
	// bus, single-frame or reassembled from the transport protocol, from
	// Run's goroutine; it owns the DM1.
	OnDM1 func(DM1)
	// Record, when set, receives every frame (data and remote, not error
	// frames) as received, named RecordInterface, to record the bus.
	Record *CandumpRecorder
	// RecordInterface is the interface name written for this bus; default
	// the SocketCAN interface name, or "can0" for a tcp:// bus.
	RecordInterface string

	c   canSourceCounters
	dm1 atomic.Pointer[DM1Listener]
}

// DM1Stats returns the DM1 and transport-protocol counters (zero when
// OnDM1 is not set).
func (s *CANSource) DM1Stats() DM1Stats {
	if l := s.dm1.Load(); l != nil {
		return l.Stats()
	}
	return DM1Stats{}
}

// Stats returns a snapshot of the source's counters.
func (s *CANSource) Stats() CANSourceStats {
	return CANSourceStats{
		Connects: s.c.connects.Load(), DialErrors: s.c.dialErrors.Load(),
		Disconnects: s.c.disconnects.Load(), Frames: s.c.frames.Load(),
		ErrorFrames: s.c.errorFrames.Load(), Batches: s.c.batches.Load(),
	}
}

// ParseCANAddr splits a CAN address into the network and address to dial:
// ("tcp", "127.0.0.1:PORT") for "tcp://127.0.0.1:PORT", ("can", name) for a
// SocketCAN interface name.
func ParseCANAddr(addr string) (network, address string, err error) {
	if rest, ok := strings.CutPrefix(addr, "tcp://"); ok {
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("%w: CAN address %q: %v", ErrBadAddress, addr, err)
		}
		return "tcp", rest, nil
	}
	if addr == "" || len(addr) > 15 || strings.ContainsAny(addr, ":/ \t") {
		return "", "", fmt.Errorf("%w: CAN address %q: want tcp://HOST:PORT or an interface name like can0", ErrBadAddress, addr)
	}
	return "can", addr, nil
}

// Run connects to the bus and calls emit with each batch of readings (the
// frames that arrived in one read) until ctx is cancelled; then it returns
// nil. emit must not keep the slice after it returns. When the bus drops or
// cannot be reached, Run retries with backoff; it returns an error only for
// a bad configuration.
func (s *CANSource) Run(ctx context.Context, emit func([]Reading)) error {
	if s.Decoder == nil {
		return errors.New("can source: no decoder")
	}
	network, address, err := ParseCANAddr(s.Addr)
	if err != nil {
		return fmt.Errorf("can source: %w", err)
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB < minB {
		maxB = max(DefaultMaxBackoff, minB)
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "can", "addr", s.Addr)
	if s.RecordInterface == "" {
		s.RecordInterface = "can0"
		if network == "can" {
			s.RecordInterface = address
		}
	}
	var diag *DM1Listener
	if s.OnDM1 != nil {
		diag = NewDM1Listener(s.OnDM1)
		s.dm1.Store(diag)
	}
	backoff := minB
	buf := make([]byte, 64*socketCANFrameLen)
	out := make([]Reading, 0, 256)
	for {
		conn, err := socketcan.DialContext(ctx, network, address)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err != nil {
			s.c.dialErrors.Add(1)
			log.Debug("can dial failed", "err", err, "retry_in", backoff)
		} else {
			s.c.connects.Add(1)
			log.Info("can connected")
			if diag != nil {
				diag.Reset() // packets lost while disconnected cannot be recovered
			}
			got, err := s.read(ctx, conn, buf, out, now, emit, diag)
			if ctx.Err() != nil {
				return nil
			}
			s.c.disconnects.Add(1)
			log.Warn("can bus lost", "err", err, "retry_in", minB)
			if got {
				backoff = minB
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// read receives frames from conn until it fails; got reports whether any
// frame arrived.
func (s *CANSource) read(ctx context.Context, conn net.Conn, buf []byte, out []Reading, now func() time.Time, emit func([]Reading), diag *DM1Listener) (got bool, err error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	have := 0
	for {
		n, err := conn.Read(buf[have:])
		have += n
		if have >= socketCANFrameLen {
			got = true
			t := now().UnixNano()
			var fl Flags
			if s.Flags != nil {
				fl = s.Flags(t)
			}
			out = out[:0]
			off := 0
			for ; off+socketCANFrameLen <= have; off += socketCANFrameLen {
				var sf socketcan.Frame
				sf.UnmarshalBinary(buf[off : off+socketCANFrameLen])
				s.c.frames.Add(1)
				if sf.IsError() {
					s.c.errorFrames.Add(1)
					continue
				}
				f := sf.DecodeFrame()
				if s.Record != nil {
					s.Record.Record(s.RecordInterface, f, t)
				}
				if diag != nil {
					diag.Frame(f, t)
				}
				out = s.Decoder.Decode(f, t, out)
			}
			have = copy(buf, buf[off:have])
			if len(out) > 0 {
				if fl != 0 {
					for i := range out {
						out[i].Flags |= fl
					}
				}
				s.c.batches.Add(1)
				emit(out)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return got, fmt.Errorf("can read: %w", err)
		}
	}
}
