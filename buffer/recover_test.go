package buffer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCorruptFileMovedAsideAndQueueStartsFresh(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600)
		}},
		{"zeroed meta pages", func(t *testing.T, path string) {
			writeSome(t, path)
			b, _ := os.ReadFile(path)
			clear(b[:2*4096])
			os.WriteFile(path, b, 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			tc.spoil(t, path)
			reserved := readReserved(path + ".seq")
			orig, _ := os.ReadFile(path)
			var logs bytes.Buffer
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			q, err := Open(path, Options{Now: func() time.Time { return now }}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			st := q.Stats()
			if st.RecoveredFrom == "" {
				t.Fatal("no RecoveredFrom")
			}
			if aside, _ := os.ReadFile(st.RecoveredFrom); !bytes.Equal(aside, orig) {
				t.Fatal("damaged file not kept aside unchanged")
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "DAMAGED") {
				t.Fatalf("not logged loudly: %s", logs.String())
			}
			rs := mkReadings(3, 0)
			if err := q.Append(rs, nil, nil); err != nil {
				t.Fatal(err)
			}
			if want := max(reserved, uint64(now.UnixMicro())) + 1; rs[0].Seq != want {
				t.Fatalf("fresh queue seq %d, want %d", rs[0].Seq, want)
			}
		})
	}
}

// writeSome creates a queue at path with some records.
func writeSome(t *testing.T, path string) {
	t.Helper()
	q, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(mkReadings(5000, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSeqsAfterDamageStayAboveOldOnesWithoutAClock: a gateway with no
// real-time clock (1970 at boot) whose database is damaged must still not
// reuse sequence numbers the cloud has seen, even if it dies again before
// its first commit.
func TestSeqsAfterDamageStayAboveOldOnesWithoutAClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	epoch := func() time.Time { return time.Unix(5, 0) }
	q, err := Open(path, Options{Now: epoch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := mkReadings(1000, 0)
	if err := q.Append(old, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("damaged"), 0o600)
	q, err = Open(path, Options{Now: epoch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.RecoveredFrom == "" || st.LastSeq <= old[len(old)-1].Seq {
		t.Fatalf("after damage: %+v", st)
	}
	q.Close() // dies before any append
	q, err = Open(path, Options{Now: epoch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rs := mkReadings(1, 0)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq <= old[len(old)-1].Seq {
		t.Fatalf("new seq %d reuses the damaged file's numbers (up to %d)", rs[0].Seq, old[len(old)-1].Seq)
	}
}

func TestOpenDoesNotMoveAsideOnEnvironmentErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "q.db"), Options{}, nil); err == nil {
		t.Fatal("opened in a missing directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left files behind: %v", entries)
	}
}

func TestCompactionReclaimsSpaceAfterDrain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(path, Options{CompactMinBytes: 1 << 20, CompactCheck: 20 * time.Millisecond, BlockReadings: 1024}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 0; i < 20; i++ {
		if err := q.Append(noisyReadings(10000, int64(i)*1e12), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	full := q.Stats().FileBytes
	// Drain all but the newest block, as the uplink would.
	all, chunks := readAll(t, q, Telemetry, 4096)
	// (in one delete, so the periodic check cannot run half-way).
	if err := q.Delete(Telemetry, chunks[0].First, chunks[len(chunks)-2].Last); err != nil {
		t.Fatal(err)
	}
	keep := chunks[len(chunks)-1].Readings
	deadline := time.Now().Add(10 * time.Second)
	for q.Stats().Compactions == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction; stats %+v", q.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := q.Stats()
	t.Logf("file %d bytes full (%d readings), %d after drain and compaction", full, len(all.Readings), st.FileBytes)
	if st.FileBytes*4 > full {
		t.Fatalf("file %d bytes after compaction, was %d", st.FileBytes, full)
	}
	// The queue still works on the new file, and nothing was lost.
	left, _ := readAll(t, q, Telemetry, 1<<20)
	if len(left.Readings) != len(keep) || left.Readings[0] != keep[0] {
		t.Fatalf("after compaction %d readings, want %d", len(left.Readings), len(keep))
	}
	rs := mkReadings(2, 0)
	if err := q.Append(rs, nil, nil); err != nil || q.Sync() != nil {
		t.Fatal("append after compaction failed")
	}
	if rs[0].Seq != all.Readings[len(all.Readings)-1].Seq+1 {
		t.Fatalf("seq after compaction %d", rs[0].Seq)
	}
}
