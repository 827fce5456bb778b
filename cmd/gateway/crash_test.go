package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/cloud"
	"github.com/abc4logistics/tankguard/cloud/archive"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// TestCrashLosesNothingSynced runs the real gateway binary as a child
// process against an in-process cloud and simulated truck, kills it with
// SIGKILL at random moments (at least 20 times), and then checks the
// cloud's archive: every reading the gateway appended before its last
// completed sync is present exactly once (sequence numbers 1..N, no gap,
// no duplicate), and every archived value is one the simulator sent, in
// the order it sent them.
func TestCrashLosesNothingSynced(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and kills the gateway binary")
	}
	const kills = 22
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build gateway: %v\n%s", err, out)
	}
	log := slog.New(slog.DiscardHandler)

	ccfg := cloud.DefaultConfig()
	ccfg.DataDir = filepath.Join(dir, "cloud")
	ccfg.BrokerListen, ccfg.BrokerPlainTCP = "127.0.0.1:0", true
	ccfg.HTTPListen = "127.0.0.1:0"
	ccfg.FlushInterval = 300 * time.Millisecond
	c, err := cloud.New(ccfg, log)
	if err != nil {
		t.Fatal(err)
	}
	cloudCtx, cloudStop := context.WithCancel(ctx)
	cloudDone := make(chan struct{})
	go func() { c.Run(cloudCtx); close(cloudDone) }()
	defer func() { cloudStop(); <-cloudDone }()
	<-c.Ready()

	truthPath := filepath.Join(dir, "truth.csv")
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan struct{})
	warm := true
	go func() {
		defer close(simDone)
		firmwaresim.Run(simCtx, firmwaresim.Config{
			Trucks: 1, TruthPath: truthPath, Seed: 3,
			Scenario: firmwaresim.Scenario{Default: firmwaresim.TruckScenario{Warm: &warm}},
			OnReady:  func(m firmwaresim.Manifest) { ready <- m },
		})
	}()
	defer func() { simStop(); <-simDone }()
	truck := (<-ready).Trucks[0]

	dataDir := filepath.Join(dir, "gw")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-truck", truck.ID, "-data", dataDir, "-can", truck.CAN, "-serial", truck.Serial,
			"-broker", "tcp://"+c.BrokerAddr(), "-cab", "off", "-batch-delay", "200ms")
		logf, err := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range kills {
		cmd := start()
		// Random moments: some kills land during start-up, most mid-stream.
		time.Sleep(time.Duration(100+rng.IntN(1900)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("kill %d: gateway exited cleanly before the kill; see %s", i, filepath.Join(dir, "gateway.log"))
		}
	}

	// A last, clean run drains the queue; then the simulator stops.
	cmd := start()
	time.Sleep(3 * time.Second)
	simStop()
	<-simDone
	time.Sleep(2 * time.Second)
	var got []archive.Reading
	last, stableSince := -1, time.Now()
	waitUntil(t, 60*time.Second, "the gateway's queue drains to the archive", func() bool {
		got, err = archive.ReadReadings(c.ArchiveDir())
		if err != nil || len(got) != last {
			last, stableSince = len(got), time.Now()
			return false
		}
		return c.Stats().Readings == uint64(len(got)) && time.Since(stableSince) > 2*time.Second
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway did not stop cleanly: %v", err)
	}

	// What the gateway says it stored: every sequence number up to LastSeq
	// was synced (the counter is persisted with the records).
	q, err := buffer.Open(filepath.Join(dataDir, "queue.db"), buffer.DefaultOptions(), log)
	if err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	q.Close()
	synced := st.LastSeq - st.FirstSeq + 1 // the queue numbers FirstSeq..LastSeq
	if st.Readings != 0 {
		t.Fatalf("%d readings still queued after the drain", st.Readings)
	}
	waitUntil(t, 30*time.Second, "every synced reading archived", func() bool {
		got, err = archive.ReadReadings(c.ArchiveDir())
		alerts, err2 := archive.ReadAlerts(c.ArchiveDir())
		return err == nil && err2 == nil && uint64(len(got)+countEdge(alerts)) >= synced
	})
	alerts, _ := archive.ReadAlerts(c.ArchiveDir())

	// Exactly once: seqs FirstSeq..LastSeq, each once, across readings and
	// alerts.
	seen := make(map[int64]int, len(got))
	for _, r := range got {
		seen[r.Seq]++
	}
	for _, a := range alerts {
		if a.Source == archive.SourceEdge {
			seen[a.Seq]++
		}
	}
	for s := int64(st.FirstSeq); s <= int64(st.LastSeq); s++ {
		if n := seen[s]; n != 1 {
			t.Fatalf("seq %d archived %d times, want exactly once (last synced seq %d)", s, n, st.LastSeq)
		}
	}
	if len(seen) != int(synced) {
		t.Fatalf("archive holds %d seqs, gateway synced %d", len(seen), synced)
	}

	// Nothing the simulator did not send, in its order, per signal.
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := firmwaresim.ReadTruth(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string][]float64{}
	for _, r := range truth {
		sent[r.Signal.String()] = append(sent[r.Signal.String()], r.Value)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Seq < got[j].Seq })
	next := map[string]int{}
	for _, r := range got {
		vals, i := sent[r.Signal], next[r.Signal]
		for i < len(vals) && vals[i] != r.Value {
			i++
		}
		if i == len(vals) {
			t.Fatalf("archived %s=%v (seq %d) is not among what the simulator sent after the previous archived value", r.Signal, r.Value, r.Seq)
		}
		next[r.Signal] = i + 1
	}
	t.Logf("%d kills survived; simulator sent %d values, gateway synced %d records, archive holds %d readings, 0 duplicates",
		kills, len(truth), synced, len(got))
}

func countEdge(alerts []archive.Alert) int {
	n := 0
	for _, a := range alerts {
		if a.Source == archive.SourceEdge {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("timed out after %v waiting until %s", limit, what))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
