package sensors

import (
	"sync/atomic"
	"time"

	"go.einride.tech/can"
)

// J1939 transport protocol (SAE J1939-21 §5.10): a message of 9 to 1785
// bytes travels as a connection-management frame (TP.CM, PGN 0xEC00)
// announcing its size and PGN, then up to 255 data frames (TP.DT, PGN
// 0xEB00) of 7 bytes each, numbered from 1. A broadcast (BAM) goes to
// address 0xFF with no handshake; a connection (RTS/CTS) goes to one
// address, which paces the sender with CTS frames and confirms with an
// end-of-message acknowledgement.
const (
	PGNTPCM = 0xEC00 // TP.CM, transport connection management
	PGNTPDT = 0xEB00 // TP.DT, transport data transfer

	tpRTS   = 16  // request to send
	tpCTS   = 17  // clear to send
	tpEOMA  = 19  // end of message acknowledgement
	tpBAM   = 32  // broadcast announce message
	tpAbort = 255 // connection abort

	// TPMaxSize is the largest message the transport protocol carries
	// (255 packets of 7 bytes).
	TPMaxSize = 1785
	// tpMinSize is the smallest: anything up to 8 bytes fits one frame.
	tpMinSize = 9

	addrGlobal = 0xFF
)

// The J1939-21 receive timeouts. A listener (the gateway never answers on
// the bus) applies T1 between data packets and T2 after a CTS: a session
// silent for longer is abandoned and counted in TPStats.TimedOut.
const (
	TPTimeoutT1 = 750 * time.Millisecond  // between TP.DT packets
	TPTimeoutT2 = 1250 * time.Millisecond // after CTS until the data
)

// DefaultTPSessions is the default TPConfig.MaxSessions.
const DefaultTPSessions = 16

// TPConfig configures a TPReassembler. The zero value accepts every PGN
// with DefaultTPSessions sessions.
type TPConfig struct {
	// PGNs, when set, lists the PGNs to reassemble; announcements of
	// others are counted in Ignored and their data is not buffered.
	PGNs []uint32
	// MaxSessions bounds the sessions in progress at once (each buffers
	// at most TPMaxSize bytes); an announcement beyond it is counted in
	// Dropped. Default DefaultTPSessions.
	MaxSessions int
}

// TPMessage is one reassembled transport-protocol message.
type TPMessage struct {
	// PGN is the parameter group number the message carries.
	PGN uint32
	// Source and Dest are the sender's address and the destination
	// (0xFF for a broadcast).
	Source, Dest uint8
	// Time is the time of the last data packet (Unix ns).
	Time int64
	// Data is the message, exactly the announced size. It is owned by the
	// reassembler and valid only until the next call to Frame.
	Data []byte
}

// TPStats counts what a TPReassembler saw. Every announced session ends in
// exactly one of Completed, Aborted, Replaced, TimedOut, BadSequence or
// Reset, or is still in progress; every TP frame that is not part of a
// session in progress lands in Malformed, Orphan, Ignored or Dropped,
// except end-of-message acknowledgements (normal, counted in Frames only).
// The data packets of an ignored or dropped announcement count as Orphan.
type TPStats struct {
	Frames      uint64 // TP.CM and TP.DT frames offered
	Announced   uint64 // BAM and RTS accepted (a session started)
	Completed   uint64 // messages delivered
	Aborted     uint64 // sessions ended by a connection abort
	Replaced    uint64 // sessions abandoned because the same sender announced a new one
	TimedOut    uint64 // sessions silent longer than T1 (or T2 after a CTS)
	BadSequence uint64 // sessions abandoned on a data packet out of sequence
	Reset       uint64 // sessions abandoned by Reset (bus reconnect)
	Malformed   uint64 // TP frames that break J1939-21 (bad DLC, size, packet count, control byte)
	Orphan      uint64 // data packets, CTS or EOMA with no session in progress
	Ignored     uint64 // announcements of PGNs not in TPConfig.PGNs
	Dropped     uint64 // announcements refused because MaxSessions were in progress
}

type tpCounters struct {
	frames, announced, completed, aborted, replaced, timedOut, badSequence,
	reset, malformed, orphan, ignored, dropped atomic.Uint64
}

// tpSession is one message being reassembled.
type tpSession struct {
	src, dst uint8
	pgn      uint32
	size     int
	packets  int
	got      int    // packets received so far (next expected is got+1)
	last     int64  // time of the last frame of the session
	timeout  int64  // silence allowed after last, ns
	buf      []byte // TPMaxSize capacity, reused
}

