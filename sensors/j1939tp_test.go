package sensors

import (
	"bytes"
	"testing"

	"go.einride.tech/can"
)

// tpStep is one frame arriving at a time in milliseconds.
type tpStep struct {
	ms int64
	f  can.Frame
}

// tpCM builds a TP.CM frame from src to dst.
func tpCM(src, dst, ctrl uint8, size int, packets, b4 uint8, pgn uint32) can.Frame {
	return can.Frame{ID: 0x1CEC0000 | uint32(dst)<<8 | uint32(src), Length: 8, IsExtended: true,
		Data: can.Data{ctrl, byte(size), byte(size >> 8), packets, b4, byte(pgn), byte(pgn >> 8), byte(pgn >> 16)}}
}

// tpDT builds a TP.DT frame: packet n of data (7 bytes from (n-1)*7,
// padded with 0xFF).
func tpDT(src, dst uint8, n int, data []byte) can.Frame {
	f := can.Frame{ID: 0x1CEB0000 | uint32(dst)<<8 | uint32(src), Length: 8, IsExtended: true,
		Data: can.Data{byte(n), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}
	if lo := (n - 1) * 7; lo >= 0 && lo < len(data) {
		copy(f.Data[1:], data[lo:min(len(data), lo+7)])
	}
	return f
}

// cts builds a CTS from the receiver to the sender: byte 1 the packets
// it can take, byte 2 the next packet number, bytes 3-4 0xFF.
func cts(receiver, sender uint8, count, next uint8, pgn uint32) can.Frame {
	f := tpCM(receiver, sender, tpCTS, 0, 0, 0, pgn)
	f.Data[1], f.Data[2], f.Data[3], f.Data[4] = count, next, 0xFF, 0xFF
	return f
}

// dm1Data is a 3-code DM1 (14 bytes, two TP packets): amber lamp on;
// coolant temperature above normal, oil pressure below normal, oil
// temperature above normal (moderately severe).
var dm1Data = AppendDM1(nil, Lamps{AmberWarning: LampOn, Malfunction: LampOff, RedStop: LampOff, Protect: LampOff},
	[]DTC{{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 1}, {SPN: 175, FMI: 16, Occurrences: 126}})

// long is a 40-byte message: 6 packets.
var long = func() []byte {
	b := make([]byte, 40)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}()

type tpCase struct {
	name  string
	cfg   TPConfig
	steps []tpStep
	want  []TPMessage // Time in ms
	stats TPStats     // Frames filled in from len(steps) of TP frames
}

var tpCases = []tpCase{
	{
		name: "BAM DM1 with three codes from the engine",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{50, tpDT(0x00, 0xFF, 1, dm1Data)},
			{100, tpDT(0x00, 0xFF, 2, dm1Data)},
		},
		want:  []TPMessage{{PGN: PGNDM1, Source: 0x00, Dest: 0xFF, Time: 100, Data: dm1Data}},
		stats: TPStats{Announced: 1, Completed: 1},
	},
	{
		name: "RTS/CTS between engine and a service tool, listened to",
		steps: []tpStep{
			{0, tpCM(0x00, 0xF9, tpRTS, 40, 6, 0xFF, 0xFEE5)},
			{10, cts(0xF9, 0x00, 3, 1, 0xFEE5)},
			{20, tpDT(0x00, 0xF9, 1, long)},
			{30, tpDT(0x00, 0xF9, 2, long)},
			{40, tpDT(0x00, 0xF9, 3, long)},
			{50, cts(0xF9, 0x00, 0, 0xFF, 0xFEE5)}, // hold
			{1000, cts(0xF9, 0x00, 3, 4, 0xFEE5)},
			{1010, tpDT(0x00, 0xF9, 4, long)},
			{1020, tpDT(0x00, 0xF9, 5, long)},
			{1030, tpDT(0x00, 0xF9, 6, long)},
			{1040, tpCM(0xF9, 0x00, tpEOMA, 40, 6, 0xFF, 0xFEE5)},
		},
		want:  []TPMessage{{PGN: 0xFEE5, Source: 0x00, Dest: 0xF9, Time: 1030, Data: long}},
		stats: TPStats{Announced: 1, Completed: 1},
	},
	{
		name: "RTS/CTS with a packet sent again on request",
		steps: []tpStep{
			{0, tpCM(0x00, 0xF9, tpRTS, 40, 6, 0xFF, 0xFEE5)},
			{10, cts(0xF9, 0x00, 6, 1, 0xFEE5)},
			{20, tpDT(0x00, 0xF9, 1, long)},
			{30, tpDT(0x00, 0xF9, 2, []byte("garbage garbage"))},
			{40, cts(0xF9, 0x00, 5, 2, 0xFEE5)},
			{50, tpDT(0x00, 0xF9, 2, long)},
			{60, tpDT(0x00, 0xF9, 3, long)},
			{70, tpDT(0x00, 0xF9, 4, long)},
			{80, tpDT(0x00, 0xF9, 5, long)},
			{90, tpDT(0x00, 0xF9, 6, long)},
		},
		want:  []TPMessage{{PGN: 0xFEE5, Source: 0x00, Dest: 0xF9, Time: 90, Data: long}},
		stats: TPStats{Announced: 1, Completed: 1},
	},
	{
		name: "two BAMs from different ECUs interleaved",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{5, tpCM(0x03, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 1, dm1Data)},
			{55, tpDT(0x03, 0xFF, 1, long)},
			{100, tpDT(0x00, 0xFF, 2, dm1Data)},
			{105, tpDT(0x03, 0xFF, 2, long)},
			{155, tpDT(0x03, 0xFF, 3, long)},
			{205, tpDT(0x03, 0xFF, 4, long)},
			{255, tpDT(0x03, 0xFF, 5, long)},
			{305, tpDT(0x03, 0xFF, 6, long)},
		},
		want: []TPMessage{
			{PGN: PGNDM1, Source: 0x00, Dest: 0xFF, Time: 100, Data: dm1Data},
			{PGN: 0xFEE5, Source: 0x03, Dest: 0xFF, Time: 305, Data: long},
		},
		stats: TPStats{Announced: 2, Completed: 2},
	},
	{
		name: "BAM timed out after T1, late packet orphaned",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{50, tpDT(0x00, 0xFF, 1, dm1Data)},
			{801, tpDT(0x00, 0xFF, 2, dm1Data)},
		},
		stats: TPStats{Announced: 1, TimedOut: 1, Orphan: 1},
	},
	{
		name: "BAM packet just inside T1 still completes",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{750, tpDT(0x00, 0xFF, 1, dm1Data)},
			{1500, tpDT(0x00, 0xFF, 2, dm1Data)},
		},
		want:  []TPMessage{{PGN: PGNDM1, Source: 0x00, Dest: 0xFF, Time: 1500, Data: dm1Data}},
		stats: TPStats{Announced: 1, Completed: 1},
	},
	{
		name: "RTS waits T2 for the first packet, then T1",
		steps: []tpStep{
			{0, tpCM(0x00, 0xF9, tpRTS, 40, 6, 0xFF, 0xFEE5)},
			{10, cts(0xF9, 0x00, 6, 1, 0xFEE5)},
			{1200, tpDT(0x00, 0xF9, 1, long)},
			{2000, tpDT(0x00, 0xF9, 2, long)},
		},
		stats: TPStats{Announced: 1, TimedOut: 1, Orphan: 1},
	},
	{
		name: "BAM timeout noticed by a later unrelated frame",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{5000, frame(0x18FEEE00, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)},
		},
		stats: TPStats{Announced: 1, TimedOut: 1},
	},
	{
		name: "BAM packet out of sequence",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 1, long)},
			{100, tpDT(0x00, 0xFF, 3, long)},
			{150, tpDT(0x00, 0xFF, 4, long)},
		},
		stats: TPStats{Announced: 1, BadSequence: 1, Orphan: 1},
	},
	{
		name: "BAM packet repeated",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 1, long)},
			{100, tpDT(0x00, 0xFF, 1, long)},
		},
		stats: TPStats{Announced: 1, BadSequence: 1},
	},
	{
		name: "BAM packet number 0",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 0, long)},
		},
		stats: TPStats{Announced: 1, BadSequence: 1},
	},
	{
		name: "connection aborted by the receiver",
		steps: []tpStep{
			{0, tpCM(0x00, 0xF9, tpRTS, 40, 6, 0xFF, 0xFEE5)},
			{10, cts(0xF9, 0x00, 6, 1, 0xFEE5)},
			{20, tpDT(0x00, 0xF9, 1, long)},
			{30, tpCM(0xF9, 0x00, tpAbort, 0xFFFF, 0xFF, 0xFF, 0xFEE5)},
			{40, tpDT(0x00, 0xF9, 2, long)},
		},
		stats: TPStats{Announced: 1, Aborted: 1, Orphan: 1},
	},
	{
		name: "connection aborted by the sender; abort of another PGN is an orphan",
		steps: []tpStep{
			{0, tpCM(0x00, 0xF9, tpRTS, 40, 6, 0xFF, 0xFEE5)},
			{5, tpCM(0x00, 0xF9, tpAbort, 0xFFFF, 0xFF, 0xFF, 0xFEE6)},
			{10, tpCM(0x00, 0xF9, tpAbort, 0xFFFF, 0xFF, 0xFF, 0xFEE5)},
		},
		stats: TPStats{Announced: 1, Aborted: 1, Orphan: 1},
	},
	{
		name: "a new BAM from the same ECU replaces the one in progress",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 1, long)},
			{100, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{150, tpDT(0x00, 0xFF, 1, dm1Data)},
			{200, tpDT(0x00, 0xFF, 2, dm1Data)},
		},
		want:  []TPMessage{{PGN: PGNDM1, Source: 0x00, Dest: 0xFF, Time: 200, Data: dm1Data}},
		stats: TPStats{Announced: 2, Replaced: 1, Completed: 1},
	},
	{
		name: "malformed announcements",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 8, 2, 0xFF, PGNDM1)},                                                      // fits one frame
			{1, tpCM(0x00, 0xFF, tpBAM, 1786, 0xFF, 0xFF, PGNDM1)},                                                // too long
			{2, tpCM(0x00, 0xFF, tpBAM, 14, 3, 0xFF, PGNDM1)},                                                     // packets do not match size
			{3, tpCM(0x00, 0xF9, tpBAM, 14, 2, 0xFF, PGNDM1)},                                                     // BAM to one node
			{4, tpCM(0x00, 0xFF, tpRTS, 14, 2, 0xFF, PGNDM1)},                                                     // RTS to everyone
			{5, tpCM(0x00, 0xFF, 99, 14, 2, 0xFF, PGNDM1)},                                                        // unknown control byte
			{6, func() can.Frame { f := tpCM(0x00, 0xFF, tpBAM, 14, 2, 0xFF, PGNDM1); f.Length = 7; return f }()}, // short frame
			{7, tpCM(0x00, 0xFF, tpBAM, 14, 2, 0xFF, 0xFFFFFF)},                                                   // PGN beyond 18 bits
		},
		stats: TPStats{Malformed: 8},
	},
	{
		name: "short data packet",
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{50, func() can.Frame { f := tpDT(0x00, 0xFF, 1, dm1Data); f.Length = 4; return f }()},
		},
		stats: TPStats{Announced: 1, Malformed: 1},
	},
	{
		name: "data, CTS and EOMA with no session",
		steps: []tpStep{
			{0, tpDT(0x00, 0xFF, 1, dm1Data)},
			{1, cts(0xF9, 0x00, 3, 1, 0xFEE5)},
			{2, tpCM(0xF9, 0x00, tpEOMA, 40, 6, 0xFF, 0xFEE5)},
		},
		stats: TPStats{Orphan: 2},
	},
	{
		name: "PGN not wanted is not buffered",
		cfg:  TPConfig{PGNs: []uint32{PGNDM1}},
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5)},
			{50, tpDT(0x00, 0xFF, 1, long)},
		},
		stats: TPStats{Ignored: 1, Orphan: 1},
	},
	{
		name: "session limit",
		cfg:  TPConfig{MaxSessions: 2},
		steps: []tpStep{
			{0, tpCM(0x00, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{1, tpCM(0x01, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{2, tpCM(0x02, 0xFF, tpBAM, len(dm1Data), 2, 0xFF, PGNDM1)},
			{50, tpDT(0x02, 0xFF, 1, dm1Data)},
			{60, tpDT(0x00, 0xFF, 1, dm1Data)},
			{70, tpDT(0x00, 0xFF, 2, dm1Data)},
		},
		want:  []TPMessage{{PGN: PGNDM1, Source: 0x00, Dest: 0xFF, Time: 70, Data: dm1Data}},
		stats: TPStats{Announced: 2, Dropped: 1, Orphan: 1, Completed: 1},
	},
}

func runTP(r *TPReassembler, steps []tpStep) []TPMessage {
	var got []TPMessage
	for _, s := range steps {
		if m, ok := r.Frame(s.f, s.ms*1e6); ok {
			m.Data = bytes.Clone(m.Data)
			m.Time /= 1e6
			got = append(got, m)
		}
	}
	return got
}

func TestTPReassembler(t *testing.T) {
	for _, tc := range tpCases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewTPReassembler(tc.cfg)
			got := runTP(r, tc.steps)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.PGN != w.PGN || g.Source != w.Source || g.Dest != w.Dest || g.Time != w.Time || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("message %d = %+v, want %+v", i, g, w)
				}
			}
			want := tc.stats
			for _, s := range tc.steps {
				if IsTP(s.f) {
					want.Frames++
				}
			}
			if st := r.Stats(); st != want {
				t.Errorf("stats\n got %+v\nwant %+v", st, want)
			}
		})
	}
}

