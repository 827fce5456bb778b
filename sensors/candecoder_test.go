package sensors

import (
	"errors"
	"math"
	"testing"

	"go.einride.tech/can"
)

func mustDecoder(t testing.TB) *CANDecoder {
	t.Helper()
	d, err := NewCANDecoder(DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// frame builds an extended 8-byte frame.
func frame(id uint32, data ...byte) can.Frame {
	f := can.Frame{ID: id, Length: uint8(len(data)), IsExtended: true}
	copy(f.Data[:], data)
	return f
}

type decodeCase struct {
	name  string
	frame can.Frame
	want  []Reading // Time 42 implied
	stats CANDecodeStats
}

// decodeCases are shared by the table test and the fuzz seed corpus.
var decodeCases = []decodeCase{
	{
		name:  "ET1 coolant 90 degC from engine SA 00",
		frame: frame(0x18FEEE00, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: CoolantTemp, Value: 90}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1, NotAvailable: 2},
	},
	{
		name:  "ET1 from another source address and priority 3",
		frame: frame(0x0CFEEE17, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: CoolantTemp, Value: -40}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1, NotAvailable: 2},
	},
	{
		name:  "ET1 coolant max valid 0xFA is 210 degC",
		frame: frame(0x18FEEE00, 0xFA, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: CoolantTemp, Value: 210}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1, NotAvailable: 2},
	},
	{
		name:  "ET1 coolant error indicator 0xFE",
		frame: frame(0x18FEEE00, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, Decoded: 1, ErrorValue: 1, NotAvailable: 2},
	},
	{
		name:  "ET1 coolant not available 0xFF",
		frame: frame(0x18FEEE00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, Decoded: 1, NotAvailable: 3},
	},
	{
		name:  "ET1 coolant reserved 0xFB",
		frame: frame(0x18FEEE00, 0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Reserved: 1, NotAvailable: 2},
	},
	{
		name: "ET1 coolant 90, fuel 45, oil 100.5 degC",
		// oil raw = (100.5 + 273) / 0.03125 = 11952
		frame: frame(0x18FEEE00, 130, 85, le16(11952)[0], le16(11952)[1], 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: CoolantTemp, Value: 90}, {Signal: FuelTemp, Value: 45}, {Signal: OilTemp, Value: 100.5}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 3},
	},
	{
		name: "EEC1 engine speed 1500 rpm, priority 3",
		// raw = 1500 / 0.125 = 12000, bytes 4-5
		frame: frame(0x0CF00400, 0xFF, 0xFF, 0xFF, le16(12000)[0], le16(12000)[1], 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: EngineSpeed, Value: 1500}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1},
	},
	{
		name: "AMB ambient air 25.5 degC",
		// raw = (25.5 + 273) / 0.03125 = 9552, bytes 4-5
		frame: frame(0x18FEF500, 0xFF, 0xFF, 0xFF, le16(9552)[0], le16(9552)[1], 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: AmbientTemp, Value: 25.5}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1},
	},
	{
		name:  "CCVS wheel speed 80.5 km/h little endian 1/256",
		frame: frame(0x18FEF10B, 0xFF, 0x80, 0x50, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: WheelSpeed, Value: 80.5}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1},
	},
	{
		name:  "CCVS wheel speed error indicator 0xFExx",
		frame: frame(0x18FEF100, 0xFF, 0x12, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, Decoded: 1, ErrorValue: 1},
	},
	{
		name: "VP latitude 51.9 longitude 4.4",
		// raw = (v + 210) * 1e7
		frame: frame(0x18FEF31C,
			le32(2619000000)[0], le32(2619000000)[1], le32(2619000000)[2], le32(2619000000)[3],
			le32(2144000000)[0], le32(2144000000)[1], le32(2144000000)[2], le32(2144000000)[3]),
		want: []Reading{
			{Signal: VPLatitude, Value: 51.9},
			{Signal: VPLongitude, Value: 4.4},
		},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 2},
	},
	{
		name:  "VP latitude 0xFA.. is 211 deg: implausible; longitude not available",
		frame: frame(0x18FEF31C, 0xFF, 0xFF, 0xFF, 0xFA, 0xFF, 0xFF, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Implausible: 1, NotAvailable: 1},
	},
	{
		name:  "CTT cargo temp 21.5 degC proprietary PGN 65400",
		frame: frame(0x18FF78A0, le16(9424)[0], le16(9424)[1], 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
		want:  []Reading{{Signal: CargoTemp, Value: 21.5}},
		stats: CANDecodeStats{Frames: 1, Decoded: 1, Readings: 1},
	},
	{
		name:  "wrong DLC",
		frame: frame(0x18FEEE00, 130, 0xFF, 0xFF),
		stats: CANDecodeStats{Frames: 1, WrongDLC: 1},
	},
	{
		name:  "unknown PGN LFE 65266",
		frame: frame(0x18FEF200, 0, 0, 0, 0, 0, 0, 0, 0),
		stats: CANDecodeStats{Frames: 1, UnknownPGN: 1},
	},
	{
		name:  "standard 11-bit id",
		frame: can.Frame{ID: 0x123, Length: 8},
		stats: CANDecodeStats{Frames: 1, NotExtended: 1},
	},
	{
		name:  "remote frame",
		frame: can.Frame{ID: 0x18FEEE00, Length: 8, IsExtended: true, IsRemote: true},
		stats: CANDecodeStats{Frames: 1, Remote: 1},
	},
	{
		name:  "PDU1 PGN with destination address is not ET1",
		frame: frame(0x18EEFF00, 0, 0, 0, 0, 0, 0, 0, 0),
		stats: CANDecodeStats{Frames: 1, UnknownPGN: 1},
	},
}

