package buffer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/internal/disktest"
	"github.com/abc4logistics/tankguard/sensors"
)

// TestDiskFull fills a real filesystem long before the queue's budget: the
// queue keeps accepting alerts (dropping the oldest routine telemetry,
// counted), and once space returns it stores everything again.
func TestDiskFull(t *testing.T) {
	disk := disktest.Small(t, "8m")
	// Leave the queue (and its 1 MiB ballast) about 3 MiB of an 8 MiB disk.
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 5<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := Open(filepath.Join(disk, "q.db"), Options{SyncInterval: 10 * time.Millisecond, BlockReadings: 256, CompactCheck: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	batch := func(k int) []sensors.Reading {
		rs := make([]sensors.Reading, k)
		for i := range rs {
			// Values that do not compress away, so blocks take real space.
			rs[i] = sensors.Reading{Signal: sensors.WheelSpeed, Time: t0.Add(time.Duration(n) * time.Millisecond).UnixNano(),
				Value: float64(n*7919%100003) / 7.3}
			n++
		}
		return rs
	}
	alerts := 0
	for i := 0; q.Stats().DiskFull == 0 || i < 600; i++ {
		if i > 5000 {
			t.Fatalf("the disk never filled: %+v", q.Stats())
		}
		if err := q.Append(batch(2000), nil, nil); err != nil {
			t.Fatalf("append readings %d: %v", i, err)
		}
		if i%20 == 0 {
			// Alerts commit at once: a full disk must not fail them.
			a := detect.Transition{Truck: "T", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
				Phase: detect.Raised, Start: int64(i + 1), Time: int64(i + 1)}
			if err := q.Append(nil, []detect.Transition{a}, nil); err != nil {
				t.Fatalf("append alert %d with a full disk: %v (stats %+v)", i, err, q.Stats())
			}
			alerts++
		}
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("sync with a full disk: %v", err)
	}
	st := q.Stats()
	if st.DiskFull == 0 || st.DroppedReadings == 0 {
		t.Fatalf("full disk not handled by eviction: %+v", st)
	}
	if st.DroppedAlerts != 0 || st.Alerts != alerts {
		t.Fatalf("alerts lost to a full disk: stored %d of %d, dropped %d", st.Alerts, alerts, st.DroppedAlerts)
	}
	if got := uint64(n) - st.DroppedReadings; got != uint64(st.Readings) {
		t.Fatalf("%d appended - %d dropped != %d stored: a reading went uncounted", n, st.DroppedReadings, st.Readings)
	}
	t.Logf("disk full: %d readings appended, %d dropped and counted, %d full-disk events, %d alerts all kept, file %d bytes",
		n, st.DroppedReadings, st.DiskFull, st.Alerts, st.FileBytes)

	// Space returns: the full budget comes back and nothing more is dropped.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a few room checks
	before := q.Stats()
	for range 20 {
		if err := q.Append(batch(2000), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("sync after space returned: %v", err)
	}
	after := q.Stats()
	if after.DroppedReadings != before.DroppedReadings {
		t.Fatalf("still dropping after space returned: %d -> %d", before.DroppedReadings, after.DroppedReadings)
	}
	if after.Readings != before.Readings+40000 {
		t.Fatalf("stored readings %d -> %d, want 40000 more", before.Readings, after.Readings)
	}
}
