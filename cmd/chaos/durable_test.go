package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/cloud"
	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// runCloud runs a cloud subscribed to the broker at addr until the
// returned stop is called.
func runCloud(t *testing.T, dir, addr string) (c *cloud.Cloud, stop func()) {
	t.Helper()
	var logger = slog.New(slog.DiscardHandler)
	if os.Getenv("DURABLE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, err := cloud.New(cloud.Config{DataDir: dir, BrokerURL: "tcp://" + addr, HTTPListen: "127.0.0.1:0",
		FlushInterval: 50 * time.Millisecond}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("cloud ended: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("cloud not ready")
	}
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("cloud: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return c, stop
}

// TestMosquittoNothingAcknowledgedLost puts Mosquitto between a gateway's
// uplink and the cloud. The cloud is down while the gateway sends 100
// batches, then Mosquitto is SIGKILLed and restarted, then the cloud comes
// back. The gateway deletes only what the cloud confirmed durable, so
// every reading reaches the archive exactly once, whatever Mosquitto
// kept: with a queue of 20 messages and no persistence (it acknowledges
// all 100 batches and keeps at most 20, then loses even those), and with
// the configuration shipped in docs/mosquitto.conf. With PUBACK deletion
// (before) all 10,000 readings were lost in the first case.
func TestMosquittoNothingAcknowledgedLost(t *testing.T) {
	shipped, err := os.ReadFile("../../docs/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(shipped), "\n") {
		switch {
		case strings.HasPrefix(l, "persistence_location "):
			l = "persistence_location %DIR%/"
		case strings.HasPrefix(l, "autosave_interval "):
			l = "autosave_interval 1" // so the SIGKILL finds something saved
		}
		lines = append(lines, l)
	}
	for _, tc := range []struct {
		name string
		conf []string
	}{
		{"queue of 20, no persistence", []string{"max_queued_messages 20"}},
		{"docs/mosquitto.conf", lines},
	} {
		t.Run(tc.name, func(t *testing.T) { testNothingLost(t, mosquittotest.Run(t, tc.conf...)) })
	}
}

func testNothingLost(t *testing.T, brk *mosquittotest.Broker) {
	cdir := t.TempDir()
	_, stop := runCloud(t, cdir, brk.Addr()) // makes the cloud's persistent session
	stop()

	q, err := buffer.Open(filepath.Join(t.TempDir(), "q.db"), buffer.Options{SyncInterval: 10 * time.Millisecond, BlockReadings: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ucfg := uplink.DefaultConfig()
	ucfg.BrokerURL, ucfg.Truck = "tcp://"+brk.Addr(), "M1"
	ucfg.MaxBatchReadings, ucfg.BatchDelay = 100, 20*time.Millisecond
	ucfg.Confirm, ucfg.ConfirmTimeout = true, time.Second
	ucfg.PublishTimeout, ucfg.ReconnectMin, ucfg.ReconnectMax = 2*time.Second, 50*time.Millisecond, 200*time.Millisecond
	pub, err := uplink.NewPublisher(ucfg, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(ctx) }()
	defer func() { cancel(); <-pubDone }()

	const n = 10000
	t0 := time.Now().Add(-time.Hour)
	for i := 0; i < n; i += 100 {
		rs := make([]sensors.Reading, 100)
		for j := range rs {
			rs[j] = sensors.Reading{Signal: sensors.WheelSpeed, Time: t0.Add(time.Duration(i+j) * 100 * time.Millisecond).UnixNano(), Value: float64((i + j) % 90)}
		}
		if err := q.Append(rs, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := q.Stats()
	first, last := st.FirstSeq, st.LastSeq

	// The cloud is down: Mosquitto acknowledges, the cloud confirms nothing.
	waitUntil(t, 20*time.Second, "the gateway resending unconfirmed batches", func() bool { return pub.State().ConfirmTimeouts >= 2 })
	if got := q.Stats().Readings; got != n {
		t.Fatalf("the gateway deleted %d readings the cloud never confirmed", n-got)
	}
	if u := pub.State().Unconfirmed; u == 0 || u > ucfg.Window*ucfg.MaxBatchReadings {
		t.Errorf("unconfirmed %d, want 1..%d (the window)", u, ucfg.Window*ucfg.MaxBatchReadings)
	}
	brk.Kill() // no persistence: whatever it queued for the cloud is gone
	brk.Start()

	c, _ := runCloud(t, cdir, brk.Addr())
	waitUntil(t, 60*time.Second, "every reading confirmed and deleted", func() bool { return q.Stats().Readings == 0 })
	want := make([]int64, 0, n)
	for s := first; s <= last; s++ {
		want = append(want, int64(s))
	}
	var got []int64
	waitUntil(t, 20*time.Second, "every reading archived", func() bool {
		rows, err := archive.ReadReadings(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, r := range rows {
			got = append(got, r.Seq)
		}
		slices.Sort(got)
		return len(got) >= n
	})
	if !slices.Equal(got, want) {
		t.Fatalf("archived %d rows for %d readings sent (seqs %d..%d): lost or duplicated", len(got), n, first, last)
	}
	t.Logf("confirm timeouts %d, confirmations %d, cloud duplicates dropped %d", pub.State().ConfirmTimeouts, pub.State().Confirmations, c.Stats().DuplicateReadings)
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
