package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.einride.tech/can/pkg/socketcan"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// cabAlerts returns the alerts the cab page would show now (GET /api/state).
func cabAlerts(t testing.TB, g *Gateway) []struct{ Key, Severity, Phase string } {
	t.Helper()
	rec := httptest.NewRecorder()
	g.cab.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/state", nil))
	var st struct {
		Alerts []struct{ Key, Severity, Phase string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("cab state: %v: %s", err, rec.Body.String())
	}
	return st.Alerts
}

// hungDisk is a buffer commit hook: once hung, every commit blocks until
// release is closed, as on an SD card that stopped answering.
type hungDisk struct {
	hung    atomic.Bool
	release chan struct{}
	once    sync.Once
}

func newHungDisk() *hungDisk { return &hungDisk{release: make(chan struct{})} }

func (h *hungDisk) hook() {
	if h.hung.Load() {
		<-h.release
	}
}

func (h *hungDisk) free() { h.once.Do(func() { close(h.release) }) }

// coolantAt is one coolant reading i seconds after t0.
func coolantAt(t0 int64, i int, v float64) []sensors.Reading {
	return []sensors.Reading{{Signal: sensors.CoolantTemp, Time: t0 + int64(i)*int64(time.Second), Value: v}}
}

// TestHungDiskNeverStallsDetection hangs every commit of the queue, then
// drives the detector into a warning and on into a critical alert: both
// must reach the cab, CAN frames must still be read and /metrics must
// still answer. Today's observe held g.mu while the alert's append waited
// for the fsync, so everything stopped at the first alert.
func TestHungDiskNeverStallsDetection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	disk := newHungDisk()
	cfg := DefaultConfig()
	cfg.Truck = "truck-hung"
	cfg.DataDir = t.TempDir()
	cfg.CAN = []string{"tcp://" + ln.Addr().String()}
	cfg.Cab.Listen = "127.0.0.1:0"
	cfg.AdvanceInterval = 0
	cfg.StateInterval = 0
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	cfg.Buffer.BeforeCommit = disk.hook
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var grp errgroup.Group
	grp.Go(func() error { return g.Run(ctx) })
	defer func() {
		disk.free()
		cancel()
		if err := grp.Wait(); err != nil {
			t.Error(err)
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	t0 := time.Now().Add(-10 * time.Minute).UnixNano()
	for i := range 120 {
		g.observe(coolantAt(t0, i, 90))
	}
	if err := g.queue.Sync(); err != nil {
		t.Fatal(err)
	}
	disk.hung.Store(true)

	// The excursion: a warning first (above 104 °C), then critical (above
	// 110 °C), fed from a goroutine as a sensor source would.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i := 120; i < 200; i++ {
			v := 106.0
			if i >= 150 {
				v = 116
			}
			g.observe(coolantAt(t0, i, v))
		}
	}()

	// CAN frames keep being read while the disk hangs.
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	speed, err := dec.NewFrame(65265, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.EncodeSignal(&speed.Data, sensors.WheelSpeed, 80); err != nil {
		t.Fatal(err)
	}
	tx := socketcan.NewTransmitter(conn)
	m := NewMetrics(g)
	const frames = "tankguard_gateway_can_frames_total{truck=truck-hung}"

	var got map[string]float64
	sent := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		if sent < 20 {
			if err := tx.TransmitFrame(ctx, speed); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		// /metrics must answer: scrape it with a deadline.
		scraped := make(chan map[string]float64, 1)
		go func() { scraped <- gather(t, m) }()
		select {
		case got = <-scraped:
		case <-time.After(5 * time.Second):
			t.Fatal("/metrics did not answer within 5 s while the disk hung")
		}
		alerts := cabAlerts(t, g)
		critical := len(alerts) == 1 && alerts[0].Severity == "critical"
		if critical && got[frames] >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the disk hung: cab shows %+v (want one critical alert), %v of %d CAN frames read; transitions %d",
				alerts, got[frames], sent, len(g.Alerts()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-fed:
	case <-time.After(5 * time.Second):
		t.Fatal("the detect stage is still blocked")
	}
	var sevs []detect.Severity
	for _, a := range g.Alerts() {
		sevs = append(sevs, a.Severity)
	}
	if len(sevs) < 2 || sevs[0] >= detect.SeverityCritical || sevs[len(sevs)-1] != detect.SeverityCritical {
		t.Fatalf("transitions' severities %v: want a lesser one first, critical last", sevs)
	}
	st := g.queue.Stats()
	if st.SyncedSeq >= st.LastSeq {
		t.Fatalf("synced %d of %d: the hook did not hold the commits", st.SyncedSeq, st.LastSeq)
	}

	// Once the disk answers again, everything queued becomes durable.
	disk.free()
	if err := g.queue.Sync(); err != nil {
		t.Fatal(err)
	}
	st = g.queue.Stats()
	if st.SyncedSeq != st.LastSeq || st.Alerts != len(g.Alerts()) {
		t.Fatalf("after the disk came back: synced %d of %d, %d alerts stored of %d", st.SyncedSeq, st.LastSeq, st.Alerts, len(g.Alerts()))
	}
}

// TestPendingBoundOnHungDisk checks that Enqueue keeps memory bounded
// while commits hang: the oldest pending readings are dropped and
// counted, alerts are kept.
func TestPendingBoundOnHungDisk(t *testing.T) {
	disk := newHungDisk()
	defer disk.free()
	opts := buffer.DefaultOptions()
	opts.BlockReadings = 64
	opts.MaxPendingReadings = 256
	opts.BeforeCommit = disk.hook
	q, err := buffer.Open(t.TempDir()+"/q.db", opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	disk.hung.Store(true)
	if err := q.Enqueue([]sensors.Reading{{Signal: sensors.CoolantTemp, Time: 1, Value: 1}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the committer take it and hang
	for i := range 1000 {
		rs := []sensors.Reading{{Signal: sensors.CoolantTemp, Time: int64(i + 2), Value: 1}}
		var al []detect.Transition
		if i%100 == 0 {
			al = []detect.Transition{{Truck: "t", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityWarning, Phase: detect.Raised, Start: 1, Time: int64(i + 2)}}
		}
		if err := q.Enqueue(rs, al, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := q.Stats()
	if st.Pending > 256+10 {
		t.Errorf("pending %d records with a bound of 256 readings", st.Pending)
	}
	if st.PendingDropped < 1000-256 || st.DroppedReadings < st.PendingDropped {
		t.Errorf("pending dropped %d (readings dropped %d), want >= %d", st.PendingDropped, st.DroppedReadings, 1000-256)
	}
	disk.free()
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Alerts != 10 {
		t.Errorf("%d alerts stored, want all 10", st.Alerts)
	}
}

// TestRestartKeepsOpenAlert restarts a gateway in the middle of an
// excursion: the new process shows the open alert on the cab at once,
// and when the engine is back to normal it sends the alert's cleared.
func TestRestartKeepsOpenAlert(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Truck = "truck-07"
	cfg.DataDir = t.TempDir()
	cfg.CAN = []string{"tcp://127.0.0.1:1"}
	cfg.Cab.Listen = "127.0.0.1:0"
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	raised := overheat(t, a)
	last, _ := a.det.Band(sensors.CoolantTemp)
	if err := a.queue.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	b, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var grp errgroup.Group
	grp.Go(func() error { return b.Run(ctx) })
	defer func() {
		cancel()
		if err := grp.Wait(); err != nil {
			t.Error(err)
		}
	}()
	<-b.cab.Ready()
	alerts := cabAlerts(t, b)
	if len(alerts) != 1 || alerts[0].Key != raised.Key() {
		t.Fatalf("cab after restart shows %+v, want the open alert %s; log:\n%s", alerts, raised.Key(), logs.String())
	}

	// The engine cools down: the restored detector clears its alert.
	for i := 1; i <= 120; i++ {
		b.observe([]sensors.Reading{{Signal: sensors.CoolantTemp, Time: last.LastTime + int64(i)*int64(time.Second), Value: 90}})
	}
	var cleared []detect.Transition
	for _, tr := range b.Alerts() {
		if tr.Phase == detect.Cleared && tr.Start == raised.Start {
			cleared = append(cleared, tr)
		}
	}
	if len(cleared) != 1 {
		t.Fatalf("transitions after restart %+v, want one cleared of start %d", b.Alerts(), raised.Start)
	}
	if err := b.queue.Sync(); err != nil {
		t.Fatal(err)
	}
	ch, err := b.queue.Read(buffer.Priority, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var queued bool
	for _, tr := range ch.Alerts {
		queued = queued || (tr.Phase == detect.Cleared && tr.Start == raised.Start)
	}
	if !queued {
		t.Fatalf("the cleared is not in the queue for the cloud: %+v", ch.Alerts)
	}
	if n := len(cabAlerts(t, b)); n != 0 {
		t.Errorf("cab still shows %d alerts after the clear", n)
	}
}

// TestBadDetectorStateRelearns stores states that cannot be restored (a
// damaged one, one of an unknown version): the gateway starts, logs,
// and relearns.
func TestBadDetectorStateRelearns(t *testing.T) {
	good, err := detect.New("truck-07", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	state, err := good.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	future := append([]byte(nil), state...)
	future[len("TGDET")]++ // the version byte
	ahead, _ := detect.New("truck-07", detect.DefaultConfig())
	for i := range 60 {
		ahead.Observe(sensors.Reading{Signal: sensors.CoolantTemp, Time: time.Date(2100, 1, 1, 0, 0, i, 0, time.UTC).UnixNano(), Value: 90})
	}
	aheadState, err := ahead.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"garbage", []byte("not a detector state")},
		{"newer version", future},
		{"truncated", state[:len(state)/2]},
		{"last reading after now (a clock that ran ahead)", aheadState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Truck = "truck-07"
			cfg.DataDir = t.TempDir()
			cfg.CAN = []string{"tcp://127.0.0.1:1"}
			cfg.Cab.Listen = CabOff
			q, err := buffer.Open(cfg.QueuePath(), cfg.Buffer, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.SaveState(stateKey, tc.state); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			g, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("New with a bad state: %v", err)
			}
			defer g.queue.Close()
			if !strings.Contains(logs.String(), "relearning") {
				t.Errorf("no 'relearning' in the log:\n%s", logs.String())
			}
			overheat(t, g) // the fresh detector works
		})
	}
}
