package archive

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPartition(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"midnight", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), "readings/dt=2026-11-26/hour=00"},
		{"last ns of hour", time.Date(2026, 11, 26, 13, 59, 59, 999999999, time.UTC), "readings/dt=2026-11-26/hour=13"},
		{"non-UTC input", time.Date(2026, 11, 26, 1, 30, 0, 0, time.FixedZone("x", 3*3600)), "readings/dt=2026-11-25/hour=22"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Partition(DatasetReadings, tc.at.UnixNano()); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteReadLocal(t *testing.T) {
	dir := t.TempDir()
	st := Dir{Root: dir}
	day := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC).UnixNano()
	next := time.Date(2026, 11, 26, 0, 10, 0, 0, time.UTC).UnixNano()
	b := Batch{
		Readings: []Reading{
			{Truck: "B", Signal: "coolant_temp", Seq: 2, TimeNS: next, Value: 91.5},
			{Truck: "A", Signal: "coolant_temp", Seq: 1, TimeNS: day, Value: 90},
			{Truck: "A", Signal: "cargo_temp", Seq: 3, TimeNS: next, Value: 12.25, Flags: 1},
		},
		Alerts: []Alert{{Source: SourceCloud, Truck: "A", Signal: "coolant_temp", Kind: "limit", Severity: "critical", Phase: "raised", TimeNS: day, Baseline: math.NaN()}},
		Acks:   []Ack{{Truck: "A", Signal: "coolant_temp", Seq: 7, TimeNS: next, By: "driver", Severity: "critical"}},
	}
	want := slices.Clone(b.Readings)
	s, err := Write(context.Background(), st, Stem("0123456789abcdef", 1, 9), &b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Objects != 4 || s.Rows != 5 {
		t.Fatalf("stats %+v, want 4 objects (2 reading hours, 1 alert, 1 ack) and 5 rows", s)
	}
	keys, _ := st.List(context.Background(), "")
	wantKeys := []string{
		"acks/dt=2026-11-26/hour=00/part-0123456789abcdef-00000000000000000001-00000000000000000009.parquet",
		"alerts/dt=2026-11-25/hour=23/part-0123456789abcdef-00000000000000000001-00000000000000000009.parquet",
		"readings/dt=2026-11-25/hour=23/part-0123456789abcdef-00000000000000000001-00000000000000000009.parquet",
		"readings/dt=2026-11-26/hour=00/part-0123456789abcdef-00000000000000000001-00000000000000000009.parquet",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys %q\nwant %q", keys, wantKeys)
	}
	// Writing the same range again overwrites: still one copy of each row.
	b2 := Batch{Readings: slices.Clone(want)}
	if _, err := Write(context.Background(), st, Stem("0123456789abcdef", 1, 9), &b2); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReadings(dir)
	if err != nil {
		t.Fatal(err)
	}
	sortRows := func(r []Reading) {
		slices.SortFunc(r, func(x, y Reading) int { return int(x.Seq - y.Seq) })
	}
	sortRows(got)
	sortRows(want)
	if !slices.Equal(got, want) {
		t.Fatalf("read back %+v\nwant %+v", got, want)
	}
	alerts, err := ReadAlerts(dir)
	if err != nil || len(alerts) != 1 || !math.IsNaN(alerts[0].Baseline) || alerts[0].Severity != "critical" {
		t.Fatalf("alerts %+v, %v", alerts, err)
	}
	acks, err := ReadAcks(dir)
	if err != nil || len(acks) != 1 || acks[0].By != "driver" {
		t.Fatalf("acks %+v, %v", acks, err)
	}
}

func TestValueEncodingExact(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64
		wantDiv float64
	}{
		{"integers", []float64{85, 86, 90, -3}, 1},
		{"j1939 1/256", []float64{80.00390625, 79.5, 0}, 256},
		{"cargo 0.03125", []float64{12.03125, 12.0625}, 32},
		{"tenths", []float64{0.1, 0.3, 12.7}, 10},
		{"1e-7 degrees", []float64{47.1234567, 8.7654321}, 1e7},
		{"multiplied by 1e-7", times(1e-7, 471234564, 471234565, 471234570), -1e7},
		{"no exact form", []float64{math.Pi, math.E}, 0},
		{"nan and inf", []float64{math.NaN(), math.Inf(1)}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rs []Reading
			for i, v := range tc.values {
				rs = append(rs, Reading{Truck: "T", Signal: "s", Seq: int64(i + 1), Value: v})
			}
			recs := toRecords(nil, rs)
			if recs[0].ValueDiv != tc.wantDiv {
				t.Errorf("divisor %v, want %v", recs[0].ValueDiv, tc.wantDiv)
			}
			for i, rec := range recs {
				got := rec.reading().Value
				if math.Float64bits(got) != math.Float64bits(tc.values[i]) && !(math.IsNaN(got) && math.IsNaN(tc.values[i])) {
					t.Errorf("value %v came back as %v", tc.values[i], got)
				}
			}
		})
	}
}