// TPReassembler reassembles J1939 transport-protocol messages seen on one
// bus, as a listener: it never sends (no CTS, no abort), so it follows BAM
// broadcasts and RTS/CTS connections between other nodes alike. Sessions
// are keyed by sender and destination, as J1939-21 allows one of each at a
// time; time comes in with each frame (no clock reads), so replays of a
// log time out as the bus did.
//
// Frame is not safe for concurrent use (one reassembler per bus); Stats is.
type TPReassembler struct {
	pgns     []uint32
	sessions []*tpSession // in progress, at most max
	free     []*tpSession
	max      int
	c        tpCounters
}

// NewTPReassembler returns a reassembler with cfg's limits.
func NewTPReassembler(cfg TPConfig) *TPReassembler {
	n := cfg.MaxSessions
	if n <= 0 {
		n = DefaultTPSessions
	}
	return &TPReassembler{pgns: append([]uint32(nil), cfg.PGNs...), max: n}
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (r *TPReassembler) Stats() TPStats {
	return TPStats{
		Frames: r.c.frames.Load(), Announced: r.c.announced.Load(), Completed: r.c.completed.Load(),
		Aborted: r.c.aborted.Load(), Replaced: r.c.replaced.Load(), TimedOut: r.c.timedOut.Load(),
		BadSequence: r.c.badSequence.Load(), Reset: r.c.reset.Load(), Malformed: r.c.malformed.Load(),
		Orphan: r.c.orphan.Load(), Ignored: r.c.ignored.Load(), Dropped: r.c.dropped.Load(),
	}
}

// InProgress returns how many sessions are being reassembled.
func (r *TPReassembler) InProgress() int { return len(r.sessions) }

// IsTP reports whether f is a TP.CM or TP.DT frame.
func IsTP(f can.Frame) bool {
	if !f.IsExtended || f.IsRemote {
		return false
	}
	p := PGN(f.ID)
	return p == PGNTPCM || p == PGNTPDT
}

// Frame feeds one frame received at time t (Unix ns). It returns the
// reassembled message when f completes one. Frames that are not TP.CM or
// TP.DT are ignored (not counted); so are calls that only expire sessions.
func (r *TPReassembler) Frame(f can.Frame, t int64) (TPMessage, bool) {
	r.Expire(t)
	if !IsTP(f) {
		return TPMessage{}, false
	}
	r.c.frames.Add(1)
	src := uint8(f.ID)
	dst := uint8(f.ID >> 8)
	if f.Length != 8 {
		// J1939-21 sends every TP frame with 8 bytes (the last data
		// packet padded with 0xFF).
		r.c.malformed.Add(1)
		return TPMessage{}, false
	}
	d := f.Data[:]
	if PGN(f.ID) == PGNTPDT {
		return r.data(src, dst, d, t)
	}
	pgn := uint32(d[5]) | uint32(d[6])<<8 | uint32(d[7])<<16
	switch d[0] {
	case tpBAM, tpRTS:
		if (d[0] == tpBAM) != (dst == addrGlobal) {
			// A BAM goes to everyone, an RTS to one node.
			r.c.malformed.Add(1)
			return TPMessage{}, false
		}
		r.announce(src, dst, pgn, int(d[1])|int(d[2])<<8, int(d[3]), t)
	case tpCTS:
		// Sent by the receiver: the session's sender is this frame's
		// destination. CTS with 0 packets holds the connection open.
		if s := r.find(dst, src); s != nil && s.pgn == pgn {
			s.last, s.timeout = t, int64(TPTimeoutT2)
		} else {
			r.c.orphan.Add(1)
		}
	case tpEOMA:
		// The receiver confirms; the message was delivered on its last
		// packet already.
	case tpAbort:
		// Either side may abort.
		if i := r.index(src, dst); i >= 0 && r.sessions[i].pgn == pgn {
			r.end(i, &r.c.aborted)
		} else if i := r.index(dst, src); i >= 0 && r.sessions[i].pgn == pgn {
			r.end(i, &r.c.aborted)
		} else {
			r.c.orphan.Add(1)
		}
	default:
		r.c.malformed.Add(1)
	}
	return TPMessage{}, false
}

// announce starts a session for a BAM or RTS.
func (r *TPReassembler) announce(src, dst uint8, pgn uint32, size, packets int, t int64) {
	if size < tpMinSize || size > TPMaxSize || packets != (size+6)/7 || pgn > 0x3FFFF {
		r.c.malformed.Add(1)
		return
	}
	if i := r.index(src, dst); i >= 0 {
		// J1939-21: a new announcement from the same sender to the same
		// destination ends the one in progress.
		r.end(i, &r.c.replaced)
	}
	if len(r.pgns) > 0 && !containsPGN(r.pgns, pgn) {
		r.c.ignored.Add(1)
		return
	}
	if len(r.sessions) >= r.max {
		r.c.dropped.Add(1)
		return
	}
	var s *tpSession
	if n := len(r.free); n > 0 {
		s, r.free = r.free[n-1], r.free[:n-1]
	} else {
		s = &tpSession{buf: make([]byte, TPMaxSize)}
	}
	s.src, s.dst, s.pgn, s.size, s.packets, s.got = src, dst, pgn, size, packets, 0
	s.last, s.timeout = t, int64(TPTimeoutT1)
	if dst != addrGlobal {
		// The first data packet follows the receiver's CTS.
		s.timeout = int64(TPTimeoutT2)
	}
	r.sessions = append(r.sessions, s)
	r.c.announced.Add(1)
}

// data handles one TP.DT packet.
func (r *TPReassembler) data(src, dst uint8, d []byte, t int64) (TPMessage, bool) {
	i := r.index(src, dst)
	if i < 0 {
		r.c.orphan.Add(1)
		return TPMessage{}, false
	}
	s := r.sessions[i]
	n := int(d[0])
	switch {
	case n == s.got+1:
	case n >= 1 && n <= s.got && dst != addrGlobal:
		// A retransmission the receiver asked for with a CTS: the
		// packets from n on come again.
		s.got = n - 1
	default:
		r.end(i, &r.c.badSequence)
		return TPMessage{}, false
	}
	off := (n - 1) * 7
	copy(s.buf[off:s.size], d[1:8])
	s.got = n
	s.last, s.timeout = t, int64(TPTimeoutT1)
	if s.got < s.packets {
		return TPMessage{}, false
	}
	m := TPMessage{PGN: s.pgn, Source: s.src, Dest: s.dst, Time: t, Data: s.buf[:s.size]}
	// The buffer goes back to the free list but is not reused before the
	// next call to Frame, so m.Data stays valid until then.
	r.end(i, &r.c.completed)
	return m, true
}

// Expire abandons the sessions silent for longer than their timeout at
// time t, counting them in TimedOut. Frame calls it; call it also when the
// bus is quiet, so a half-sent message does not hold its slot.
func (r *TPReassembler) Expire(t int64) {
	for i := 0; i < len(r.sessions); {
		if s := r.sessions[i]; t-s.last > s.timeout {
			r.end(i, &r.c.timedOut)
			continue
		}
		i++
	}
}

// Reset abandons every session in progress (counted in Reset), for a bus
// that was reconnected: packets lost in between cannot be recovered.
func (r *TPReassembler) Reset() {
	for len(r.sessions) > 0 {
		r.end(len(r.sessions)-1, &r.c.reset)
	}
}

func (r *TPReassembler) index(src, dst uint8) int {
	for i, s := range r.sessions {
		if s.src == src && s.dst == dst {
			return i
		}
	}
	return -1
}

func (r *TPReassembler) find(src, dst uint8) *tpSession {
	if i := r.index(src, dst); i >= 0 {
		return r.sessions[i]
	}
	return nil
}

// end removes session i, counting how it ended.
func (r *TPReassembler) end(i int, how *atomic.Uint64) {
	how.Add(1)
	r.free = append(r.free, r.sessions[i])
	r.sessions = append(r.sessions[:i], r.sessions[i+1:]...)
}

func containsPGN(pgns []uint32, p uint32) bool {
	for _, q := range pgns {
		if q == p {
			return true
		}
	}
	return false
}

// AppendBAM appends to frames the J1939-21 broadcast of data (9 to
// TPMaxSize bytes) for pgn from source address src at priority 7: the
// TP.CM BAM announcement, then the TP.DT packets, the last padded with
// 0xFF. J1939-21 wants 50 to 200 ms between the packets; pacing is the
// sender's. It returns frames unchanged when data's size does not fit.
func AppendBAM(frames []can.Frame, src uint8, pgn uint32, data []byte) []can.Frame {
	if len(data) < tpMinSize || len(data) > TPMaxSize {
		return frames
	}
	packets := (len(data) + 6) / 7
	cm := can.Frame{ID: 7<<26 | PGNTPCM<<8 | addrGlobal<<8 | uint32(src), Length: 8, IsExtended: true}
	cm.Data = can.Data{tpBAM, byte(len(data)), byte(len(data) >> 8), byte(packets), 0xFF, byte(pgn), byte(pgn >> 8), byte(pgn >> 16)}
	frames = append(frames, cm)
	for i := range packets {
		dt := can.Frame{ID: 7<<26 | PGNTPDT<<8 | addrGlobal<<8 | uint32(src), Length: 8, IsExtended: true}
		dt.Data = can.Data{byte(i + 1), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
		copy(dt.Data[1:], data[i*7:min(len(data), i*7+7)])
		frames = append(frames, dt)
	}
	return frames
}
