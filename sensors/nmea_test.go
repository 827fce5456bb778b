package sensors

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// sentence wraps body as "$body*hh".
func sentence(body string) string { return "$" + body + "*" + NMEAChecksum(body) }

type nmeaCase struct {
	name string
	line string
	want []Reading // Time 5 implied
	err  error
}

var nmeaCases = []nmeaCase{
	{
		name: "GPRMC valid fix",
		line: sentence("GPRMC,123519.00,A,4807.03800,N,01131.00000,E,022.4,084.4,230394,003.1,W") + "\r\n",
		want: []Reading{
			{Signal: GNSSLatitude, Value: 48 + 7.038/60},
			{Signal: GNSSLongitude, Value: 11 + 31.0/60},
			{Signal: GNSSSpeed, Value: 22.4 * 1.852},
		},
	},
	{
		name: "GNRMC south west with FAA mode",
		line: sentence("GNRMC,000001.50,A,3351.00000,S,15112.00000,W,0.00,,010126,,,A"),
		want: []Reading{
			{Signal: GNSSLatitude, Value: -(33 + 51.0/60)},
			{Signal: GNSSLongitude, Value: -(151 + 12.0/60)},
			{Signal: GNSSSpeed, Value: 0},
		},
	},
	{
		name: "RMC void: no position",
		line: sentence("GPRMC,123519.00,V,,,,,,,230394,,,N"),
	},
	{
		name: "GPGGA fix 1 with 8 satellites",
		line: sentence("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
		want: []Reading{{Signal: GNSSFixQuality, Value: 1}, {Signal: GNSSSatellites, Value: 8}},
	},
	{
		name: "GNGGA no fix",
		line: sentence("GNGGA,123519,,,,,0,00,,,M,,M,,"),
		want: []Reading{{Signal: GNSSFixQuality, Value: 0}, {Signal: GNSSSatellites, Value: 0}},
	},
	{
		name: "GPVTG speed in km/h",
		line: sentence("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"),
		want: []Reading{{Signal: GNSSSpeed, Value: 10.2}},
	},
	{
		name: "bad checksum",
		line: "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00",
		err:  ErrNMEAChecksum,
	},
	{
		name: "missing checksum",
		line: "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
		err:  ErrNMEAChecksum,
	},
	{
		name: "garbage bytes",
		line: "\x00\xff\x13 noise",
		err:  ErrNMEAGarbage,
	},
	{
		name: "truncated sentence",
		line: "$GPGGA,1235",
		err:  ErrNMEAChecksum,
	},
	{
		name: "malformed field with good checksum",
		line: sentence("GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
		err:  ErrNMEAMalformed,
	},
	{
		name: "impossible latitude",
		line: sentence("GPRMC,123519.00,A,9507.03800,N,01131.00000,E,022.4,084.4,230394,003.1,W"),
		err:  ErrNMEAMalformed,
	},
	{
		name: "unsupported GSA",
		line: sentence("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),
		err:  ErrNMEAUnsupported,
	},
	{
		name: "empty line",
		line: "\r\n",
	},
}

func TestNMEAParse(t *testing.T) {
	for _, tc := range nmeaCases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewNMEAParser()
			got, err := p.Parse(tc.line, 5, nil)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i, w := range tc.want {
				w.Time = 5
				if got[i].Signal != w.Signal || got[i].Time != 5 || math.Abs(got[i].Value-w.Value) > 1e-9 {
					t.Errorf("reading %d = %+v, want %+v", i, got[i], w)
				}
			}
			s := p.Stats()
			if s.Lines != 1 {
				t.Errorf("lines = %d", s.Lines)
			}
			classified := s.Used + s.NoFix + s.Ignored + s.Garbage + s.Checksum + s.Malformed + s.TooLong
			if strings.TrimSpace(tc.line) != "" && classified != 1 {
				t.Errorf("line counted %d times: %+v", classified, s)
			}
		})
	}
}

func TestNMEAVTGAfterRMCIgnored(t *testing.T) {
	p := NewNMEAParser()
	out, _ := p.Parse(nmeaCases[0].line, 1, nil)
	out, _ = p.Parse(nmeaCases[5].line, 1, out)
	if len(out) != 3 {
		t.Fatalf("VTG after RMC gave a second speed: %+v", out)
	}
	if p.Stats().Ignored != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
	if f := p.LastFix(); !f.Valid || f.UnixNano != 764426119000000000 {
		t.Fatalf("last fix %+v, want 1994-03-23T12:35:19Z", f)
	}
}

func TestNMEATooLong(t *testing.T) {
	p := NewNMEAParser()
	if _, err := p.Parse("$"+strings.Repeat("A", MaxNMEALine), 1, nil); !errors.Is(err, ErrNMEAGarbage) {
		t.Fatalf("err = %v", err)
	}
	if p.Stats().TooLong != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func FuzzNMEAParse(f *testing.F) {
	for _, tc := range nmeaCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := NewNMEAParser()
		out, err := p.Parse(line, 3, nil)
		if err != nil && len(out) != 0 {
			t.Fatalf("error %v with readings %+v", err, out)
		}
		for _, r := range out {
			if !r.Signal.Valid() || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("bad reading %+v from %q", r, line)
			}
		}
		s := p.Stats()
		if s.Readings != uint64(len(out)) {
			t.Fatalf("readings counted %d, returned %d", s.Readings, len(out))
		}
	})
}

func BenchmarkNMEAParse(b *testing.B) {
	lines := []string{nmeaCases[0].line, nmeaCases[3].line}
	p := NewNMEAParser()
	out := make([]Reading, 0, 8)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l := lines[i%len(lines)]
		out, _ = p.Parse(l, int64(i), out[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "nmea_parse_sentences_per_s:sentences/s")
}
