package sensors

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"go.einride.tech/can"
)

// PGNDM1 is J1939-73 DM1, active diagnostic trouble codes, which every ECU
// broadcasts once a second (and on change): in one frame for no or one
// code, with the transport protocol (BAM) for more.
const PGNDM1 = 65226 // 0xFECA

// Lamp is the state of one of the ECU's warning lamps in a DM1.
type Lamp uint8

// The two-bit lamp states of J1939-73.
const (
	LampOff          Lamp = 0
	LampOn           Lamp = 1
	LampError        Lamp = 2
	LampNotAvailable Lamp = 3
)

// String returns "off", "on", "error" or "n/a".
func (l Lamp) String() string {
	switch l {
	case LampOff:
		return "off"
	case LampOn:
		return "on"
	case LampError:
		return "error"
	case LampNotAvailable:
		return "n/a"
	}
	return "lamp(" + strconv.Itoa(int(l)) + ")"
}

// ParseLamp is the inverse of Lamp.String.
func ParseLamp(s string) (Lamp, error) {
	for l := LampOff; l <= LampNotAvailable; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("unknown lamp state %q", s)
}

// Lamps are the four lamp states a DM1 reports.
type Lamps struct {
	Malfunction  Lamp // MIL, emissions-related
	RedStop      Lamp // stop the vehicle
	AmberWarning Lamp // fix at the next stop
	Protect      Lamp // non-electronic subsystem
}

// DTC is one diagnostic trouble code: a suspect parameter and how it
// fails.
type DTC struct {
	// SPN is the suspect parameter number (19 bits), e.g. 110 for engine
	// coolant temperature.
	SPN uint32
	// FMI is the failure mode identifier (0..31), e.g. 0 "above normal,
	// most severe".
	FMI uint8
	// Occurrences is the occurrence count (0..126); 127 means not
	// available.
	Occurrences uint8
}

// DM1 is one ECU's active trouble codes, as decoded from its DM1.
type DM1 struct {
	// Source is the sending ECU's address (0 = engine #1).
	Source uint8
	// Time is when the DM1 arrived (Unix ns UTC).
	Time  int64
	Lamps Lamps
	// DTCs are the active codes, in the order sent; empty when the ECU
	// reports none. DecodeDM1 allocates it fresh: the caller owns it.
	DTCs []DTC
}

// maxDM1DTCs is the most codes a DM1 can carry ((TPMaxSize-2)/4).
const maxDM1DTCs = (TPMaxSize - 2) / 4

// DecodeDM1 decodes a DM1's data (8 bytes in one frame, or a reassembled
// transport-protocol message) sent by source at time t. Each code is 4
// bytes (SPN conversion method 4): SPN low, middle, top 3 bits with the FMI,
// then the conversion-method bit and the occurrence count. The "no code"
// placeholders (all zeros or all ones) are skipped; trailing 0xFF padding
// is allowed. It fails with ErrDM1 naming what was wrong.
func DecodeDM1(data []byte, source uint8, t int64) (DM1, error) {
	if len(data) < 6 {
		return DM1{}, fmt.Errorf("%w: %d bytes, want at least 6", ErrDM1, len(data))
	}
	if len(data) > TPMaxSize {
		return DM1{}, fmt.Errorf("%w: %d bytes, more than %d", ErrDM1, len(data), TPMaxSize)
	}
	m := DM1{Source: source, Time: t, Lamps: Lamps{
		Malfunction:  Lamp(data[0] >> 6 & 3),
		RedStop:      Lamp(data[0] >> 4 & 3),
		AmberWarning: Lamp(data[0] >> 2 & 3),
		Protect:      Lamp(data[0] & 3),
	}}
	body := data[2:]
	if rest := len(body) % 4; rest != 0 {
		for i, b := range body[len(body)-rest:] {
			if b != 0xFF {
				return DM1{}, fmt.Errorf("%w: byte %d is 0x%02X after the last whole code, want 0xFF padding", ErrDM1, len(data)-rest+i, b)
			}
		}
		body = body[:len(body)-rest]
	}
	for i := 0; i+4 <= len(body); i += 4 {
		c := body[i : i+4]
		if c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3]&0x7F == 0 || c[0]&c[1]&c[2]&c[3] == 0xFF {
			continue // "no active code" placeholder
		}
		if c[3]&0x80 != 0 {
			return DM1{}, fmt.Errorf("%w: code %d uses an old SPN conversion method (CM bit set); only method 4 is supported", ErrDM1, i/4+1)
		}
		m.DTCs = append(m.DTCs, DTC{
			SPN:         uint32(c[0]) | uint32(c[1])<<8 | uint32(c[2]>>5)<<16,
			FMI:         c[2] & 0x1F,
			Occurrences: c[3] & 0x7F,
		})
	}
	return m, nil
}