// TestTPSessionAccounting checks that, whatever the case, every announced
// session ended one way or is still in progress.
func TestTPSessionAccounting(t *testing.T) {
	for _, tc := range tpCases {
		r := NewTPReassembler(tc.cfg)
		runTP(r, tc.steps)
		checkTPAccounting(t, tc.name, r)
	}
}

func checkTPAccounting(t *testing.T, name string, r *TPReassembler) {
	t.Helper()
	st := r.Stats()
	ended := st.Completed + st.Aborted + st.Replaced + st.TimedOut + st.BadSequence + st.Reset
	if st.Announced != ended+uint64(r.InProgress()) {
		t.Errorf("%s: announced %d != ended %d + in progress %d (%+v)", name, st.Announced, ended, r.InProgress(), st)
	}
	if r.InProgress() > r.max {
		t.Errorf("%s: %d sessions in progress, limit %d", name, r.InProgress(), r.max)
	}
}

func TestTPReset(t *testing.T) {
	r := NewTPReassembler(TPConfig{})
	r.Frame(tpCM(0x00, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5), 0)
	r.Frame(tpCM(0x01, 0xFF, tpBAM, 40, 6, 0xFF, 0xFEE5), 0)
	r.Reset()
	if _, ok := r.Frame(tpDT(0x00, 0xFF, 1, long), 1); ok || r.InProgress() != 0 {
		t.Fatal("session survived Reset")
	}
	if st := r.Stats(); st.Reset != 2 || st.Orphan != 1 {
		t.Fatalf("stats %+v, want Reset 2 Orphan 1", st)
	}
}

