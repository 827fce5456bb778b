package sensors

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.einride.tech/can"
)

var candumpCases = []struct {
	name string
	line string
	want CandumpRecord
	err  bool
}{
	{
		name: "extended J1939 frame",
		line: "(1700000000.123456) can0 18FEEE00#82FFFFFFFFFFFFFF",
		want: CandumpRecord{Time: 1700000000123456000, Interface: "can0", Frame: frame(0x18FEEE00, 0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)},
	},
	{
		name: "standard frame, lower-case hex, CR LF",
		line: "(1.000001) vcan1 123#deadbeef\r\n",
		want: CandumpRecord{Time: 1000001000, Interface: "vcan1", Frame: can.Frame{ID: 0x123, Length: 4, Data: can.Data{0xde, 0xad, 0xbe, 0xef}}},
	},
	{
		name: "remote frame",
		line: "(1700000000.000000) can0 18EAFF00#R",
		want: CandumpRecord{Time: 1700000000000000000, Interface: "can0", Frame: can.Frame{ID: 0x18EAFF00, IsExtended: true, IsRemote: true}},
	},
	{name: "no timestamp", line: "can0 18FEEE00#82", err: true},
	{name: "bad timestamp", line: "(17x.1) can0 18FEEE00#82", err: true},
	{name: "missing interface", line: "(1.1) 18FEEE00#82", err: true},
	{name: "odd hex digits", line: "(1.1) can0 18FEEE00#821", err: true},
	{name: "too much data", line: "(1.1) can0 18FEEE00#000000000000000000", err: true},
	{name: "id too wide", line: "(1.1) can0 FFFFFFFF#00", err: true},
	{name: "CAN FD", line: "(1.1) can0 18FEEE00##100", err: true},
	{name: "truncated", line: "(1700000000.12", err: true},
}

func TestParseCandumpLine(t *testing.T) {
	for _, tc := range candumpCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCandumpLine(tc.line)
			if tc.err {
				if !errors.Is(err, ErrCandump) {
					t.Fatalf("err = %v, want ErrCandump", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// Writing it back gives a line that parses to the same record.
			again, err := ParseCandumpLine(string(AppendCandumpLine(nil, got)))
			if err != nil || again != got {
				t.Fatalf("round trip: %+v %v", again, err)
			}
		})
	}
}

func TestAppendCandumpLineFormat(t *testing.T) {
	got := string(AppendCandumpLine(nil, candumpCases[0].want))
	if want := "(1700000000.123456) can0 18FEEE00#82FFFFFFFFFFFFFF\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCandumpReplay(t *testing.T) {
	log := strings.Join([]string{
		"(1700000000.000000) can0 18FEEE00#82FFFFFFFFFFFFFF", // coolant 90
		"(1700000000.100000) can1 18FEEE00#8CFFFFFFFFFFFFFF", // other bus: skipped
		"garbage",
		"",
		"(1700000000.200000) can0 18FEF10B#FF8050FFFFFFFFFF", // speed 80.5
		"(1700000000.300000) can0 18FEEE00#82FF",             // wrong DLC
	}, "\n")
	r := &CandumpReplay{Log: strings.NewReader(log), Decoder: mustDecoder(t), Interface: "can0"}
	var got collector
	if err := r.Run(context.Background(), got.emit); err != nil {
		t.Fatal(err)
	}
	rs := got.get()
	if len(rs) != 2 || rs[0] != (Reading{Time: 1700000000000000000, Value: 90, Signal: CoolantTemp}) ||
		rs[1] != (Reading{Time: 1700000000200000000, Value: 80.5, Signal: WheelSpeed}) {
		t.Fatalf("readings %+v", rs)
	}
	if s := r.Stats(); s.Lines != 6 || s.Frames != 3 || s.Skipped != 1 || s.Malformed != 1 {
		t.Fatalf("stats %+v", s)
	}
	if s := r.Decoder.Stats(); s.WrongDLC != 1 {
		t.Fatalf("decoder stats %+v", s)
	}
}

func TestCandumpReplayCancel(t *testing.T) {
	log := "(1700000000.000000) can0 18FEEE00#82FFFFFFFFFFFFFF\n(1700000100.000000) can0 18FEEE00#82FFFFFFFFFFFFFF\n"
	ctx, cancel := context.WithCancel(context.Background())
	r := &CandumpReplay{Log: strings.NewReader(log), Decoder: mustDecoder(t), Speed: 1}
	err := r.Run(ctx, func([]Reading) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func FuzzCandumpLine(f *testing.F) {
	for _, tc := range candumpCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		rec, err := ParseCandumpLine(line)
		if err != nil {
			if !errors.Is(err, ErrCandump) {
				t.Fatalf("error %v is not ErrCandump", err)
			}
			return
		}
		if strings.ContainsAny(rec.Interface, " \t\n") {
			return // not representable in the line format; nothing to check
		}
		again, err := ParseCandumpLine(string(AppendCandumpLine(nil, rec)))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", AppendCandumpLine(nil, rec), err)
		}
		if again.Frame != rec.Frame || again.Interface != rec.Interface || again.Time/1000 != rec.Time/1000 {
			t.Fatalf("round trip %+v != %+v", again, rec)
		}
	})
}

func BenchmarkCandumpParse(b *testing.B) {
	line := candumpCases[0].line
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := ParseCandumpLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