// AppendDM1 appends the DM1 data bytes for lamps and codes (the inverse of
// DecodeDM1): 8 bytes padded with 0xFF for at most one code, else 2 + 4
// per code. Flash states are sent as "do not flash" (0xFF).
func AppendDM1(b []byte, lamps Lamps, codes []DTC) []byte {
	b = append(b, byte(lamps.Malfunction&3)<<6|byte(lamps.RedStop&3)<<4|byte(lamps.AmberWarning&3)<<2|byte(lamps.Protect&3), 0xFF)
	if len(codes) == 0 {
		return append(b, 0, 0, 0, 0, 0xFF, 0xFF)
	}
	for _, c := range codes {
		b = append(b, byte(c.SPN), byte(c.SPN>>8), byte(c.SPN>>16&7)<<5|c.FMI&0x1F, c.Occurrences&0x7F)
	}
	if len(codes) == 1 {
		b = append(b, 0xFF, 0xFF)
	}
	return b
}

// spnNames are readable names of the SPNs a tanker's drivers and fleet
// team meet most.
var spnNames = map[uint32]string{
	84:     "wheel-based vehicle speed",
	91:     "accelerator pedal position",
	94:     "fuel delivery pressure",
	97:     "water in fuel",
	98:     "engine oil level",
	100:    "engine oil pressure",
	102:    "intake manifold pressure",
	105:    "intake manifold temperature",
	110:    "engine coolant temperature",
	111:    "coolant level",
	157:    "fuel rail pressure",
	158:    "battery potential (switched)",
	168:    "battery potential",
	171:    "ambient air temperature",
	174:    "fuel temperature",
	175:    "engine oil temperature",
	190:    "engine speed",
	513:    "actual engine torque",
	520192: "cargo tank temperature (tankguard)",
	3226:   "aftertreatment NOx outlet",
	3251:   "DPF differential pressure",
	3364:   "DEF tank quality",
	1761:   "DEF tank level",
}

// SPNName returns a readable name for spn, or "SPN n" when it is not one of
// the common ones.
func SPNName(spn uint32) string {
	if n, ok := spnNames[spn]; ok {
		return n
	}
	return "SPN " + strconv.FormatUint(uint64(spn), 10)
}

// fmiNames are the J1939-73 failure mode identifiers.
var fmiNames = [32]string{
	0:  "above normal (most severe)",
	1:  "below normal (most severe)",
	2:  "erratic or incorrect data",
	3:  "voltage above normal or shorted high",
	4:  "voltage below normal or shorted low",
	5:  "current below normal or open circuit",
	6:  "current above normal or grounded circuit",
	7:  "mechanical system not responding",
	8:  "abnormal frequency or pulse width",
	9:  "abnormal update rate",
	10: "abnormal rate of change",
	11: "root cause not known",
	12: "bad intelligent device",
	13: "out of calibration",
	14: "special instructions",
	15: "above normal (least severe)",
	16: "above normal (moderately severe)",
	17: "below normal (least severe)",
	18: "below normal (moderately severe)",
	19: "received network data in error",
	20: "data drifted high",
	21: "data drifted low",
	31: "condition exists",
}

// FMIName returns the J1939-73 description of fmi.
func FMIName(fmi uint8) string {
	if int(fmi) < len(fmiNames) && fmiNames[fmi] != "" {
		return fmiNames[fmi]
	}
	return "FMI " + strconv.Itoa(int(fmi))
}

// DM1Stats counts a DM1Listener.
type DM1Stats struct {
	Received  uint64 // DM1s decoded and passed on
	Malformed uint64 // DM1s that failed DecodeDM1 (single frame or reassembled)
	// Transport counts the bus's transport-protocol sessions.
	Transport TPStats
}

// DM1Listener picks the DM1s out of one bus's frames: single-frame ones,
// and multi-packet ones reassembled by its TPReassembler (DM1 only, so
// other transported PGNs take no memory). Frame is not safe for concurrent
// use (one listener per bus); Stats is.
type DM1Listener struct {
	tp              *TPReassembler
	on              func(DM1)
	recv, malformed atomic.Uint64
}

// NewDM1Listener returns a listener calling on with each DM1 decoded (from
// the caller's goroutine; on owns the DM1).
func NewDM1Listener(on func(DM1)) *DM1Listener {
	return &DM1Listener{tp: NewTPReassembler(TPConfig{PGNs: []uint32{PGNDM1}}), on: on}
}

// Frame feeds one frame received at time t (Unix ns).
func (l *DM1Listener) Frame(f can.Frame, t int64) {
	if !f.IsExtended || f.IsRemote {
		return
	}
	if PGN(f.ID) == PGNDM1 {
		l.deliver(f.Data[:f.Length], uint8(f.ID), t)
		l.tp.Expire(t)
		return
	}
	if m, ok := l.tp.Frame(f, t); ok {
		l.deliver(m.Data, m.Source, t)
	}
}

// Reset drops the transport sessions in progress (after a reconnect).
func (l *DM1Listener) Reset() { l.tp.Reset() }

func (l *DM1Listener) deliver(data []byte, src uint8, t int64) {
	m, err := DecodeDM1(data, src, t)
	if err != nil {
		l.malformed.Add(1)
		return
	}
	l.recv.Add(1)
	if l.on != nil {
		l.on(m)
	}
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (l *DM1Listener) Stats() DM1Stats {
	return DM1Stats{Received: l.recv.Load(), Malformed: l.malformed.Load(), Transport: l.tp.Stats()}
}
