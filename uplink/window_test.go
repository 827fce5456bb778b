package uplink

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// manualToken is an mqtt.Token the test completes.
type manualToken struct {
	done chan struct{}
	err  error
}

func (t *manualToken) Wait() bool                     { <-t.done; return true }
func (t *manualToken) WaitTimeout(time.Duration) bool { <-t.done; return true }
func (t *manualToken) Done() <-chan struct{}          { return t.done }
func (t *manualToken) Error() error                   { return t.err }

// fakeClient records publishes and leaves their PUBACKs to the test.
type fakeClient struct {
	mqtt.Client // nil: only Publish is used by session
	mu          sync.Mutex
	pubs        []fakePub
	published   chan struct{}
}

type fakePub struct {
	topic string
	batch Batch
	tok   *manualToken
	at    time.Time
}

func (c *fakeClient) Publish(topic string, _ byte, _ bool, payload any) mqtt.Token {
	b, err := Decode(payload.([]byte), DefaultLimits())
	if err != nil {
		panic(err)
	}
	tok := &manualToken{done: make(chan struct{})}
	c.mu.Lock()
	c.pubs = append(c.pubs, fakePub{topic, b, tok, time.Now()})
	c.mu.Unlock()
	select {
	case c.published <- struct{}{}:
	default:
	}
	return tok
}

func (c *fakeClient) snapshot() []fakePub {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fakePub(nil), c.pubs...)
}

func TestWindowAlertsFirstAndDeleteOnlyAfterPuback(t *testing.T) {
	q := openQueue(t)
	if err := q.Append(testReadings(10*1000, 1e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	al := []detect.Transition{{Signal: sensors.CargoTemp, Kind: detect.KindDeviation, Severity: detect.SeverityWarning, Phase: detect.Raised}}
	if err := q.Append(nil, al, nil); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(Config{BrokerURL: "tcp://127.0.0.1:1", Truck: "T", Window: 3, MaxBatchReadings: 1000, PublishTimeout: time.Minute}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{published: make(chan struct{}, 1)}
	lost := &lostConn{ch: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.session(ctx, c, lost) }()
	defer func() { cancel(); <-errc }()

	waitFor(t, 5*time.Second, "first publishes", func() bool { return len(c.snapshot()) == 4 })
	time.Sleep(50 * time.Millisecond) // give it the chance to exceed the window
	pubs := c.snapshot()
	if len(pubs) != 4 {
		t.Fatalf("%d publishes with window 3 plus one alert batch, want 4", len(pubs))
	}
	if pubs[0].topic != Topic("T", KindAlerts) || len(pubs[0].batch.Alerts) != 1 {
		t.Fatalf("first publish went to %s, want the alert first", pubs[0].topic)
	}
	// Nothing is deleted before its PUBACK.
	if st := q.Stats(); st.Readings != 10*1000 || st.Alerts != 1 {
		t.Fatalf("deleted before PUBACK: %+v", st)
	}
	// A new alert is published even though the window is full.
	al2 := []detect.Transition{{Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised}}
	if err := q.Append(nil, al2, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "alert past the full window", func() bool { return len(c.snapshot()) == 5 })
	if last := c.snapshot()[4]; last.topic != Topic("T", KindAlerts) || last.batch.Alerts[0].Seq != al2[0].Seq {
		t.Fatalf("fifth publish %s %+v, want the new alert", last.topic, last.batch)
	}
	// Acknowledge the second telemetry batch first: nothing may be
	// deleted until the older ones are acknowledged too (in order).
	close(pubs[2].tok.done)
	time.Sleep(50 * time.Millisecond)
	if st := q.Stats(); st.Readings != 10*1000 {
		t.Fatalf("deleted out of order: %+v", st)
	}
	close(pubs[0].tok.done)
	close(pubs[1].tok.done)
	waitFor(t, 5*time.Second, "two telemetry batches deleted", func() bool {
		st := q.Stats()
		return st.Readings == 10*1000-len(pubs[1].batch.Readings)-len(pubs[2].batch.Readings) && st.Alerts == 1
	})
	// The window opened by two: two more telemetry batches go out.
	waitFor(t, 5*time.Second, "window refilled", func() bool { return len(c.snapshot()) == 7 })
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	p := &Publisher{cfg: Config{ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}}
	for _, tc := range []struct {
		name     string
		attempt  int
		lo, high time.Duration
	}{
		{"first", 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{"third", 2, 200 * time.Millisecond, 400 * time.Millisecond},
		{"capped", 30, 500 * time.Millisecond, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for i := 0; i < 200; i++ {
				d := p.backoff(tc.attempt)
				if d < tc.lo || d > tc.high {
					t.Fatalf("backoff %v outside [%v, %v]", d, tc.lo, tc.high)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Fatalf("only %d distinct waits: no jitter", len(seen))
			}
		})
	}
}

func TestUnsendableRecordIsDroppedCountedAndDoesNotBlockTheLane(t *testing.T) {
	q, c, p := runSession(t, Config{BatchDelay: time.Millisecond, MaxBatchReadings: 100})
	rs := testReadings(50, 1e18)
	rs[20].Signal = 200 // unknown: the wire format refuses it
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		for _, pub := range c.snapshot() {
			n += len(pub.batch.Readings)
		}
		return n
	}
	// The chunk goes out as several payloads around the bad record.
	waitFor(t, 10*time.Second, "the 49 valid readings", func() bool { return count() >= 49 })
	time.Sleep(20 * time.Millisecond)
	if got := count(); got != 49 {
		t.Fatalf("published %d readings, want the 49 valid ones", got)
	}
	for _, pub := range c.snapshot() {
		close(pub.tok.done)
	}
	waitFor(t, 10*time.Second, "queue drained", func() bool { return q.Stats().Readings == 0 })
	if d := p.State().Dropped; d != 1 {
		t.Fatalf("State().Dropped = %d, want 1", d)
	}
}

func TestMinPublishIntervalSpacesTelemetry(t *testing.T) {
	const gap = 100 * time.Millisecond
	q, c, _ := runSession(t, Config{MaxBatchReadings: 100, MinPublishInterval: gap, Window: 100})
	for i := range 5 { // one block per commit, one batch per block
		if err := q.Append(testReadings(100, 1e18+int64(i)*1e12), nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "five batches", func() bool { return len(c.snapshot()) >= 5 })
	pubs := c.snapshot()
	for i := 1; i < len(pubs); i++ {
		if d := pubs[i].at.Sub(pubs[i-1].at); d < gap-time.Millisecond {
			t.Fatalf("publishes %d and %d only %v apart, want %v", i-1, i, d, gap)
		}
	}
}
