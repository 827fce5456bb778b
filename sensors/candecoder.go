package sensors

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/dbc"
	"go.einride.tech/can/pkg/descriptor"
)

// dbcSignalAttr is the DBC signal attribute naming the sensors.Signal that
// a DBC signal is decoded into (its String form, e.g. "coolant_temp").
const dbcSignalAttr = "TankguardSignal"

// dbcCycleAttr is the standard DBC message attribute for the send period.
const dbcCycleAttr = "GenMsgCycleTime"

// canSignal is one mapped DBC signal, ready for allocation-free decoding.
type canSignal struct {
	sig Signal
	d   descriptor.Signal
	// special is true when the signal spans whole bytes and is unsigned, so
	// the J1939 error / not-available ranges apply to its top byte.
	special bool
	// div and divOffset, when div > 0, give the exactly rounded physical
	// value (raw + divOffset) / div for factors like 1e-7 or 1/256, which
	// raw*factor+offset would miss by an ulp or more (51.89999999999998).
	div, divOffset float64
	// min and max are the plausible physical range (DBC range intersected
	// with physical limits such as |latitude| <= 90).
	min, max float64
}

// canMessage is one DBC message matched by PGN.
type canMessage struct {
	info    CANMessageInfo
	signals []canSignal
}

// CANMessageInfo describes one DBC message as the decoder knows it.
type CANMessageInfo struct {
	// Name is the DBC message name, e.g. "ET1".
	Name string
	// PGN is the J1939 parameter group number.
	PGN uint32
	// ID is the 29-bit identifier written in the DBC (priority, PGN and a
	// typical source address).
	ID uint32
	// Length is the DLC the message must have.
	Length uint8
	// Cycle is the DBC's GenMsgCycleTime, 0 when not given.
	Cycle time.Duration
	// Signals lists the tankguard signals the message carries.
	Signals []Signal
}

// CANDecodeStats counts what a CANDecoder saw. Every frame lands in exactly
// one of Decoded, NotExtended, Remote, UnknownPGN or WrongDLC; every mapped
// signal of a decoded frame yields one reading or lands in ErrorValue,
// NotAvailable, Reserved or Implausible.
type CANDecodeStats struct {
	Frames       uint64 // frames offered to Decode
	Decoded      uint64 // frames of a known PGN with the right DLC
	Readings     uint64 // readings produced
	NotExtended  uint64 // frames with an 11-bit id (J1939 uses 29-bit ids)
	Remote       uint64 // remote-request frames
	UnknownPGN   uint64 // frames of a PGN the DBC does not describe
	WrongDLC     uint64 // known PGN, data length differs from the DBC
	ErrorValue   uint64 // J1939 error indicator (top byte 0xFE)
	NotAvailable uint64 // J1939 not available (top byte 0xFF)
	Reserved     uint64 // J1939 reserved range (top byte 0xFB..0xFD)
	Implausible  uint64 // in-range raw value outside the signal's physical range
}

// canDecodeCounters is the atomic form of CANDecodeStats.
type canDecodeCounters struct {
	frames, decoded, readings, notExtended, remote, unknownPGN, wrongDLC,
	errorValue, notAvailable, reserved, implausible atomic.Uint64
}

// CANDecoder decodes J1939 frames into Readings through a DBC. Messages are
// matched on the PGN, whatever the priority and source address. Decode is
// safe for concurrent use (one decoder may serve several buses); Stats may be
// called at any time from any goroutine.
type CANDecoder struct {
	msgs     []canMessage // sorted by PGN
	bySignal [NumSignals]struct {
		msg, sig int // index into msgs and msgs[msg].signals; msg -1 when absent
	}
	c canDecodeCounters
}