func le16(v uint16) [2]byte { return [2]byte{byte(v), byte(v >> 8)} }
func le32(v uint32) [4]byte { return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func TestCANDecoderDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			d := mustDecoder(t)
			got := d.Decode(tc.frame, 42, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d readings %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				w.Time = 42
				if got[i] != w {
					t.Errorf("reading %d = %+v, want %+v", i, got[i], w)
				}
			}
			if s := d.Stats(); s != tc.stats {
				t.Errorf("stats = %+v, want %+v", s, tc.stats)
			}
		})
	}
}

func TestCANDecoderEncodeRoundTrip(t *testing.T) {
	d := mustDecoder(t)
	for _, tc := range []struct {
		name  string
		sig   Signal
		v     float64
		want  float64
		delta float64
	}{
		{"coolant rounds to whole degrees", CoolantTemp, 90.6, 91, 0},
		{"coolant saturates at 210", CoolantTemp, 500, 210, 0},
		{"coolant saturates at -40", CoolantTemp, -80, -40, 0},
		{"wheel speed to 1/256", WheelSpeed, 72.3, 72.30078125, 0},
		{"cargo temp to 1/32", CargoTemp, 18.01, 18, 0},
		{"latitude to 1e-7", VPLatitude, 51.9234567, 51.9234567, 1e-7},
		{"longitude west", VPLongitude, -4.123, -4.123, 1e-7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := d.Message(tc.sig)
			if !ok {
				t.Fatalf("no message for %s", tc.sig)
			}
			f, err := d.NewFrame(m.PGN, 0x42)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.EncodeSignal(&f.Data, tc.sig, tc.v); err != nil {
				t.Fatal(err)
			}
			var got *Reading
			for _, r := range d.Decode(f, 1, nil) {
				if r.Signal == tc.sig {
					got = &r
				}
			}
			if got == nil {
				t.Fatalf("no %s decoded from %v", tc.sig, f)
			}
			if math.Abs(got.Value-tc.want) > tc.delta {
				t.Errorf("decoded %v, want %v", got.Value, tc.want)
			}
		})
	}
}

func TestCANDecoderSpecialRaw(t *testing.T) {
	d := mustDecoder(t)
	for _, sig := range []Signal{CoolantTemp, WheelSpeed, VPLatitude, CargoTemp} {
		m, _ := d.Message(sig)
		for _, kind := range []string{"error", "na"} {
			f, _ := d.NewFrame(m.PGN, 0)
			for _, s := range m.Signals {
				_ = d.EncodeSignal(&f.Data, s, 1)
			}
			var raw uint64
			var ok bool
			if kind == "error" {
				raw, ok = d.J1939ErrorRaw(sig)
			} else {
				raw, ok = d.J1939NotAvailableRaw(sig)
			}
			if !ok {
				t.Fatalf("%s: no %s raw", sig, kind)
			}
			if err := d.EncodeRaw(&f.Data, sig, raw); err != nil {
				t.Fatal(err)
			}
			for _, r := range d.Decode(f, 0, nil) {
				if r.Signal == sig {
					t.Errorf("%s %s value decoded as reading %v", sig, kind, r.Value)
				}
			}
		}
	}
	s := d.Stats()
	if s.ErrorValue != 4 || s.NotAvailable != 4 {
		t.Errorf("stats %+v, want 4 error and 4 not-available", s)
	}
}

