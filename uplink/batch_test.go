package uplink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func seqd(rs []sensors.Reading, from uint64) []sensors.Reading {
	for i := range rs {
		rs[i].Seq = from + uint64(i)
	}
	return rs
}

var codecCases = []struct {
	name string
	b    Batch
}{
	{"empty", Batch{Truck: "T1"}},
	{"one reading", Batch{Truck: "T1", Readings: seqd([]sensors.Reading{{Time: 1_700_000_000_000_000_000, Value: 87, Signal: sensors.CoolantTemp}}, 1)}},
	{"quantised drive", Batch{Truck: "truck-42", Readings: seqd(driveReadings(0, 30*time.Second), 1000)}},
	{"awkward floats", Batch{Truck: "T_2", Readings: seqd([]sensors.Reading{
		{Time: 5, Value: math.NaN(), Signal: sensors.CargoTemp},
		{Time: 6, Value: math.Copysign(0, -1), Signal: sensors.CargoTemp},
		{Time: 7, Value: math.Inf(1), Signal: sensors.CargoTemp},
		{Time: -8, Value: 1e300, Signal: sensors.VPLatitude, Flags: sensors.ClockUntrusted},
		{Time: math.MaxInt64, Value: 0.1 + 0.2, Signal: sensors.VPLongitude},
		{Time: math.MinInt64, Value: -123.456789, Signal: sensors.GNSSSatellites},
		{Time: 0, Value: 1 << 60, Signal: sensors.GNSSSpeed},
	}, 7)}},
	{"seq gaps", Batch{Truck: "T1", Readings: []sensors.Reading{
		{Seq: 3, Time: 1e9, Value: 1, Signal: sensors.WheelSpeed},
		{Seq: 9, Time: 1.1e9, Value: 2, Signal: sensors.WheelSpeed},
		{Seq: 1 << 62, Time: 1.2e9, Value: 3, Signal: sensors.WheelSpeed},
	}}},
	{"alerts and acks", Batch{Truck: "T1",
		Readings: seqd([]sensors.Reading{{Time: 1e18, Value: 111, Signal: sensors.CoolantTemp}}, 10),
		Alerts: []detect.Transition{
			{Seq: 11, Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 1e18 - 1e10, Time: 1e18, Value: 111, Baseline: math.NaN(), ConfigHash: 0xdeadbeef},
			{Seq: 13, Truck: "T1", Signal: sensors.CargoTemp, Kind: detect.KindDeviation, Severity: detect.SeverityWarning, Phase: detect.Cleared, Start: 4, Time: 5, Value: 20, Baseline: 19.5},
		},
		Acks: []detect.Ack{{Seq: 12, Truck: "T1", Signal: sensors.CoolantTemp, Start: 1e18 - 1e10, Time: 1e18 + 5, By: "driver", Severity: detect.SeverityCritical}},
	}},
	{"alerts with active kinds", Batch{Truck: "T1",
		Alerts: []detect.Transition{
			{Seq: 1, Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityWarning, Phase: detect.Changed, Start: 1, Time: 2, Value: 106, Baseline: 90,
				Active: 1<<detect.KindLimit | 1<<detect.KindStuck},
			{Seq: 2, Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityWarning, Phase: detect.Cleared, Start: 1, Time: 3, Value: 90, Baseline: 90},
		},
	}},
}

// driveReadings simulates one truck's signals from t0 for d, at the rates
// and resolutions the gateway sees them: coolant 1 Hz in whole °C, wheel
// speed 10 Hz in 1/256 km/h, J1939 position 1 Hz in 1e-7 deg, cargo 1 Hz
// in 1/32 °C; timestamps in ms with a few ms of bus jitter.
func driveReadings(t0 time.Duration, d time.Duration) []sensors.Reading {
	var rs []sensors.Reading
	base := int64(1_767_225_600_000) * 1e6 // 2026-01-01 in ns, ms-aligned
	var rnd uint64 = 0x9e3779b97f4a7c15
	jitter := func() int64 { // 0..3 ms, deterministic
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int64(rnd%4) * 1e6
	}
	speed := 0.0
	lat, lon := 52.5200000, 13.4050000
	for ms := int64(t0 / time.Millisecond); ms < int64((t0+d)/time.Millisecond); ms += 100 {
		t := base + ms*1e6
		sec := float64(ms) / 1000
		// Accelerate to ~80 km/h, cruise with gentle variation.
		target := 80 + 5*math.Sin(sec/60)
		speed += (target - speed) * 0.01
		q := math.Round(speed*256) / 256
		rs = append(rs, sensors.Reading{Time: t + jitter(), Value: q, Signal: sensors.WheelSpeed})
		if ms%1000 == 0 {
			coolant := math.Round(85 + 3*math.Sin(sec/300))
			rs = append(rs, sensors.Reading{Time: t + jitter(), Value: coolant, Signal: sensors.CoolantTemp})
			cargo := math.Round((18+0.5*math.Sin(sec/900))*32) / 32
			rs = append(rs, sensors.Reading{Time: t + jitter(), Value: cargo, Signal: sensors.CargoTemp})
			lat += speed / 3600 / 111 * 0.6
			lon += speed / 3600 / 68 * 0.8
			la := math.Round(lat*1e7) / 1e7
			lo := math.Round(lon*1e7) / 1e7
			rs = append(rs, sensors.Reading{Time: t + jitter(), Value: la, Signal: sensors.VPLatitude})
			rs = append(rs, sensors.Reading{Time: t + jitter(), Value: lo, Signal: sensors.VPLongitude})
		}
	}
	return rs
}