// TestAppendBAMRoundTrip sends messages of every size through AppendBAM
// and the reassembler.
func TestAppendBAMRoundTrip(t *testing.T) {
	r := NewTPReassembler(TPConfig{})
	msg := make([]byte, TPMaxSize)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	for size := tpMinSize; size <= TPMaxSize; size += 97 {
		frames := AppendBAM(nil, 0x21, 0xFEE5, msg[:size])
		if len(frames) != 1+(size+6)/7 {
			t.Fatalf("size %d: %d frames", size, len(frames))
		}
		var got []TPMessage
		for i, f := range frames {
			if m, ok := r.Frame(f, int64(size)*1e9+int64(i)*50e6); ok {
				got = append(got, m)
			}
		}
		if len(got) != 1 || !bytes.Equal(got[0].Data, msg[:size]) || got[0].Source != 0x21 || got[0].PGN != 0xFEE5 {
			t.Fatalf("size %d: got %d messages", size, len(got))
		}
	}
	if f := AppendBAM(nil, 0, PGNDM1, make([]byte, 8)); len(f) != 0 {
		t.Fatal("AppendBAM sent an 8-byte message")
	}
}

// BenchmarkTPReassembleDM1 reassembles a three-code BAM DM1.
func BenchmarkTPReassembleDM1(b *testing.B) {
	frames := AppendBAM(nil, 0, PGNDM1, dm1Data)
	r := NewTPReassembler(TPConfig{PGNs: []uint32{PGNDM1}})
	b.ReportAllocs()
	b.SetBytes(int64(len(dm1Data)))
	var t int64
	for b.Loop() {
		for _, f := range frames {
			t += 50e6
			r.Frame(f, t)
		}
	}
}

// BenchmarkDM1ListenerOtherFrame is what every non-diagnostic frame of a
// bus pays for the DM1 listener.
func BenchmarkDM1ListenerOtherFrame(b *testing.B) {
	l := NewDM1Listener(func(DM1) {})
	f := frame(0x18FEEE00, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	b.ReportAllocs()
	var t int64
	for b.Loop() {
		t += 1e6
		l.Frame(f, t)
	}
}