// NewCANDecoder parses dbcSource (for example DefaultDBC) and maps every DBC
// signal carrying the TankguardSignal attribute to its sensors.Signal.
// It fails with ErrDBC when the file does not parse, a mapped message has an
// 11-bit id, a signal name is unknown, or two DBC signals map to the same
// Signal.
func NewCANDecoder(dbcSource []byte) (*CANDecoder, error) {
	p := dbc.NewParser("tankguard.dbc", dbcSource)
	if err := p.Parse(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDBC, err)
	}
	type sigKey struct {
		id   dbc.MessageID
		name dbc.Identifier
	}
	mapped := map[sigKey]Signal{}
	cycles := map[dbc.MessageID]int64{}
	var msgDefs []*dbc.MessageDef
	for _, def := range p.Defs() {
		switch d := def.(type) {
		case *dbc.MessageDef:
			msgDefs = append(msgDefs, d)
		case *dbc.AttributeValueForObjectDef:
			switch {
			case d.AttributeName == dbcSignalAttr && d.ObjectType == dbc.ObjectTypeSignal:
				s, err := ParseSignal(d.StringValue)
				if err != nil {
					return nil, fmt.Errorf("%w: %s: %s %s: %v", ErrDBC, d.Pos, d.AttributeName, d.SignalName, err)
				}
				mapped[sigKey{d.MessageID, d.SignalName}] = s
			case d.AttributeName == dbcCycleAttr && d.ObjectType == dbc.ObjectTypeMessage:
				cycles[d.MessageID] = d.IntValue
			}
		}
	}
	dec := &CANDecoder{}
	for i := range dec.bySignal {
		dec.bySignal[i].msg = -1
	}
	for _, md := range msgDefs {
		var m canMessage
		for _, sd := range md.Signals {
			s, ok := mapped[sigKey{md.MessageID, sd.Name}]
			if !ok {
				continue
			}
			if !md.MessageID.IsExtended() {
				return nil, fmt.Errorf("%w: %s: message %s has an 11-bit id; J1939 needs 29-bit ids", ErrDBC, md.Pos, md.Name)
			}
			if sd.Size == 0 || sd.Size > 64 || sd.StartBit+sd.Size > 8*md.Size && !sd.IsBigEndian {
				return nil, fmt.Errorf("%w: %s: signal %s does not fit message %s", ErrDBC, sd.Pos, sd.Name, md.Name)
			}
			if u := normalizeUnit(sd.Unit); u != "" && u != s.Unit() {
				return nil, fmt.Errorf("%w: %s: signal %s has unit %q, but %s is in %q", ErrDBC, sd.Pos, sd.Name, sd.Unit, s, s.Unit())
			}
			if sd.Factor == 0 {
				return nil, fmt.Errorf("%w: %s: signal %s has factor 0", ErrDBC, sd.Pos, sd.Name)
			}
			cs := canSignal{
				sig: s,
				d: descriptor.Signal{
					Name:        string(sd.Name),
					Start:       uint8(sd.StartBit),
					Length:      uint8(sd.Size),
					IsBigEndian: sd.IsBigEndian,
					IsSigned:    sd.IsSigned,
					Offset:      sd.Offset,
					Scale:       sd.Factor,
					Min:         sd.Minimum,
					Max:         sd.Maximum,
					Unit:        sd.Unit,
				},
				special: !sd.IsSigned && sd.Size%8 == 0,
				min:     sd.Minimum,
				max:     sd.Maximum,
			}
			if inv := math.Round(1 / sd.Factor); sd.Factor < 1 && inv <= 1<<53 && math.Abs(1/sd.Factor-inv) < 1e-9*inv {
				if o := sd.Offset * inv; o == math.Round(o) && math.Abs(o) <= 1<<53 {
					cs.div, cs.divOffset = inv, o
				}
			}
			if cs.min == 0 && cs.max == 0 {
				cs.min, cs.max = math.Inf(-1), math.Inf(1)
			}
			if lo, hi, ok := physicalLimits(s); ok {
				cs.min, cs.max = math.Max(cs.min, lo), math.Min(cs.max, hi)
			}
			m.signals = append(m.signals, cs)
			m.info.Signals = append(m.info.Signals, s)
		}
		if len(m.signals) == 0 {
			continue
		}
		id := md.MessageID.ToCAN()
		m.info.Name = string(md.Name)
		m.info.ID = id
		m.info.PGN = PGN(id)
		m.info.Length = uint8(md.Size)
		m.info.Cycle = time.Duration(cycles[md.MessageID]) * time.Millisecond
		dec.msgs = append(dec.msgs, m)
	}
	sort.Slice(dec.msgs, func(i, j int) bool { return dec.msgs[i].info.PGN < dec.msgs[j].info.PGN })
	for i := 1; i < len(dec.msgs); i++ {
		if dec.msgs[i].info.PGN == dec.msgs[i-1].info.PGN {
			return nil, fmt.Errorf("%w: messages %s and %s share PGN %d", ErrDBC, dec.msgs[i-1].info.Name, dec.msgs[i].info.Name, dec.msgs[i].info.PGN)
		}
	}
	for mi := range dec.msgs {
		for si, cs := range dec.msgs[mi].signals {
			if dec.bySignal[cs.sig].msg >= 0 {
				return nil, fmt.Errorf("%w: signal %s is mapped twice", ErrDBC, cs.sig)
			}
			dec.bySignal[cs.sig].msg, dec.bySignal[cs.sig].sig = mi, si
		}
	}
	if len(dec.msgs) == 0 {
		return nil, fmt.Errorf("%w: no signal carries the %s attribute", ErrDBC, dbcSignalAttr)
	}
	return dec, nil
}