func sameBatch(t *testing.T, got, want Batch) {
	t.Helper()
	if got.Truck != want.Truck || len(got.Readings) != len(want.Readings) || len(got.Alerts) != len(want.Alerts) || len(got.Acks) != len(want.Acks) {
		t.Fatalf("got %s %d/%d/%d records, want %s %d/%d/%d", got.Truck, len(got.Readings), len(got.Alerts), len(got.Acks), want.Truck, len(want.Readings), len(want.Alerts), len(want.Acks))
	}
	for i, w := range want.Readings {
		g := got.Readings[i]
		if g.Seq != w.Seq || g.Time != w.Time || g.Signal != w.Signal || g.Flags != w.Flags || math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			t.Fatalf("reading %d: got %+v want %+v", i, g, w)
		}
	}
	for i, w := range want.Alerts {
		g := got.Alerts[i]
		w.Truck = want.Truck
		if math.Float64bits(g.Baseline) != math.Float64bits(w.Baseline) {
			t.Fatalf("alert %d baseline: got %v want %v", i, g.Baseline, w.Baseline)
		}
		g.Baseline, w.Baseline = 0, 0
		if g != w {
			t.Fatalf("alert %d: got %+v want %+v", i, g, w)
		}
	}
	for i, w := range want.Acks {
		w.Truck = want.Truck
		if got.Acks[i] != w {
			t.Fatalf("ack %d: got %+v want %+v", i, got.Acks[i], w)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Encode(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(p, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			sameBatch(t, got, tc.b)
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	good := sensors.Reading{Seq: 5, Time: 1, Value: 1, Signal: sensors.CoolantTemp}
	cases := []struct {
		name string
		b    Batch
		want error
	}{
		{"bad truck", Batch{Truck: "a/b"}, ErrInvalidBatch},
		{"seq zero", Batch{Truck: "T", Readings: []sensors.Reading{{Signal: sensors.CoolantTemp}}}, ErrInvalidBatch},
		{"seq not increasing", Batch{Truck: "T", Readings: []sensors.Reading{good, good}}, ErrInvalidBatch},
		{"unknown signal", Batch{Truck: "T", Readings: []sensors.Reading{{Seq: 1, Signal: 200}}}, ErrInvalidBatch},
		{"alert other truck", Batch{Truck: "T", Alerts: []detect.Transition{{Seq: 1, Truck: "U", Signal: 1, Kind: 1, Phase: 1}}}, ErrInvalidBatch},
		{"alert bad phase", Batch{Truck: "T", Alerts: []detect.Transition{{Seq: 1, Signal: 1, Kind: 1, Phase: 99}}}, ErrInvalidBatch},
		{"ack by too long", Batch{Truck: "T", Acks: []detect.Ack{{Seq: 1, Signal: 1, By: string(make([]byte, 200))}}}, ErrInvalidBatch},
		{"too many records", Batch{Truck: "T", Readings: seqd(make([]sensors.Reading, MaxBatchRecords+1), 1)}, ErrInvalidBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCloudAlertsWithSeqZero(t *testing.T) {
	// The cloud re-encodes its own re-detected alerts, which have Seq 0.
	b := Batch{Truck: "T1", Alerts: []detect.Transition{
		{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 1, Time: 2},
		{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Cleared, Start: 1, Time: 3},
	}}
	p, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(p, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	sameBatch(t, got, b)
}

func TestPublisherSplitsOversizedBatches(t *testing.T) {
	// Random values defeat compression: 20000 readings cannot fit 16 KiB.
	rs := make([]sensors.Reading, 20000)
	var x uint64 = 1
	for i := range rs {
		x = x*6364136223846793005 + 1442695040888963407
		rs[i] = sensors.Reading{Seq: uint64(i + 1), Time: int64(x >> 8), Value: math.Float64frombits(x>>2 | 1<<62), Signal: sensors.CargoTemp}
	}
	p := &Publisher{cfg: Config{MaxPayload: 16 << 10}, log: discardLog()}
	payloads, dropped, err := p.encodeSplit(Batch{Truck: "T", Readings: rs}, nil)
	if err != nil || dropped != 0 {
		t.Fatalf("err %v dropped %d", err, dropped)
	}
	if len(payloads) < 2 {
		t.Fatalf("%d payloads, want a split", len(payloads))
	}
	var next uint64 = 1
	for i, pl := range payloads {
		if len(pl) > 16<<10 {
			t.Fatalf("payload %d is %d bytes", i, len(pl))
		}
		b, err := Decode(pl, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Readings {
			if r.Seq != next {
				t.Fatalf("payload %d: seq %d, want %d", i, r.Seq, next)
			}
			next++
		}
	}
	if next != uint64(len(rs))+1 {
		t.Fatalf("split lost readings: got up to %d", next-1)
	}
}

// rawPayload builds a payload around an uncompressed body.
func rawPayload(version, flags byte, body []byte) []byte {
	p := []byte{magic0, magic1, version, flags}
	p = binary.AppendUvarint(p, uint64(len(body)))
	return append(p, body...)
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(codecCases[5].b)
	if err != nil {
		t.Fatal(err)
	}
	body := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	truck := append(uv(2), "T1"...)
	cases := []struct {
		name    string
		payload []byte
		lim     Limits
		want    error
	}{
		{"empty", nil, Limits{}, ErrFormat},
		{"json", []byte(`{"Truck":"T1"}`), Limits{}, ErrFormat},
		{"future version", rawPayload(2, 0, nil), Limits{}, ErrVersion},
		{"unknown flags", rawPayload(Version, 0x80, nil), Limits{}, ErrFormat},
		{"over payload limit", good, Limits{MaxPayload: 10}, ErrTooLarge},
		{"declared body too big", rawPayload(Version, 0, make([]byte, 100)), Limits{MaxDecompressed: 99}, ErrTooLarge},
		{"body length mismatch", append(rawPayload(Version, 0, body(truck, uv(0), uv(0), uv(0))), 0), Limits{}, ErrFormat},
		{"truncated zstd", good[:len(good)-3], Limits{}, ErrFormat},
		{"too many records", rawPayload(Version, 0, body(truck, uv(10), uv(0), uv(0))), Limits{MaxRecords: 9}, ErrTooLarge},
		{"counts larger than body", rawPayload(Version, 0, body(truck, uv(1000), uv(0), uv(0))), Limits{}, ErrFormat},
		{"bad truck", rawPayload(Version, 0, body(append(uv(3), "a/b"...), uv(0), uv(0), uv(0))), Limits{}, ErrInvalidBatch},
		{"trailing bytes", rawPayload(Version, 0, body(truck, uv(0), uv(0), uv(0), []byte{1, 2, 3, 4, 5})), Limits{}, ErrFormat},
		{"unknown signal", rawPayload(Version, 0, body(truck, uv(1), uv(0), uv(0), []byte{6}, uv(1), []byte{99, 0}, uv(0), []byte{0}, uv(0))), Limits{}, ErrInvalidBatch},
		{"time unit", rawPayload(Version, 0, body(truck, uv(1), uv(0), uv(0), []byte{12}, uv(1), []byte{1, 0}, uv(0), []byte{0}, uv(0))), Limits{}, ErrFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.payload, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field == "" {
				t.Fatalf("error %v is not a *DecodeError naming a field", err)
			}
		})
	}
	// The hand-built bodies above are right apart from the broken part:
	// the same body with a valid signal decodes.
	ok := rawPayload(Version, 0, body(truck, uv(1), uv(0), uv(0), []byte{6}, uv(1), []byte{1, 0}, uv(0), []byte{0}, uv(0)))
	if b, err := Decode(ok, Limits{}); err != nil || len(b.Readings) != 1 || b.Readings[0].Time != 0 {
		t.Fatalf("control body: %+v, %v", b, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range codecCases {
		p, err := Encode(tc.b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add(rawPayload(Version, 0, nil))
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := Decode(payload, DefaultLimits())
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same batch.
		p2, err := Encode(b)
		if err != nil {
			t.Fatalf("decoded batch does not re-encode: %v", err)
		}
		b2, err := Decode(p2, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normNaN(b), normNaN(b2)) {
			t.Fatal("re-encoded batch differs")
		}
	})
}

// normNaN replaces float fields by their bits so DeepEqual sees NaN == NaN.
func normNaN(b Batch) [4]any {
	type r struct {
		S, V uint64
		T    int64
		G    sensors.Signal
		F    sensors.Flags
	}
	rs := make([]r, len(b.Readings))
	for i, x := range b.Readings {
		rs[i] = r{x.Seq, math.Float64bits(x.Value), x.Time, x.Signal, x.Flags}
	}
	as := make([][2]uint64, len(b.Alerts))
	for i, a := range b.Alerts {
		as[i] = [2]uint64{math.Float64bits(a.Value), math.Float64bits(a.Baseline)}
		b.Alerts[i].Value, b.Alerts[i].Baseline = 0, 0
	}
	return [4]any{rs, as, b.Alerts, b.Acks}
}

// TestActiveKindsFlag: alert records carry detect.Transition.Active only
// in batches where an alert has any (flag bit 1); every other batch keeps
// the flags byte decoders before the field knew.
func TestActiveKindsFlag(t *testing.T) {
	for _, tc := range codecCases {
		p, err := Encode(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		want := byte(flagZstd)
		for _, a := range tc.b.Alerts {
			if a.Active != 0 {
				want = flagZstd | flagKinds
			}
		}
		if p[3] != want {
			t.Errorf("%s: flags %#x, want %#x", tc.name, p[3], want)
		}
	}
}
