package buffer

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestMain(m *testing.M) {
	if runCrashChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

func openTest(t testing.TB, opts Options) *Queue {
	t.Helper()
	q, err := Open(filepath.Join(t.TempDir(), "q.db"), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func mkReadings(n int, t0 int64) []sensors.Reading {
	rs := make([]sensors.Reading, n)
	for i := range rs {
		rs[i] = sensors.Reading{Time: t0 + int64(i)*int64(100*time.Millisecond), Value: float64(i) / 4, Signal: sensors.Signal(1 + i%3)}
	}
	return rs
}

// readAll reads every record of lane in chunks of max.
func readAll(t testing.TB, q *Queue, lane Lane, max int) (all Chunk, chunks []Chunk) {
	t.Helper()
	from := uint64(0)
	for {
		c, err := q.Read(lane, from, max)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() == 0 && c.Skipped == 0 {
			return all, chunks
		}
		chunks = append(chunks, c)
		all.Readings = append(all.Readings, c.Readings...)
		all.Alerts = append(all.Alerts, c.Alerts...)
		all.Acks = append(all.Acks, c.Acks...)
		from = c.Last + 1
	}
}

func TestAppendAssignsSeqAndReadsInOrder(t *testing.T) {
	q := openTest(t, Options{BlockReadings: 16})
	rs := mkReadings(100, 1e18)
	rs[7].Value = math.NaN()
	rs[8].Value = math.Copysign(0, -1)
	rs[9].Flags = sensors.ClockUntrusted
	al := []detect.Transition{{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 5, Time: 6, Value: 110, Baseline: math.NaN(), ConfigHash: 42}}
	ack := []detect.Ack{{Truck: "T1", Signal: sensors.CoolantTemp, Start: 5, Time: 7, By: "driver", Severity: detect.SeverityCritical}}
	if err := q.Append(rs, al, ack); err != nil {
		t.Fatal(err)
	}
	b := q.Stats().FirstSeq - 1 // numbers continue from there
	for i, r := range rs {
		if r.Seq != b+uint64(i+1) {
			t.Fatalf("reading %d got seq %d", i, r.Seq)
		}
	}
	if al[0].Seq != b+101 || ack[0].Seq != b+102 {
		t.Fatalf("alert seq %d ack seq %d, want 101 102", al[0].Seq, ack[0].Seq)
	}
	got, chunks := readAll(t, q, Telemetry, 40)
	if len(got.Readings) != len(rs) {
		t.Fatalf("read %d readings, want %d", len(got.Readings), len(rs))
	}
	for i := range rs {
		a, b := got.Readings[i], rs[i]
		if a.Seq != b.Seq || a.Time != b.Time || math.Float64bits(a.Value) != math.Float64bits(b.Value) || a.Signal != b.Signal || a.Flags != b.Flags {
			t.Fatalf("reading %d: got %+v want %+v", i, a, b)
		}
	}
	if len(chunks) != 3 { // 48, 48, 4 with blocks of 16 and max 40
		t.Errorf("got %d chunks, want 3", len(chunks))
	}
	pri, _ := readAll(t, q, Priority, 10)
	if len(pri.Alerts) != 1 || len(pri.Acks) != 1 {
		t.Fatalf("priority lane: %d alerts %d acks", len(pri.Alerts), len(pri.Acks))
	}
	if a := pri.Alerts[0]; a.Seq != b+101 || a.Truck != "T1" || a.Value != 110 || !math.IsNaN(a.Baseline) || a.ConfigHash != 42 || a.Phase != detect.Raised {
		t.Errorf("alert round trip: %+v", a)
	}
	if a := pri.Acks[0]; a != ack[0] {
		t.Errorf("ack round trip: got %+v want %+v", a, ack[0])
	}
	st := q.Stats()
	if st.Readings != 100 || st.Alerts != 1 || st.Acks != 1 || st.SyncedSeq != b+102 || st.LastSeq != b+102 {
		t.Errorf("stats %+v", st)
	}
}

func TestDeleteOnlyWhatWasConfirmed(t *testing.T) {
	q := openTest(t, Options{BlockReadings: 10})
	if err := q.Append(mkReadings(50, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	c, err := q.Read(Telemetry, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	b := q.Stats().FirstSeq - 1
	if c.First != b+1 || c.Last != b+20 {
		t.Fatalf("chunk %d..%d, want the queue's 1..20", c.First-b, c.Last-b)
	}
	if err := q.Delete(Telemetry, c.First, c.Last); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(Telemetry, c.First, c.Last); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	all, _ := readAll(t, q, Telemetry, 100)
	if len(all.Readings) != 30 || all.Readings[0].Seq != b+21 {
		t.Fatalf("after delete: %d readings starting at %d", len(all.Readings), all.Readings[0].Seq)
	}
	if st := q.Stats(); st.Readings != 30 || st.Oldest.UnixNano() != all.Readings[0].Time {
		t.Errorf("stats after delete: readings %d oldest %v", st.Readings, st.Oldest)
	}
}

func TestSeqSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := mkReadings(10, 0)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	b := q.Stats().FirstSeq - 1
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err = Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	// Delete everything: the sequence must still continue, not restart.
	if err := q.Delete(Telemetry, 0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	rs = mkReadings(1, 0)
	al := []detect.Transition{{Truck: "T"}}
	if err := q.Append(rs, al, nil); err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq != b+11 || al[0].Seq != b+12 || q.Stats().FirstSeq != b+1 {
		t.Fatalf("after restart got seqs %d, %d (first %d); want the queue's 11, 12", rs[0].Seq-b, al[0].Seq-b, q.Stats().FirstSeq-b)
	}
	if err := q.Append(mkReadings(1, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(mkReadings(1, 0), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

func TestGroupCommitIsDurableWithinInterval(t *testing.T) {
	var mu sync.Mutex
	var synced []uint64
	q := openTest(t, Options{SyncInterval: 20 * time.Millisecond, OnSync: func(s uint64) {
		mu.Lock()
		synced = append(synced, s)
		mu.Unlock()
	}})
	if err := q.Append(mkReadings(5, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	ch := q.Changed()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no commit within 5 s")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(synced) == 0 || synced[len(synced)-1] != q.Stats().FirstSeq-1+5 {
		t.Fatalf("OnSync saw %v, want last 5", synced)
	}
}

func TestConcurrentAppendReadDeleteCompact(t *testing.T) {
	q := openTest(t, Options{SyncInterval: 5 * time.Millisecond, BlockReadings: 64})
	const writers, per = 4, 2000
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i += 50 {
				var al []detect.Transition
				if i%500 == 0 {
					al = []detect.Transition{{Truck: "T"}}
				}
				if err := q.Append(mkReadings(50, int64(i)), al, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	seen := map[uint64]bool{}
	var readErr error
	go func() {
		defer close(done)
		var lastSeq uint64
		for len(seen) < writers*per {
			c, err := q.Read(Telemetry, 0, 500)
			if err != nil {
				readErr = err
				return
			}
			if c.Len() == 0 {
				<-q.Changed()
				continue
			}
			for _, r := range c.Readings {
				if seen[r.Seq] || r.Seq <= lastSeq {
					readErr = errors.New("duplicate or out of order")
					return
				}
				seen[r.Seq] = true
				lastSeq = r.Seq
			}
			if err := q.Delete(Telemetry, c.First, c.Last); err != nil {
				readErr = err
				return
			}
		}
	}()
	// Compact now and then while all this goes on.
	stopCompact := make(chan struct{})
	compacted := make(chan int)
	go func() {
		n := 0
		defer func() { compacted <- n }()
		for {
			select {
			case <-stopCompact:
				return
			case <-time.After(3 * time.Millisecond):
			}
			if err := q.Compact(); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	wg.Wait()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("reader stuck")
	}
	close(stopCompact)
	if n := <-compacted; n == 0 {
		t.Error("no compaction ran during the test")
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	if st := q.Stats(); st.Readings != 0 || st.Alerts != writers*per/500 {
		t.Errorf("stats %+v", st)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"zero means defaults", Options{}, ""},
		{"tiny budget", Options{MaxBytes: 1000}, "max_bytes"},
		{"negative interval", Options{SyncInterval: -1}, "sync_interval"},
		{"huge blocks", Options{BlockReadings: 1 << 20}, "block_readings"},
		{"pending below block", Options{BlockReadings: 100, MaxPendingReadings: 10}, "max_pending_readings"},
		{"ratio", Options{CompactRatio: 0.5}, "compact_ratio"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
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
	if d := DefaultOptions().SyncInterval; d <= 0 || d > 100*time.Millisecond {
		t.Fatalf("default sync interval %v, must be at most 100 ms", d)
	}
}

// TestFreshQueueNumbersAboveClock: a queue that never numbered anything
// (a new truck, or one whose data directory was wiped) starts above the
// clock in microseconds, so a wiped truck's new records cannot reuse
// sequence numbers the cloud already has and be dropped as duplicates.
func TestFreshQueueNumbersAboveClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	now := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	q, err := Open(path, Options{Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := mkReadings(1000, 0)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	first := q.Stats()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if want := uint64(now.UnixMicro()) + 1; first.FirstSeq != want || rs[0].Seq != want || first.LastSeq != want+999 {
		t.Fatalf("fresh queue numbered %d..%d (first %d), want from %d", rs[0].Seq, first.LastSeq, first.FirstSeq, want)
	}
	// The data directory is wiped; the gateway starts again a minute later.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	q, err = Open(path, Options{Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rs = mkReadings(1, 0)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq <= first.LastSeq {
		t.Fatalf("after a wipe the queue numbered %d, not above the %d it used before", rs[0].Seq, first.LastSeq)
	}
}

// TestEnqueueWithStateOneCommit checks that records and a state given
// together are committed together, even with a commit already waiting.
func TestEnqueueWithStateOneCommit(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Bool
	opts := Options{SyncInterval: time.Hour, BeforeCommit: func() {
		if hung.Load() {
			<-release
		}
	}}
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := []detect.Transition{{Truck: "T", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityWarning, Phase: detect.Raised, Start: 1, Time: 1}}
	if err := q.EnqueueWithState(nil, a, nil, "det", []byte("after the raise")); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if st, err := q.LoadState("det"); err != nil || string(st) != "after the raise" || q.Stats().Alerts != 1 {
		t.Fatalf("state %q (%v), %d alerts; want both committed", st, err, q.Stats().Alerts)
	}
	// With commits hung, nothing of a later call is half stored.
	hung.Store(true)
	a[0].Phase = detect.Cleared
	if err := q.EnqueueWithState(nil, a, nil, "det", []byte("after the clear")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if st, _ := q.LoadState("det"); string(st) != "after the raise" || q.Stats().Alerts != 1 {
		t.Fatalf("while the commit hangs: state %q, %d alerts", st, q.Stats().Alerts)
	}
	close(release)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err = Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st, _ := q.LoadState("det"); string(st) != "after the clear" || q.Stats().Alerts != 2 {
		t.Fatalf("after the commit: state %q, %d alerts", st, q.Stats().Alerts)
	}
}
