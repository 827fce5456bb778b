package cab

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// alertSeen is one "alert" event as a page received it.
type alertSeen struct {
	phase string
	at    time.Time
}

// watchAlerts connects to /api/events over a real loopback connection and
// reports each alert event's phase and the moment its bytes arrived.
func watchAlerts(b *testing.B, url string) <-chan alertSeen {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan alertSeen, 256)
	ready := make(chan struct{})
	go func() {
		defer res.Body.Close()
		defer close(out)
		r := bufio.NewReaderSize(res.Body, 64<<10)
		isAlert := false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case bytes.HasPrefix(line, []byte("event: state")):
				close(ready)
			case bytes.HasPrefix(line, []byte("event: alert")):
				isAlert = true
			case isAlert && bytes.HasPrefix(line, []byte("data: ")):
				at := time.Now()
				isAlert = false
				i := bytes.Index(line, []byte(`"phase":"`))
				if i < 0 {
					continue
				}
				p := line[i+9:]
				if j := bytes.IndexByte(p, '"'); j > 0 {
					out <- alertSeen{phase: string(p[:j]), at: at}
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		b.Fatal("no state event")
	}
	return out
}

// waitPhase returns when the page saw an alert event of phase.
func waitPhase(b *testing.B, ch <-chan alertSeen, phase string) time.Time {
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				b.Fatal("event stream ended")
			}
			if ev.phase == phase {
				return ev.at
			}
		case <-time.After(5 * time.Second):
			b.Fatalf("no %s alert event within 5 s", phase)
		}
	}
}

// BenchmarkAlertLatency measures the cab's critical path: from the
// detector's Observe call on the reading that completes an alert condition
// to the alert event's bytes arriving at a page connected over loopback
// HTTP. Each iteration is one alert raised and cleared again (ns/op is the
// whole cycle, including some 20 Observe calls); the latency metrics time
// only the raise.
func BenchmarkAlertLatency(b *testing.B) {
	s, err := New(Config{}, "T1", nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(srv.Close) // after the event stream is cancelled (cleanups run last-in first-out)
	seen := watchAlerts(b, srv.URL)

	det, err := detect.New("T1", detect.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	at := time.Unix(1_764_000_000, 0)
	observe := func(v float64) (detect.Transition, bool, time.Time) {
		r := sensors.Reading{Time: at.UnixNano(), Signal: sensors.CoolantTemp, Value: v}
		at = at.Add(time.Second)
		start := time.Now()
		tr, ok := det.Observe(r)
		if ok {
			s.Transition(tr)
		}
		return tr, ok, start
	}
	for range 60 { // learn the normal
		observe(88)
	}

	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		raisedOK := false
		for range 600 {
			tr, ok, start := observe(118)
			if ok && tr.Phase == detect.Raised {
				lat = append(lat, waitPhase(b, seen, "raised").Sub(start))
				raisedOK = true
				break
			}
		}
		if !raisedOK {
			b.Fatal("no alert raised after 600 s at 118 °C")
		}
		clearedOK := false
		for range 600 {
			if tr, ok, _ := observe(88); ok && tr.Phase == detect.Cleared {
				waitPhase(b, seen, "cleared")
				clearedOK = true
				break
			}
		}
		if !clearedOK {
			b.Fatal("alert did not clear after 600 s back at 88 °C")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Microsecond) }
	b.ReportMetric(q(0.50), "p50_us")
	b.ReportMetric(q(0.99), "cab_alert_latency_p99_us:us")
}

// BenchmarkReadings is the per-batch cost of feeding readings to the cab:
// it must not allocate.
func BenchmarkReadings(b *testing.B) {
	s, err := New(Config{}, "T1", nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]sensors.Reading, 64)
	for i := range batch {
		batch[i] = sensors.Reading{Signal: sensors.Signal(1 + i%(sensors.NumSignals-1)), Value: float64(i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Readings(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/reading")
}
