package buffer

import (
	"math"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// noisyReadings returns n readings at 10 Hz over 4 signals with values
// that compress poorly, starting at t0.
func noisyReadings(n int, t0 int64) []sensors.Reading {
	rs := make([]sensors.Reading, n)
	x := uint64(t0) | 1
	for i := range rs {
		x = x*6364136223846793005 + 1442695040888963407
		rs[i] = sensors.Reading{Time: t0 + int64(i/4)*int64(100*time.Millisecond), Value: float64(x>>11) / (1 << 20), Signal: sensors.Signal(1 + i%4)}
	}
	return rs
}

func TestEvictionOrderAndCounters(t *testing.T) {
	const budget = 256 << 10
	q := openTest(t, Options{MaxBytes: budget, BlockReadings: 256, SyncInterval: time.Hour})
	alerts := make([]detect.Transition, 20)
	for i := range alerts {
		alerts[i] = detect.Transition{Truck: "T", Signal: sensors.CargoTemp, Kind: detect.KindDeviation, Severity: detect.SeverityWarning, Phase: detect.Raised, Start: int64(i), Time: int64(i)}
	}
	acks := make([]detect.Ack, 20)
	for i := range acks {
		acks[i] = detect.Ack{Truck: "T", Signal: sensors.CargoTemp, Start: int64(i), Time: int64(i), By: "driver"}
	}
	if err := q.Append(nil, alerts, acks); err != nil {
		t.Fatal(err)
	}

	// Fill well past the budget with telemetry, one commit per 1024.
	var appended int
	t0 := int64(1e18)
	for i := 0; i < 300; i++ {
		rs := noisyReadings(1024, t0+int64(i)*int64(26*time.Second))
		if err := q.Append(rs, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		appended += len(rs)
		if st := q.Stats(); st.StoredBytes > budget {
			t.Fatalf("after commit %d: stored %d bytes > budget %d", i, st.StoredBytes, budget)
		}
	}
	st := q.Stats()
	tel, _ := readAll(t, q, Telemetry, 1<<20)
	pri, _ := readAll(t, q, Priority, 1<<20)
	t.Logf("stats %+v", st)
	if st.ThinnedReadings == 0 || st.DroppedReadings <= st.ThinnedReadings {
		t.Errorf("expected thinning and then whole-block drops: thinned %d dropped %d", st.ThinnedReadings, st.DroppedReadings)
	}
	if got := uint64(len(tel.Readings)) + st.DroppedReadings; got != uint64(appended) {
		t.Errorf("stored %d + dropped %d = %d, appended %d: a drop was not counted", len(tel.Readings), st.DroppedReadings, got, appended)
	}
	if st.DroppedAlerts != 0 || st.DroppedAcks != 0 || len(pri.Alerts) != 20 || len(pri.Acks) != 20 {
		t.Errorf("alerts/acks touched while telemetry remained: %d/%d dropped, %d/%d left", st.DroppedAlerts, st.DroppedAcks, len(pri.Alerts), len(pri.Acks))
	}
	// The newest commit is intact; what survives is in order; the older
	// survivors are thinned to one reading per signal per second (per block).
	last := tel.Readings[len(tel.Readings)-1024:]
	for i := 1; i < len(last); i++ {
		if last[i].Seq != last[i-1].Seq+1 {
			t.Fatalf("newest commit not intact at %d", i)
		}
	}
	perSecond := map[[2]int64]int{}
	for i, r := range tel.Readings[:len(tel.Readings)-1024] {
		if i > 0 && r.Seq <= tel.Readings[i-1].Seq {
			t.Fatal("survivors out of order")
		}
		perSecond[[2]int64{int64(r.Signal), r.Time / 1e9}]++
	}
	for k, n := range perSecond {
		// Thinning works per block, so a second split by a block
		// boundary keeps one reading on each side.
		if n > 2 {
			t.Fatalf("signal %d second %d kept %d readings after thinning", k[0], k[1], n)
		}
	}

	// Now alerts alone overflow: readings go first, then acks, then the
	// oldest alerts.
	big := make([]detect.Transition, 8000)
	for i := range big {
		big[i] = detect.Transition{Truck: "T", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Changed, Start: int64(1000 + i), Time: int64(1000 + i), Value: math.Pi}
	}
	for i := 0; i < len(big); i += 500 {
		if err := q.Append(nil, big[i:i+500], nil); err != nil {
			t.Fatal(err)
		}
	}
	st2 := q.Stats()
	pri2, _ := readAll(t, q, Priority, 1<<20)
	t.Logf("stats %+v", st2)
	if st2.Readings != 0 || st2.DroppedAcks != 20 || st2.DroppedAlerts == 0 {
		t.Fatalf("eviction order wrong: readings left %d, acks dropped %d, alerts dropped %d", st2.Readings, st2.DroppedAcks, st2.DroppedAlerts)
	}
	if uint64(len(pri2.Alerts))+st2.DroppedAlerts != 8020 {
		t.Fatalf("alerts stored %d + dropped %d != 8020", len(pri2.Alerts), st2.DroppedAlerts)
	}
	// The oldest alerts went: the newest one is still there.
	if pri2.Alerts[len(pri2.Alerts)-1].Seq != big[len(big)-1].Seq {
		t.Fatal("newest alert evicted")
	}
	if st2.StoredBytes > budget {
		t.Fatalf("stored %d > budget", st2.StoredBytes)
	}
	// The running accounts match a fresh scan of the file.
	path := q.Path()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, err := Open(path, Options{MaxBytes: budget}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if s := q2.Stats(); s.StoredBytes != st2.StoredBytes || s.Readings != st2.Readings || s.Alerts != st2.Alerts || s.Acks != st2.Acks {
		t.Fatalf("running accounts %d bytes %d/%d/%d, scan %d bytes %d/%d/%d", st2.StoredBytes, st2.Readings, st2.Alerts, st2.Acks, s.StoredBytes, s.Readings, s.Alerts, s.Acks)
	}
}

func TestCommitLargerThanBudgetDropsOldestIncomingReadings(t *testing.T) {
	const budget = 64 << 10
	q := openTest(t, Options{MaxBytes: budget, BlockReadings: 256, SyncInterval: time.Hour})
	al := []detect.Transition{{Truck: "T", Signal: sensors.CargoTemp, Kind: detect.KindDeviation, Severity: detect.SeverityWarning, Phase: detect.Raised}}
	if err := q.Append(nil, al, nil); err != nil {
		t.Fatal(err)
	}
	rs := noisyReadings(50_000, 1e18)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	tel, _ := readAll(t, q, Telemetry, 1<<20)
	if st.StoredBytes > budget || st.DroppedAlerts != 0 || st.Alerts != 1 {
		t.Fatalf("stats %+v", st)
	}
	if uint64(len(tel.Readings))+st.DroppedReadings != uint64(len(rs)) || len(tel.Readings) == 0 {
		t.Fatalf("kept %d + dropped %d != %d", len(tel.Readings), st.DroppedReadings, len(rs))
	}
	// What is kept is the newest: the last reading appended survives.
	if last := tel.Readings[len(tel.Readings)-1]; last.Seq != rs[len(rs)-1].Seq {
		t.Fatalf("newest reading %d not kept (last kept %d)", rs[len(rs)-1].Seq, last.Seq)
	}
}
