package sensors

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
)

var probeCases = []struct {
	name string
	line string
	want []Reading // Time 9 implied
	err  error
}{
	{name: "valid whole tank", line: sentence("PTGCT,0,21.53,A") + "\r\n", want: []Reading{{Signal: CargoTemp, Value: 21.53}}},
	{name: "negative compartment 3", line: sentence("PTGCT,3,-5.125,A"), want: []Reading{{Signal: CargoTemp, Value: -5.125}}},
	{name: "sensor fault", line: sentence("PTGCT,0,,V")},
	{name: "bad checksum", line: "$PTGCT,0,21.53,A*00", err: ErrNMEAChecksum},
	{name: "no checksum", line: "$PTGCT,0,21.53,A", err: ErrNMEAChecksum},
	{name: "boot banner", line: "TG probe v1.2 ready", err: ErrNMEAGarbage},
	{name: "temperature not a number", line: sentence("PTGCT,0,hot,A"), err: ErrNMEAMalformed},
	{name: "impossible temperature", line: sentence("PTGCT,0,999.0,A"), err: ErrNMEAMalformed},
	{name: "bad compartment", line: sentence("PTGCT,12,20.0,A"), err: ErrNMEAMalformed},
	{name: "missing field", line: sentence("PTGCT,0,20.0"), err: ErrNMEAMalformed},
	{name: "bad status", line: sentence("PTGCT,0,20.0,X"), err: ErrNMEAMalformed},
	{name: "an NMEA sentence on the probe port", line: nmeaCases[3].line, err: ErrNMEAUnsupported},
}

func TestProbeParse(t *testing.T) {
	for _, tc := range probeCases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProbeParser()
			got, err := p.Parse(tc.line, 9, nil)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i, w := range tc.want {
				w.Time = 9
				if got[i] != w {
					t.Errorf("got %+v, want %+v", got[i], w)
				}
			}
			s := p.Stats()
			if n := s.Used + s.NoFix + s.Ignored + s.Garbage + s.Checksum + s.Malformed + s.TooLong; n != 1 {
				t.Errorf("line counted %d times: %+v", n, s)
			}
		})
	}
}

func FuzzProbeParse(f *testing.F) {
	for _, tc := range probeCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := NewProbeParser()
		out, err := p.Parse(line, 1, nil)
		if err != nil && len(out) != 0 {
			t.Fatalf("error with readings")
		}
		for _, r := range out {
			if r.Signal != CargoTemp || math.IsNaN(r.Value) || r.Value < probeMinTemp || r.Value > probeMaxTemp {
				t.Fatalf("bad reading %+v from %q", r, line)
			}
		}
	})
}

func TestProbeSourceFromPTY(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminals: %v", err)
		}
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	src := &ProbeSource{Port: slave.Name(), ReadTimeout: 50 * time.Millisecond}
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, got.emit) }()
	waitFor(t, "port open", func() bool { return src.SerialStats().Opens == 1 })
	master.Write([]byte("TG probe v1.2 ready\r\n" + probeCases[0].line + probeCases[2].line + "\r\n" + probeCases[1].line + "\r\n"))
	waitFor(t, "2 readings", func() bool { return got.len() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := src.Stats(); s.Used != 2 || s.NoFix != 1 || s.Garbage != 1 {
		t.Errorf("stats %+v", s)
	}
}

func BenchmarkProbeParse(b *testing.B) {
	p := NewProbeParser()
	line := probeCases[0].line
	out := make([]Reading, 0, 4)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		out, _ = p.Parse(line, 1, out[:0])
	}
}
