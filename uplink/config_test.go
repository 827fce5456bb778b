package uplink

import (
	"context"
	"strings"
	"testing"
	"time"
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

func TestLiveTelemetryWaitsForBatchDelayButFullBatchesDoNot(t *testing.T) {
	q := openQueue(t)
	const delay = 300 * time.Millisecond
	p, err := NewPublisher(Config{BrokerURL: "tcp://127.0.0.1:1", Truck: "T", BatchDelay: delay, MaxBatchReadings: 1000}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{published: make(chan struct{}, 1)}
	lost := &lostConn{ch: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.session(ctx, c, lost) }()
	defer func() { cancel(); <-errc }()

	// The session starts catching up with whatever is stored (nothing), so
	// after that live readings wait for more.
	time.Sleep(50 * time.Millisecond)
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
	close(c.snapshot()[0].tok.done)
	// A full batch goes at once.
	if err := q.Append(testReadings(1000, 2e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, delay/2, "the full batch", func() bool { return len(c.snapshot()) == 2 })
	if got := len(c.snapshot()[1].batch.Readings); got != 1000 {
		t.Fatalf("full batch has %d readings", got)
	}
}