// normalizeUnit maps common DBC spellings to Signal.Unit() names; other
// units pass through unchanged (and then must equal the signal's unit).
func normalizeUnit(u string) string {
	switch strings.ToLower(strings.TrimSpace(u)) {
	case "", "-":
		return ""
	case "degc", "°c", "c", "deg c", "celsius", "degree celsius":
		return "degC"
	case "km/h", "kph", "kmh":
		return "km/h"
	case "deg", "°", "degree", "degrees":
		return "deg"
	}
	return u
}

// physicalLimits are limits no real value can exceed, whatever the DBC says.
func physicalLimits(s Signal) (lo, hi float64, ok bool) {
	switch s {
	case VPLatitude, GNSSLatitude:
		return -90, 90, true
	case VPLongitude, GNSSLongitude:
		return -180, 180, true
	case WheelSpeed, GNSSSpeed:
		return 0, math.Inf(1), true
	}
	return 0, 0, false
}

// PGN returns the J1939 parameter group number of a 29-bit identifier: for
// PDU2 formats (PF >= 240) the bits id & 0x03FFFF00; for PDU1 formats the
// PS byte is a destination address and is not part of the PGN.
func PGN(id uint32) uint32 {
	pgn := (id >> 8) & 0x3FFFF
	if pgn&0xFF00 < 0xF000 {
		pgn &^= 0xFF
	}
	return pgn
}

func (d *CANDecoder) lookup(pgn uint32) *canMessage {
	// A handful of messages: a linear scan beats a map here.
	for i := range d.msgs {
		if d.msgs[i].info.PGN == pgn {
			return &d.msgs[i]
		}
	}
	return nil
}

// Decode appends to out the readings carried by frame f, stamped with time t
// (Unix ns UTC), and returns the extended slice. A frame that is not for
// tankguard, or is malformed, adds nothing and is counted in Stats; so is each
// signal holding a J1939 error, not-available, reserved or implausible value.
// Decode does not allocate when out has room.
func (d *CANDecoder) Decode(f can.Frame, t int64, out []Reading) []Reading {
	d.c.frames.Add(1)
	switch {
	case !f.IsExtended:
		d.c.notExtended.Add(1)
		return out
	case f.IsRemote:
		d.c.remote.Add(1)
		return out
	}
	m := d.lookup(PGN(f.ID))
	if m == nil {
		d.c.unknownPGN.Add(1)
		return out
	}
	if f.Length != m.info.Length {
		d.c.wrongDLC.Add(1)
		return out
	}
	d.c.decoded.Add(1)
	n := 0
	for i := range m.signals {
		s := &m.signals[i]
		var raw float64
		if s.d.IsSigned {
			raw = float64(s.d.UnmarshalSigned(f.Data))
		} else {
			u := s.d.UnmarshalUnsigned(f.Data)
			if s.special {
				switch top := u >> (s.d.Length - 8); {
				case top == 0xFE:
					d.c.errorValue.Add(1)
					continue
				case top == 0xFF:
					d.c.notAvailable.Add(1)
					continue
				case top > 0xFA:
					d.c.reserved.Add(1)
					continue
				}
			}
			raw = float64(u)
		}
		var v float64
		if s.div > 0 {
			v = (raw + s.divOffset) / s.div
		} else {
			v = raw*s.d.Scale + s.d.Offset
		}
		if !(v >= s.min && v <= s.max) {
			d.c.implausible.Add(1)
			continue
		}
		out = append(out, Reading{Time: t, Value: v, Signal: s.sig})
		n++
	}
	d.c.readings.Add(uint64(n))
	return out
}

// Stats returns a snapshot of the decoder's counters. Safe for concurrent use.
func (d *CANDecoder) Stats() CANDecodeStats {
	return CANDecodeStats{
		Frames:       d.c.frames.Load(),
		Decoded:      d.c.decoded.Load(),
		Readings:     d.c.readings.Load(),
		NotExtended:  d.c.notExtended.Load(),
		Remote:       d.c.remote.Load(),
		UnknownPGN:   d.c.unknownPGN.Load(),
		WrongDLC:     d.c.wrongDLC.Load(),
		ErrorValue:   d.c.errorValue.Load(),
		NotAvailable: d.c.notAvailable.Load(),
		Reserved:     d.c.reserved.Load(),
		Implausible:  d.c.implausible.Load(),
	}
}

