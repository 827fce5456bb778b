package buffer

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

const crashChildEnv = "TANKGUARD_BUFFER_CRASH_CHILD"

// runCrashChild is the child side of TestCrashKill9: when the environment
// names a database, append to it forever with group commit, printing
// "synced N" after each durable commit and "deleted N" after deleting
// telemetry up to N, compacting the file now and then, until killed.
func runCrashChild() bool {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return false
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...) // unbuffered: one write(2) per line
		mu.Unlock()
	}
	q, err := Open(path, Options{SyncInterval: 2 * time.Millisecond, BlockReadings: 64,
		OnSync: func(seq uint64) { say("synced %d", seq) }}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	say("start %d", q.Stats().LastSeq)
	for i := 0; ; i++ {
		next := q.Stats().LastSeq + 1
		n := 1 + i%50
		rs := make([]sensors.Reading, n)
		for j := range rs {
			s := next + uint64(j)
			rs[j] = crashReading(s)
		}
		var al []detect.Transition
		if i%23 == 0 {
			s := next + uint64(n)
			al = []detect.Transition{{Truck: "T", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: int64(s), Time: int64(s), Value: float64(s)}}
		}
		if err := q.Append(rs, al, nil); err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(2)
		}
		if rs[0].Seq != next {
			fmt.Fprintf(os.Stderr, "child: seq %d, expected %d\n", rs[0].Seq, next)
			os.Exit(3)
		}
		if i%150 == 149 {
			// Killed mid-compaction must be as safe as anywhere else.
			if err := q.Compact(); err != nil {
				fmt.Fprintln(os.Stderr, "child compact:", err)
				os.Exit(2)
			}
			say("compacted")
		}
		if i%40 == 39 {
			c, err := q.Read(Telemetry, 0, 200)
			if err == nil && c.Len() > 0 {
				if err := q.Delete(Telemetry, c.First, c.Last); err == nil {
					say("deleted %d", c.Last)
				}
			}
		}
	}
}

func crashReading(seq uint64) sensors.Reading {
	return sensors.Reading{Time: int64(seq) * 1e6, Value: float64(seq) / 8, Signal: sensors.Signal(1 + seq%4)}
}

// TestCrashKill9 runs the queue in a child process appending with group
// commit, kills it with SIGKILL at random moments, and checks after each
// kill that everything committed before the last reported sync survived
// exactly once with gap-free sequence numbers, that deletions reported
// done stayed done, and that nothing was invented.
func TestCrashKill9(t *testing.T) {
	kills := 24
	if testing.Short() {
		kills = 6
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	path := filepath.Join(t.TempDir(), "crash.db")
	var lastSynced, lastDeleted uint64
	var compactions int
	var alerts = map[uint64]bool{} // alert seqs seen so far, never deleted
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		done := make(chan struct{})
		var synced, deleted uint64
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 1 && f[0] == "compacted" {
					compactions++
				}
				if len(f) != 2 {
					continue
				}
				n, _ := strconv.ParseUint(f[1], 10, 64)
				switch f[0] {
				case "start":
					close(started)
				case "synced":
					synced = max(synced, n)
				case "deleted":
					deleted = max(deleted, n)
				}
			}
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("kill %d: child did not start: %s", k, stderr.String())
		}
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child exited by itself (%v): %s", k, err, stderr.String())
		}
		lastSynced = max(lastSynced, synced)
		lastDeleted = max(lastDeleted, deleted)
		checkAfterCrash(t, k, path, lastSynced, lastDeleted, alerts)
	}
	t.Logf("%d kills, last synced seq %d, telemetry deleted up to %d, %d alerts, %d compactions", kills, lastSynced, lastDeleted, len(alerts), compactions)
}

func checkAfterCrash(t *testing.T, k int, path string, synced, deleted uint64, alerts map[uint64]bool) {
	t.Helper()
	q, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatalf("kill %d: reopen: %v", k, err)
	}
	defer q.Close()
	if st := q.Stats(); st.RecoveredFrom != "" || st.CorruptRecords != 0 {
		t.Fatalf("kill %d: database damaged: %+v", k, st)
	}
	tel, _ := readAll(t, q, Telemetry, 1<<20)
	pri, _ := readAll(t, q, Priority, 1<<20)
	seen := map[uint64]bool{}
	var top uint64
	for _, r := range tel.Readings {
		if seen[r.Seq] {
			t.Fatalf("kill %d: seq %d twice", k, r.Seq)
		}
		seen[r.Seq] = true
		if want := crashReading(r.Seq); r != (sensors.Reading{Seq: r.Seq, Time: want.Time, Value: want.Value, Signal: want.Signal}) {
			t.Fatalf("kill %d: reading %+v was never appended (want %+v)", k, r, want)
		}
		if r.Seq <= deleted {
			t.Fatalf("kill %d: reading %d came back after its deletion was reported", k, r.Seq)
		}
		top = max(top, r.Seq)
	}
	for _, a := range pri.Alerts {
		if seen[a.Seq] {
			t.Fatalf("kill %d: seq %d twice", k, a.Seq)
		}
		seen[a.Seq] = true
		if a.Value != float64(a.Seq) || a.Start != int64(a.Seq) || a.Phase != detect.Raised || math.IsNaN(a.Value) {
			t.Fatalf("kill %d: alert %+v was never appended", k, a)
		}
		top = max(top, a.Seq)
	}
	for s := range alerts {
		if !seen[s] {
			t.Fatalf("kill %d: alert %d, present after an earlier kill, is gone", k, s)
		}
	}
	for _, a := range pri.Alerts {
		alerts[a.Seq] = true
	}
	if top < synced {
		t.Fatalf("kill %d: highest seq on disk %d, but %d was reported synced", k, top, synced)
	}
	if st := q.Stats(); st.LastSeq != top || st.Readings != len(tel.Readings) || st.Alerts != len(pri.Alerts) {
		t.Fatalf("kill %d: stats %+v disagree with contents (top %d, %d readings, %d alerts)", k, st, top, len(tel.Readings), len(pri.Alerts))
	}
	// Gap-free: above the lowest surviving reading every seq is present.
	if len(tel.Readings) > 0 {
		for s := tel.Readings[0].Seq; s <= top; s++ {
			if !seen[s] {
				t.Fatalf("kill %d: seq %d missing between %d and %d", k, s, tel.Readings[0].Seq, top)
			}
		}
	}
}
