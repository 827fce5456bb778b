package uplink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestMain(m *testing.M) {
	if runDrainChild() {
		return
	}
	code := m.Run()
	if drainTemplateDir != "" {
		os.RemoveAll(drainTemplateDir)
	}
	if code == 0 {
		// paho's and mochi's background goroutines wind down
		// asynchronously after Disconnect/Close.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("github.com/eclipse/paho.mqtt.golang.(*client).Disconnect"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
			goleak.IgnoreTopFunction("time.Sleep"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func openQueue(t testing.TB) *buffer.Queue {
	t.Helper()
	q, err := buffer.Open(filepath.Join(t.TempDir(), "q.db"), buffer.Options{SyncInterval: 10 * time.Millisecond, BlockReadings: 256}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// runPublisher runs a publisher until the test ends.
func runPublisher(t testing.TB, cfg Config, q *buffer.Queue) *Publisher {
	t.Helper()
	p, err := NewPublisher(cfg, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func testReadings(n int, t0 int64) []sensors.Reading {
	rs := make([]sensors.Reading, n)
	sigs := []sensors.Signal{sensors.WheelSpeed, sensors.CoolantTemp, sensors.CargoTemp, sensors.VPLatitude}
	for i := range rs {
		rs[i] = sensors.Reading{Time: t0 + int64(i)*int64(100*time.Millisecond), Value: float64(i%500) / 4, Signal: sigs[i%len(sigs)]}
	}
	return rs
}

// delivered returns, per signal, the seqs of readings the broker received,
// and all alert seqs.
func delivered(b *testBroker) (bySignal map[sensors.Signal][]uint64, alerts []uint64, total int) {
	batches, _, _, _ := b.snapshot()
	bySignal = map[sensors.Signal][]uint64{}
	for _, bt := range batches {
		for _, r := range bt.Readings {
			bySignal[r.Signal] = append(bySignal[r.Signal], r.Seq)
			total++
		}
		for _, a := range bt.Alerts {
			alerts = append(alerts, a.Seq)
		}
	}
	return bySignal, alerts, total
}

func TestPublisherDeliversAndDeletes(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	q := openQueue(t)
	rs := testReadings(5000, 1_700_000_000e9)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	al := []detect.Transition{{Truck: "T-1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 1, Time: 2, Value: 110}}
	if err := q.Append(nil, al, nil); err != nil {
		t.Fatal(err)
	}
	p := runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-1", BatchDelay: 50 * time.Millisecond, MaxBatchReadings: 1000}, q)
	waitFor(t, 10*time.Second, "queue drained", func() bool {
		st := q.Stats()
		return st.Readings == 0 && st.Alerts == 0
	})
	// mochi sends PUBACK before handing the message to subscribers.
	waitFor(t, 5*time.Second, "all readings at the subscriber", func() bool {
		_, _, n := delivered(br)
		return n >= len(rs)
	})
	bySig, alerts, total := delivered(br)
	if total != len(rs) {
		t.Fatalf("broker got %d readings, want %d", total, len(rs))
	}
	if len(alerts) != 1 || alerts[0] != al[0].Seq {
		t.Fatalf("broker got alerts %v, want [%d]", alerts, al[0].Seq)
	}
	for sig, seqs := range bySig {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("signal %s out of order at %d: %d after %d", sig, i, seqs[i], seqs[i-1])
			}
		}
	}
	_, _, status, errs := br.snapshot()
	if len(errs) > 0 {
		t.Fatalf("decode errors: %v", errs)
	}
	if len(status) == 0 || status[0] != StatusOnline {
		t.Errorf("status %v, want online first", status)
	}
	st := p.State()
	if !st.Online || st.BacklogReadings != 0 || st.Records != uint64(len(rs)+1) {
		t.Errorf("state %+v", st)
	}
}