// FuzzValueEncoding checks that every float64 survives the archive's
// value encoding bit for bit.
func FuzzValueEncoding(f *testing.F) {
	for _, v := range []float64{0, 85, 80.00390625, 0.1, 47.1234567, 47 + 7.1234/60, math.Pi, -1e300} {
		f.Add(v, v+1)
	}
	f.Fuzz(func(t *testing.T, a, b float64) {
		recs := toRecords(nil, []Reading{{Value: a}, {Value: b}})
		for i, want := range []float64{a, b} {
			got := recs[i].reading().Value
			if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Fatalf("%v came back as %v", want, got)
			}
		}
	})
}

func TestReadMissingDir(t *testing.T) {
	rows, err := ReadReadings(t.TempDir() + "/nope")
	if err != nil || len(rows) != 0 {
		t.Fatalf("got %v, %v", rows, err)
	}
}

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		in, bucket, prefix string
		ok                 bool
	}{
		{"s3://fleet/p/q/", "fleet", "p/q", true},
		{"s3://fleet-archive.eu-1", "fleet-archive.eu-1", "", true},
		{"s3:///p", "", "", false},
		{"/tmp/x", "", "", false},
		{"s3://b/p", "", "", false},             // too short
		{"s3://Fleet_Archive/p", "", "", false}, // upper case, underscore
		{"s3://fleet..archive", "", "", false},  // ".."
		{"s3://-fleet", "", "", false},          // starts with '-'
		{"s3://192.168.1.10/p", "", "", false},  // an IP address
		{"s3://xn--fleet", "", "", false},       // reserved prefix
		{"s3://" + strings.Repeat("a", 64), "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			b, p, err := ParseS3URL(tc.in)
			if (err == nil) != tc.ok || b != tc.bucket || p != tc.prefix {
				t.Fatalf("got %q %q %v", b, p, err)
			}
		})
	}
}

// BenchmarkEncodeReadings measures Parquet encoding of a realistic batch:
// 100 trucks x 4 signals x 250 readings at 1 Hz.
func BenchmarkEncodeReadings(b *testing.B) {
	rows := syntheticReadings(100, 250)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		body, err := Encode(toRecords(make([]readingRecord, 0, len(rows)), rows))
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	// Smooth synthetic data: not the headline figure (BenchmarkIngest in
	// cloud reports archive_bytes_per_reading on simulated fleet data).
	b.ReportMetric(float64(size)/float64(len(rows)), "bytes/row")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

func syntheticReadings(trucks, n int) []Reading {
	signals := []string{"coolant_temp", "cargo_temp", "wheel_speed", "gnss_latitude"}
	t0 := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC).UnixNano()
	var rows []Reading
	for tr := range trucks {
		seq := int64(1)
		for i := range n {
			for si, s := range signals {
				v := 85 + float64(si)*10 + math.Round(math.Sin(float64(i)/30)*40)/10
				rows = append(rows, Reading{Truck: "truck-" + string(rune('A'+tr%26)) + string(rune('a'+tr/26)), Signal: s, Seq: seq, TimeNS: t0 + int64(i)*1e9, Value: v})
				seq++
			}
		}
	}
	sortReadings(rows)
	return rows
}

func sortReadings(r []Reading) {
	slices.SortFunc(r, func(x, y Reading) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.Signal, y.Signal), cmp.Compare(x.Seq, y.Seq))
	})
}

// times returns each q multiplied by mul at run time (as a DBC decoder
// does; a constant expression would be rounded once, exactly).
func times(mul float64, qs ...int64) []float64 {
	var out []float64
	for _, q := range qs {
		out = append(out, float64(q)*mul)
	}
	return out
}
