package gateway

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

// BenchmarkAlertToCabDuringHungDisk measures, with every commit of the
// queue hung (a commit hook that blocks, as an SD card that stopped
// answering), the time from the gateway's detect stage receiving the
// reading that completes an alert condition to the alert event's bytes
// arriving at a cab page connected over loopback HTTP. Each iteration is
// one alert raised and cleared again through the whole gateway detect
// stage (queueing, state saves); the metric times the raise.
func BenchmarkAlertToCabDuringHungDisk(b *testing.B) {
	disk := newHungDisk()
	defer disk.free()
	cfg := DefaultConfig()
	cfg.Truck = "truck-b"
	cfg.DataDir = b.TempDir()
	cfg.CAN = []string{"tcp://127.0.0.1:1"}
	cfg.Cab.Listen = "127.0.0.1:0"
	cfg.Buffer.BeforeCommit = disk.hook
	g, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer g.queue.Close()
	defer disk.free() // before Close, which commits
	srv := httptest.NewServer(g.cab.Handler())
	b.Cleanup(srv.Close)
	seen := watchCab(b, srv.URL)

	at := time.Unix(1_764_000_000, 0)
	observe := func(v float64) []detect.Transition {
		n := len(g.alerts)
		g.observe([]sensors.Reading{{Time: at.UnixNano(), Signal: sensors.CoolantTemp, Value: v}})
		at = at.Add(time.Second)
		return g.alerts[n:]
	}
	for range 60 {
		observe(88)
	}
	if err := g.queue.Sync(); err != nil {
		b.Fatal(err)
	}
	disk.hung.Store(true)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		raised := false
		for range 600 {
			start := time.Now()
			if ts := observe(118); len(ts) > 0 && ts[0].Phase == detect.Raised {
				lat = append(lat, waitCab(b, seen, "raised").Sub(start))
				raised = true
				break
			}
		}
		if !raised {
			b.Fatal("no alert raised after 600 s at 118 °C")
		}
		cleared := false
		for range 600 {
			if ts := observe(88); len(ts) > 0 && ts[len(ts)-1].Phase == detect.Cleared {
				waitCab(b, seen, "cleared")
				cleared = true
				break
			}
		}
		if !cleared {
			b.Fatal("alert did not clear after 600 s back at 88 °C")
		}
	}
	b.StopTimer()
	if st := g.queue.Stats(); st.SyncedSeq >= st.LastSeq {
		b.Fatalf("synced %d of %d: the disk was not hung", st.SyncedSeq, st.LastSeq)
	}
	slices.Sort(lat)
	p99 := lat[int(0.99*float64(len(lat)-1))]
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "alert_to_cab_during_hung_disk_ms:ms")
}

type cabEvent struct {
	phase string
	at    time.Time
}

// watchCab follows a cab page's event stream and reports each alert
// event's phase and when its bytes arrived.
func watchCab(b *testing.B, url string) <-chan cabEvent {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan cabEvent, 256)
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
				if i := bytes.Index(line, []byte(`"phase":"`)); i >= 0 {
					p := line[i+9:]
					if j := bytes.IndexByte(p, '"'); j > 0 {
						out <- cabEvent{phase: string(p[:j]), at: at}
					}
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

func waitCab(b *testing.B, ch <-chan cabEvent, phase string) time.Time {
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
