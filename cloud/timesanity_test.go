package cloud

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestFarFutureReadingQuarantined sends one reading dated year 2200 in
// the middle of a truck's coolant stream, then 30 s at 125 °C: the cloud
// must still alert, show 125 °C, and keep the wild reading in quarantine
// (counted, archived by receive time), also after a restart. Before, the
// one reading moved the detector's clock to 2200 and blinded it.
func TestFarFutureReadingQuarantined(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	normal := series(sensors.CoolantTemp, 1, 60, t0, func(i int) float64 { return 88 + float64(i%3)*0.2 })
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "F1", Readings: normal})
	wild := sensors.Reading{Seq: 61, Signal: sensors.CoolantTemp, Value: 90, Time: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "F1", Readings: []sensors.Reading{wild}})
	hot := series(sensors.CoolantTemp, 62, 91, t0.Add(61*time.Second), func(int) float64 { return 125 })
	for i := 0; i < len(hot); i += 10 {
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "F1", Readings: slices.Clone(hot[i : i+10])})
	}
	waitFor(t, "cloud alert on F1", func() bool {
		alerts, err := archive.ReadAlerts(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Source == archive.SourceCloud && a.Truck == "F1" && a.Phase == "raised" && a.Severity == "critical" {
				return true
			}
		}
		return false
	})
	var trucks []console.Truck
	getJSON(t, "http://"+c.HTTPAddr()+"/api/trucks", &trucks)
	if len(trucks) != 1 || trucks[0].Coolant == nil || *trucks[0].Coolant != 125 {
		t.Fatalf("/api/trucks = %+v, want F1 at 125 °C", trucks)
	}
	if n := c.Stats().QuarantinedReadings; n != 1 {
		t.Errorf("quarantined %d readings, want 1", n)
	}
	var q []archive.Quarantined
	waitFor(t, "the quarantined reading archived", func() bool {
		var err error
		q, err = archive.ReadAll[archive.Quarantined](context.Background(), archive.Dir{Root: c.ArchiveDir()}, archive.DatasetQuarantine)
		if err != nil {
			t.Fatal(err)
		}
		return len(q) > 0
	})
	if len(q) != 1 || q[0].Seq != 61 || q[0].TimeNS != wild.Time || q[0].ReceivedNS <= t0.UnixNano() {
		t.Fatalf("quarantine rows %+v, want the 2200 reading with its receive time", q)
	}
	for _, r := range archivedSeqs(t, c.ArchiveDir(), "F1") {
		if r == 61 {
			t.Fatal("the 2200 reading is in readings/ too")
		}
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}

	// After a restart the restored detector is not poisoned either: it
	// clears when the engine is back to normal.
	c = startCloud(t, dir, nil)
	cl = dial(t, c.BrokerAddr(), "sim2")
	cool := series(sensors.CoolantTemp, 92, 151, t0.Add(91*time.Second), func(int) float64 { return 88 })
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "F1", Readings: cool})
	waitFor(t, "cloud clear on F1 after restart", func() bool {
		alerts, err := archive.ReadAlerts(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Source == archive.SourceCloud && a.Truck == "F1" && a.Phase == "cleared" {
				return true
			}
		}
		return false
	})
}

