package cloud

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
)

// startMosquitto starts Debian's mosquitto on a free loopback port and
// returns its host:port. It skips when mosquitto is missing, unless CI is
// set.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto is not installed (required under CI)")
		}
		t.Skip("mosquitto is not installed")
	}
	addr := s3test.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	// Started as root, mosquitto drops to user mosquitto: keep the config
	// readable by it and log to stdout.
	dir, err := os.MkdirTemp("", "tankguard-cloud-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\nlog_dest stdout\nmax_queued_messages 100000\nmax_inflight_messages 100\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGKILLWithMosquitto is the SIGKILL test for the subscribe path:
// the cloud is a paho client of an external broker with a persistent
// session and acknowledges each message only after its commit, so a
// killed cloud gets every unacknowledged message again after restart.
func TestSIGKILLWithMosquitto(t *testing.T) {
	broker := startMosquitto(t)
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
