package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{BrokerURL: "tcp://127.0.0.1:1883", Truck: "T-1"}
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error naming the field; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"tls url", func(c *Config) { c.BrokerURL = "ssl://iot.example.com:8883" }, ""},
		{"no broker", func(c *Config) { c.BrokerURL = "" }, "broker_url"},
		{"bad scheme", func(c *Config) { c.BrokerURL = "http://x:1" }, "scheme"},
		{"no host", func(c *Config) { c.BrokerURL = "tcp://" }, "no host"},
		{"bad truck", func(c *Config) { c.Truck = "a b" }, "truck"},
		{"payload above AWS limit", func(c *Config) { c.MaxPayload = MaxPayloadSize + 1 }, "max_payload"},
		{"window", func(c *Config) { c.Window = -1 }, "window"},
		{"batch readings", func(c *Config) { c.MaxBatchReadings = MaxBatchRecords + 1 }, "max_batch_readings"},
		{"backoff order", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }, "reconnect_min"},
		{"negative timeout", func(c *Config) { c.PublishTimeout = -time.Second }, "timeouts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// runSession runs one publisher session over a fake client until the test
// ends.
func runSession(t *testing.T, cfg Config) (*buffer.Queue, *fakeClient, *Publisher) {
	t.Helper()
	q := openQueue(t)
	cfg.BrokerURL, cfg.Truck = "tcp://127.0.0.1:1", "T"
	p, err := NewPublisher(cfg, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{published: make(chan struct{}, 1)}
	lost := &lostConn{ch: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.session(ctx, c, lost) }()
	t.Cleanup(func() { cancel(); <-errc })
	// The session starts by catching up with what is stored (nothing);
	// after that, readings are live.
	time.Sleep(50 * time.Millisecond)
	return q, c, p
}

func TestLiveTelemetryWaitsForBatchDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	q, c, _ := runSession(t, Config{BatchDelay: delay, MaxBatchReadings: 1000})
	start := time.Now()
	if err := q.Append(testReadings(10, 1e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay / 3)
	if n := len(c.snapshot()); n != 0 {
		t.Fatalf("%d publishes after %v: a partial live batch did not wait", n, time.Since(start))
	}
	waitFor(t, 10*time.Second, "the partial batch", func() bool { return len(c.snapshot()) == 1 })
	if el := time.Since(start); el < delay {
		t.Fatalf("partial batch sent after %v, before BatchDelay %v", el, delay)
	}
}

func TestFullTelemetryBatchDoesNotWait(t *testing.T) {
	q, c, _ := runSession(t, Config{BatchDelay: time.Hour, MaxBatchReadings: 1000})
	if err := q.Append(testReadings(10, 1e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(testReadings(1000, 2e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	// With an hour's BatchDelay, only a full batch can go out.
	waitFor(t, 10*time.Second, "the full batch", func() bool { return len(c.snapshot()) == 1 })
	if got := len(c.snapshot()[0].batch.Readings); got < 1000 {
		t.Fatalf("batch has %d readings, want a full one", got)
	}
}
