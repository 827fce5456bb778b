package sensors

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
)

type dm1Case struct {
	name string
	data []byte
	want DM1 // Source 0, Time 0
	err  bool
}

// dm1Cases are shared by the table test and the fuzz seed corpus.
var dm1Cases = []dm1Case{
	{
		name: "single frame, no active codes",
		data: []byte{0x00, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF},
		want: DM1{},
	},
	{
		name: "single frame, no active codes, all-ones placeholder",
		data: []byte{0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		want: DM1{},
	},
	{
		name: "single frame, coolant temperature above normal, amber lamp",
		data: []byte{0x04, 0xFF, 0x6E, 0x00, 0x00, 0x01, 0xFF, 0xFF},
		want: DM1{Lamps: Lamps{AmberWarning: LampOn}, DTCs: []DTC{{SPN: 110, FMI: 0, Occurrences: 1}}},
	},
	{
		name: "every lamp in a different state, SPN using all 19 bits",
		data: []byte{0b11_10_01_00, 0xFF, 0xFF, 0xFF, 0xE0 | 31, 126, 0xFF, 0xFF},
		want: DM1{Lamps: Lamps{Malfunction: LampNotAvailable, RedStop: LampError, AmberWarning: LampOn, Protect: LampOff},
			DTCs: []DTC{{SPN: 1<<19 - 1, FMI: 31, Occurrences: 126}}},
	},
	{
		name: "multi-packet, three codes",
		data: dm1Data,
		want: DM1{Lamps: Lamps{AmberWarning: LampOn}, DTCs: []DTC{
			{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 1}, {SPN: 175, FMI: 16, Occurrences: 126}}},
	},
	{
		name: "occurrence count not available",
		data: []byte{0x10, 0xFF, 0x64, 0x00, 0x01, 0x7F, 0xFF, 0xFF},
		want: DM1{Lamps: Lamps{RedStop: LampOn}, DTCs: []DTC{{SPN: 100, FMI: 1, Occurrences: 127}}},
	},
	{name: "too short", data: []byte{0x00, 0xFF, 0x6E, 0x00, 0x00}, err: true},
	{name: "empty", data: nil, err: true},
	{name: "padding that is not 0xFF", data: []byte{0x04, 0xFF, 0x6E, 0x00, 0x00, 0x01, 0x00, 0xFF}, err: true},
	{name: "old SPN conversion method", data: []byte{0x04, 0xFF, 0x6E, 0x00, 0x00, 0x81, 0xFF, 0xFF}, err: true},
	{name: "longer than the transport protocol carries", data: make([]byte, TPMaxSize+2), err: true},
}

func TestDecodeDM1(t *testing.T) {
	for _, tc := range dm1Cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeDM1(tc.data, 0, 0)
			if tc.err {
				if !errors.Is(err, ErrDM1) {
					t.Fatalf("err = %v, want ErrDM1", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAppendDM1RoundTrip(t *testing.T) {
	lamps := Lamps{Malfunction: LampOn, RedStop: LampOff, AmberWarning: LampOn, Protect: LampNotAvailable}
	for n := 0; n <= 5; n++ {
		var codes []DTC
		for i := range n {
			codes = append(codes, DTC{SPN: uint32(100 + 37*i), FMI: uint8(i), Occurrences: uint8(i + 1)})
		}
		data := AppendDM1(nil, lamps, codes)
		if n <= 1 && len(data) != 8 || n > 1 && len(data) != 2+4*n {
			t.Fatalf("%d codes: %d bytes", n, len(data))
		}
		got, err := DecodeDM1(data, 3, 42)
		if err != nil {
			t.Fatal(err)
		}
		if want := (DM1{Source: 3, Time: 42, Lamps: lamps, DTCs: codes}); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d codes: got %+v, want %+v", n, got, want)
		}
	}
}

func TestSPNAndFMINames(t *testing.T) {
	for spn, want := range map[uint32]string{110: "engine coolant temperature", 100: "engine oil pressure", 175: "engine oil temperature", 9999: "SPN 9999"} {
		if got := SPNName(spn); got != want {
			t.Errorf("SPNName(%d) = %q, want %q", spn, got, want)
		}
	}
	if got := FMIName(0); got != "above normal (most severe)" {
		t.Errorf("FMIName(0) = %q", got)
	}
	if got := FMIName(25); got != "FMI 25" {
		t.Errorf("FMIName(25) = %q", got)
	}
	for l := LampOff; l <= LampNotAvailable; l++ {
		if p, err := ParseLamp(l.String()); err != nil || p != l {
			t.Errorf("ParseLamp(%q) = %v, %v", l, p, err)
		}
	}
}

// TestCandumpReplayDM1 replays a candump log in which the engine (SA 00)
// sends no codes, then one code in a single frame, then three codes by
// BAM, then clears them, while the transmission (SA 03) starts a BAM it
// never finishes: the DM1s come out in order, the broken BAM is counted
// as timed out, and the coolant readings around them decode as before.
func TestCandumpReplayDM1(t *testing.T) {
	f, err := os.Open("testdata/dm1_bam.candump")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []DM1
	var readings int
	r := &CandumpReplay{Log: f, Decoder: mustDecoder(t), OnDM1: func(m DM1) { got = append(got, m) }}
	if err := r.Run(context.Background(), func(rs []Reading) { readings += len(rs) }); err != nil {
		t.Fatal(err)
	}
	const t0 = 1767225600 * int64(1e9)
	want := []DM1{
		{Source: 0, Time: t0 + 10e6},
		{Source: 0, Time: t0 + 1010e6, Lamps: Lamps{AmberWarning: LampOn}, DTCs: []DTC{{SPN: 110, FMI: 0, Occurrences: 1}}},
		{Source: 0, Time: t0 + 2110e6, Lamps: Lamps{AmberWarning: LampOn}, DTCs: []DTC{
			{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 1}, {SPN: 175, FMI: 16, Occurrences: 126}}},
		{Source: 0, Time: t0 + 4010e6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DM1s\n got %+v\nwant %+v", got, want)
	}
	if readings != 5 {
		t.Errorf("%d coolant readings, want 5", readings)
	}
	st := r.DM1Stats()
	if st.Received != 4 || st.Malformed != 0 || st.Transport.Announced != 2 || st.Transport.Completed != 1 || st.Transport.TimedOut != 1 {
		t.Errorf("DM1 stats %+v", st)
	}
}

// FuzzTPReassembler feeds arbitrary frame sequences (fuzzStepLen bytes a
// frame: id, length, data, time step) to a TPReassembler: it must never
// panic, deliver only messages of a size the protocol allows, keep to its
// session bound, and account for every session. Seeded from the table
// tests.
func FuzzTPReassembler(f *testing.F) {
	for _, tc := range tpCases {
		var b []byte
		for _, s := range tc.steps {
			b = appendFuzzStep(b, s)
		}
		f.Add(b)
	}
	for _, tc := range dm1Cases {
		f.Add(appendFuzzStep(nil, tpStep{f: frame(0x18FECA00, append(tc.data, make([]byte, 8)...)[:8]...)}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewTPReassembler(TPConfig{MaxSessions: 4})
		var tm int64
		for len(b) >= fuzzStepLen {
			s := parseFuzzStep(b)
			b = b[fuzzStepLen:]
			tm += s.ms * 1e6
			if m, ok := r.Frame(s.f, tm); ok {
				if len(m.Data) < tpMinSize || len(m.Data) > TPMaxSize {
					t.Fatalf("message of %d bytes", len(m.Data))
				}
				if _, err := DecodeDM1(m.Data, m.Source, tm); err != nil && !errors.Is(err, ErrDM1) {
					t.Fatalf("DecodeDM1 error %v is not ErrDM1", err)
				}
			}
			checkTPAccounting(t, "fuzz", r)
		}
	})
}

// fuzzStepLen is one fuzz step: 4 bytes id, 1 length, 8 data, 1 time step
// in 10 ms units.
const fuzzStepLen = 14

func appendFuzzStep(b []byte, s tpStep) []byte {
	id := s.f.ID
	b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24), s.f.Length)
	b = append(b, s.f.Data[:]...)
	return append(b, byte(min(255, max(0, s.ms/10))))
}

func parseFuzzStep(b []byte) tpStep {
	s := tpStep{ms: int64(b[13]) * 10}
	s.f.ID = (uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24) & 0x1FFFFFFF
	s.f.IsExtended = true
	s.f.Length = b[4] % 9
	copy(s.f.Data[:], b[5:13])
	return s
}

// FuzzDecodeDM1 feeds arbitrary data to DecodeDM1: ErrDM1 or a DM1 whose
// codes re-encode to data that decodes the same. Seeded from the table.
func FuzzDecodeDM1(f *testing.F) {
	for _, tc := range dm1Cases {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeDM1(data, 0, 0)
		if err != nil {
			if !errors.Is(err, ErrDM1) {
				t.Fatalf("error %v is not ErrDM1", err)
			}
			return
		}
		again, err := DecodeDM1(AppendDM1(nil, m.Lamps, m.DTCs), 0, 0)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", m, again, err)
		}
	})
}
