package cloud

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// TestSIGKILLWithMosquitto is the SIGKILL test for the subscribe path:
// the cloud is a paho client of an external broker with a persistent
// session and acknowledges each message only after its commit, so a
// killed cloud gets every unacknowledged message again after restart.
func TestSIGKILLWithMosquitto(t *testing.T) {
	broker := mosquittotest.Start(t, "max_inflight_messages 100")
	dir := t.TempDir()
	cfg := Config{
		DataDir:       dir,
		BrokerURL:     "tcp://" + broker,
		Ingest:        IngestSubscribe,
		HTTPListen:    s3test.FreeAddr(t),
		FlushInterval: 50 * time.Millisecond,
	}
	proc := startChild(t, cfg)
	const trucks, batches, per = 3, 600, 40
	var acked atomic.Int64
	pubDone := make(chan error, 1)
	go func() { pubDone <- publishStream(broker, trucks, batches, per, &acked) }()
	// Kill while the publisher is a quarter through: the rest of the
	// stream has not reached the cloud yet, and some of what did is in
	// flight, unacknowledged, staged or archived.
	waitFor(t, "a quarter of the stream", func() bool { return acked.Load() >= trucks*batches/4 })
	proc.kill()
	killedAt := acked.Load()
	if killedAt >= trucks*batches {
		t.Fatal("the stream ended before the kill; make it longer")
	}
	before, err := archive.ReadReadings(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the broker queues for the offline session meanwhile
	proc = startChild(t, cfg)
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	t.Logf("killed after %d of %d batches were acknowledged by the broker, %d of %d readings archived", killedAt, trucks*batches, len(before), trucks*batches*per)
	want := seqRange(1, batches*per)
	waitFor(t, "every reading archived", func() bool {
		rows, err := archive.ReadReadings(filepath.Join(dir, "archive"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rows {
			if r.Truck == "K0" {
				n++
			}
		}
		return n >= len(want)
	})
	proc.stop(t)
	rows, err := archive.ReadReadings(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	perTruck := map[string][]int64{}
	for _, r := range rows {
		perTruck[r.Truck] = append(perTruck[r.Truck], r.Seq)
	}
	for i := range trucks {
		truck := fmt.Sprintf("K%d", i)
		seqs := perTruck[truck]
		slices.Sort(seqs)
		if !slices.Equal(seqs, want) {
			t.Errorf("truck %s: %d readings archived, want %d exactly once (first diff at %d)", truck, len(seqs), len(want), firstDiff(seqs, want))
		}
	}
}