func TestNewCANDecoderErrors(t *testing.T) {
	for _, tc := range []struct{ name, dbc string }{
		{"syntax error", "BO_ x"},
		{"no mapped signals", "VERSION \"\"\nBO_ 2566843904 ET1: 8 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" G\n"},
		{"unknown signal name", "VERSION \"\"\nBO_ 2566843904 ET1: 8 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" G\n" +
			"BA_DEF_ SG_ \"TankguardSignal\" STRING ;\nBA_ \"TankguardSignal\" SG_ 2566843904 A \"nope\";\n"},
		{"unit mismatch", "VERSION \"\"\nBO_ 2566843904 ET1: 8 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"degF\" G\n" +
			"BA_DEF_ SG_ \"TankguardSignal\" STRING ;\nBA_ \"TankguardSignal\" SG_ 2566843904 A \"coolant_temp\";\n"},
		{"standard id", "VERSION \"\"\nBO_ 100 ET1: 8 E\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" G\n" +
			"BA_DEF_ SG_ \"TankguardSignal\" STRING ;\nBA_ \"TankguardSignal\" SG_ 100 A \"coolant_temp\";\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCANDecoder([]byte(tc.dbc)); !errors.Is(err, ErrDBC) {
				t.Fatalf("err = %v, want ErrDBC", err)
			}
		})
	}
}

func TestCANDecoderNoAllocs(t *testing.T) {
	d := mustDecoder(t)
	out := make([]Reading, 0, 16)
	f := decodeCases[11].frame
	if n := testing.AllocsPerRun(1000, func() { out = d.Decode(f, 1, out[:0]) }); n != 0 {
		t.Fatalf("Decode allocates %v per frame", n)
	}
}

func FuzzCANDecode(f *testing.F) {
	for _, tc := range decodeCases {
		fr := tc.frame
		var flags byte
		if fr.IsExtended {
			flags |= 1
		}
		if fr.IsRemote {
			flags |= 2
		}
		f.Add(fr.ID, fr.Length, fr.Data[:], flags)
	}
	d := mustDecoder(f)
	f.Fuzz(func(t *testing.T, id uint32, length uint8, data []byte, flags byte) {
		fr := can.Frame{ID: id, Length: length, IsExtended: flags&1 != 0, IsRemote: flags&2 != 0}
		copy(fr.Data[:], data)
		before := d.Stats()
		out := d.Decode(fr, 7, nil)
		after := d.Stats()
		if after.Frames != before.Frames+1 {
			t.Fatalf("frame not counted")
		}
		if after.Readings-before.Readings != uint64(len(out)) {
			t.Fatalf("readings counted %d, returned %d", after.Readings-before.Readings, len(out))
		}
		for _, r := range out {
			if !r.Signal.Valid() || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Time != 7 {
				t.Fatalf("bad reading %+v", r)
			}
		}
	})
}

func BenchmarkJ1939Decode(b *testing.B) {
	d := mustDecoder(b)
	frames := []can.Frame{decodeCases[0].frame, decodeCases[9].frame, decodeCases[11].frame, decodeCases[13].frame, decodeCases[15].frame}
	out := make([]Reading, 0, 16)
	b.ReportAllocs()
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out = d.Decode(frames[i%len(frames)], int64(i), out[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "j1939_decode_frames_per_s:frames/s")
}

// TestCANDecoderSignedBigEndian decodes a DBC with a Motorola-order signed
// signal (not used by tankguard.dbc, but DBC files from vehicle makers
// have them).
func TestCANDecoderSignedBigEndian(t *testing.T) {
	const src = `VERSION ""
BO_ 2566879232 CTT: 8 P
 SG_ T : 7|16@0- (0.1,0) [-3276.8|3276.7] "degC" G
BA_DEF_ SG_ "TankguardSignal" STRING ;
BA_ "TankguardSignal" SG_ 2566879232 T "cargo_temp";
`
	d, err := NewCANDecoder([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		b0, b1 byte
		want   float64
	}{
		{"positive", 0x00, 0xD7, 21.5},
		{"negative", 0xFF, 0x38, -20},
		{"most negative", 0x80, 0x00, -3276.8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.Decode(frame(0x18FF7801, tc.b0, tc.b1, 0, 0, 0, 0, 0, 0), 1, nil)
			if len(got) != 1 || math.Abs(got[0].Value-tc.want) > 1e-9 {
				t.Fatalf("got %+v, want %v", got, tc.want)
			}
			// Encoding gives the same bytes back.
			f, _ := d.NewFrame(65400, 1)
			if err := d.EncodeSignal(&f.Data, CargoTemp, tc.want); err != nil {
				t.Fatal(err)
			}
			if f.Data[0] != tc.b0 || f.Data[1] != tc.b1 {
				t.Fatalf("encoded % X, want %02X %02X", f.Data[:2], tc.b0, tc.b1)
			}
		})
	}
}