// Messages describes the DBC messages that carry tankguard signals, sorted
// by PGN. The returned slice is a fresh copy the caller owns.
func (d *CANDecoder) Messages() []CANMessageInfo {
	out := make([]CANMessageInfo, len(d.msgs))
	for i := range d.msgs {
		out[i] = d.msgs[i].info
		out[i].Signals = append([]Signal(nil), d.msgs[i].info.Signals...)
	}
	return out
}

// Message returns the description of the DBC message carrying s.
func (d *CANDecoder) Message(s Signal) (CANMessageInfo, bool) {
	if !s.Valid() || d.bySignal[s].msg < 0 {
		return CANMessageInfo{}, false
	}
	info := d.msgs[d.bySignal[s].msg].info
	info.Signals = append([]Signal(nil), info.Signals...)
	return info, true
}

// NewFrame returns a frame for the message with the given PGN as sent by
// source address sa: the DBC's priority, the DBC length, and every data byte
// 0xFF (J1939 "not available") until signals are set with EncodeSignal.
func (d *CANDecoder) NewFrame(pgn uint32, sa uint8) (can.Frame, error) {
	m := d.lookup(pgn)
	if m == nil {
		return can.Frame{}, fmt.Errorf("new frame: PGN %d: %w", pgn, ErrUnknownSignal)
	}
	f := can.Frame{
		ID:         m.info.ID&^0xFF | uint32(sa),
		Length:     m.info.Length,
		IsExtended: true,
	}
	for i := range f.Data {
		f.Data[i] = 0xFF
	}
	return f, nil
}

// EncodeSignal writes physical value v of signal s into data, as the DBC
// lays it out: raw = round((v - offset) / factor), saturated to the valid
// J1939 range (for whole-byte signals, at most top byte 0xFA). What Decode
// then returns is the quantised value, which the caller can learn by
// decoding the frame.
func (d *CANDecoder) EncodeSignal(data *can.Data, s Signal, v float64) error {
	cs, err := d.signal(s)
	if err != nil {
		return err
	}
	raw := math.Round((v - cs.d.Offset) / cs.d.Scale)
	if cs.d.IsSigned {
		lo, hi := float64(cs.d.MinSigned()), float64(cs.d.MaxSigned())
		raw = math.Max(lo, math.Min(hi, raw))
		cs.d.MarshalSigned(data, int64(raw))
		return nil
	}
	hi := float64(cs.d.MaxUnsigned())
	if cs.special {
		hi = float64(uint64(0xFB)<<(cs.d.Length-8) - 1)
	}
	if math.IsNaN(raw) {
		raw = 0
	}
	raw = math.Max(0, math.Min(hi, raw))
	cs.d.MarshalUnsigned(data, uint64(raw))
	return nil
}

// EncodeRaw writes raw bits for signal s into data, for example a J1939
// special value (see J1939ErrorRaw, J1939NotAvailableRaw).
func (d *CANDecoder) EncodeRaw(data *can.Data, s Signal, raw uint64) error {
	cs, err := d.signal(s)
	if err != nil {
		return err
	}
	cs.d.MarshalUnsigned(data, raw)
	return nil
}

// J1939ErrorRaw returns the raw "error indicator" value for signal s
// (top byte 0xFE, other bytes 0x00), or false when s is not a whole-byte
// unsigned DBC signal.
func (d *CANDecoder) J1939ErrorRaw(s Signal) (uint64, bool) {
	cs, err := d.signal(s)
	if err != nil || !cs.special {
		return 0, false
	}
	return uint64(0xFE) << (cs.d.Length - 8), true
}

// J1939NotAvailableRaw returns the raw "not available" value (all ones) for
// signal s, or false when s is not a whole-byte unsigned DBC signal.
func (d *CANDecoder) J1939NotAvailableRaw(s Signal) (uint64, bool) {
	cs, err := d.signal(s)
	if err != nil || !cs.special {
		return 0, false
	}
	return cs.d.MaxUnsigned(), true
}

func (d *CANDecoder) signal(s Signal) (*canSignal, error) {
	if !s.Valid() || d.bySignal[s].msg < 0 {
		return nil, fmt.Errorf("encode %s: %w", s, ErrUnknownSignal)
	}
	b := d.bySignal[s]
	return &d.msgs[b.msg].signals[b.sig], nil
}