// TestWildTimesBoundObjectsPerBatch sends one small batch whose 3,001
// readings are an hour apart (125 days): before, that made 3,001 Parquet
// objects. Readings outside the accepted times go to one quarantine
// object; the rest span at most MaxPast + MaxFuture, one object per hour.
func TestWildTimesBoundObjectsPerBatch(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	now := time.Now().UTC()
	var rs []sensors.Reading
	for i := range 3001 {
		rs = append(rs, sensors.Reading{Seq: uint64(i + 1), Signal: sensors.WheelSpeed, Value: 50,
			Time: now.Add(time.Duration(i-3000) * time.Hour).UnixNano()})
	}
	p, err := uplink.Encode(uplink.Batch{Truck: "W1", Readings: rs})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("payload %d bytes", len(p))
	publish(t, cl, uplink.Topic("W1", uplink.KindTelemetry), p)
	st := archive.Dir{Root: c.ArchiveDir()}
	var keys []string
	waitFor(t, "3,001 rows archived", func() bool {
		rows, err := archive.ReadReadings(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		q, err := archive.ReadAll[archive.Quarantined](context.Background(), st, archive.DatasetQuarantine)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)+len(q) == 3001
	})
	for _, ds := range archive.Datasets {
		k, err := st.List(context.Background(), ds+"/")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k...)
	}
	cfg := c.Config().Time
	bound := int((cfg.MaxPast+cfg.MaxFuture)/time.Hour) + 2 // hours touched, plus the quarantine object
	if len(keys) > bound {
		t.Fatalf("one batch made %d objects, want at most %d", len(keys), bound)
	}
	var quarantine int
	for _, k := range keys {
		if strings.HasPrefix(k, archive.DatasetQuarantine+"/") {
			quarantine++
		}
	}
	if quarantine != 1 {
		t.Errorf("%d quarantine objects, want 1", quarantine)
	}
	// Readings from now-MaxPast on are accepted: 168 or 169 of them,
	// depending on where the boundary falls against receive time.
	if n, want := c.Stats().QuarantinedReadings, 3001-uint64(cfg.MaxPast/time.Hour)-1; n != want && n != want+1 {
		t.Errorf("quarantined %d, want %d or %d", n, want, want+1)
	}
}

// TestQuarantineBounds checks the accepted window for trusted and
// untrusted gateway clocks.
func TestQuarantineBounds(t *testing.T) {
	cfg := DefaultConfig()
	in := &ingester{cfg: cfg, log: testLogger(t), cnt: &counters{}, thr: newThrottle(time.Second)}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		off   time.Duration
		flags sensors.Flags
		want  bool // accepted
	}{
		{"live", 0, 0, true},
		{"a second ahead", time.Second, 0, true},
		{"an hour ahead", time.Hour, 0, false},
		{"six days of backlog", -6 * 24 * time.Hour, 0, true},
		{"eight days of backlog", -8 * 24 * time.Hour, 0, false},
		{"untrusted clock, live", -time.Minute, sensors.ClockUntrusted, true},
		{"untrusted clock, an hour ago", -time.Hour, sensors.ClockUntrusted, false},
		{"untrusted clock, 1970", -time.Duration(now.UnixNano()), sensors.ClockUntrusted, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := []sensors.Reading{{Seq: 1, Signal: sensors.CoolantTemp, Time: now.Add(tc.off).UnixNano(), Flags: tc.flags}}
			ok, out := in.quarantine("T", rs, now)
			if got := len(ok) == 1 && len(out) == 0; got != tc.want {
				t.Fatalf("accepted %v, want %v (ok %v, quarantined %v)", got, tc.want, ok, out)
			}
		})
	}
}

// TestSameTimeDistinctReadings sends distinct readings that share truck,
// signal and timestamp (lines read at once after a restart, frames after
// a stall): the archive keeps each with its seq and value.
func TestSameTimeDistinctReadings(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond).UnixNano()
	rs := []sensors.Reading{
		{Seq: 10, Signal: sensors.CargoTemp, Time: at, Value: 14.5},
		{Seq: 11, Signal: sensors.CargoTemp, Time: at, Value: 14.5}, // same value too: still a reading of its own
		{Seq: 12, Signal: sensors.CargoTemp, Time: at, Value: 15},
	}
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "S1", Readings: rs})
	waitFor(t, "three rows", func() bool { return len(archivedSeqs(t, c.ArchiveDir(), "S1")) == 3 })
	rows, err := archive.ReadReadings(c.ArchiveDir())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b archive.Reading) int { return int(a.Seq - b.Seq) })
	for i, r := range rows {
		if r.Seq != int64(rs[i].Seq) || r.Value != rs[i].Value || r.TimeNS != at {
			t.Errorf("row %d = %+v, want seq %d value %v", i, r, rs[i].Seq, rs[i].Value)
		}
	}
}
