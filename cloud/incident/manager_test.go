package incident

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

var t0 = time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)

func openDB(t *testing.T) (*bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inc.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func tr(phase detect.Phase, sev detect.Severity, startS, atS int) detect.Transition {
	kind := detect.KindDeviation
	if sev == detect.SeverityCritical {
		kind = detect.KindLimit
	}
	return detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: kind, Severity: sev, Phase: phase,
		Start: t0.Add(time.Duration(startS) * time.Second).UnixNano(), Time: t0.Add(time.Duration(atS) * time.Second).UnixNano(), Value: 110}
}

type step struct {
	source string
	ts     []detect.Transition
	acks   []detect.Ack
}

func TestMerge(t *testing.T) {
	W, C := detect.SeverityWarning, detect.SeverityCritical
	tests := []struct {
		name          string
		steps         []step
		wantIncidents int
		wantState     string // of the newest
		wantSources   int
		wantEvents    []string // notification events of the newest, in order
	}{
		{"edge then cloud same excursion", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
			{"cloud", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
		}, 1, StateOpen, 2, []string{EventOpened}},
		{"cloud start differs within window", []step{
			{"cloud", []detect.Transition{tr(detect.Raised, C, 3, 13)}, nil},
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
		}, 1, StateOpen, 2, []string{EventOpened}},
		{"both clear resolves once", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10), tr(detect.Cleared, C, 0, 40)}, nil},
			{"cloud", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
			{"cloud", []detect.Transition{tr(detect.Cleared, C, 0, 40)}, nil},
		}, 1, StateResolved, 2, []string{EventOpened, EventResolved}},
		{"late cloud joins resolved incident quietly", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10), tr(detect.Cleared, C, 0, 40)}, nil},
			{"cloud", []detect.Transition{tr(detect.Raised, C, 0, 10), tr(detect.Cleared, C, 0, 40)}, nil},
		}, 1, StateResolved, 2, []string{EventOpened, EventResolved}},
		{"severity rise notifies", []step{
			{"edge", []detect.Transition{tr(detect.Raised, W, 0, 10), tr(detect.Changed, C, 0, 20)}, nil},
		}, 1, StateOpen, 1, []string{EventOpened, EventChanged}},
		{"driver ack", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, []detect.Ack{{Truck: "T1", Signal: sensors.CoolantTemp, Start: t0.UnixNano(), Time: t0.Add(15 * time.Second).UnixNano(), By: "driver", Severity: C}}},
		}, 1, StateAcknowledged, 1, []string{EventOpened, EventAcknowledged}},
		{"second excursion is a new incident", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10), tr(detect.Cleared, C, 0, 40)}, nil},
			{"edge", []detect.Transition{tr(detect.Raised, C, 600, 610)}, nil},
		}, 2, StateOpen, 1, []string{EventOpened}},
		{"repeated raise ignored", []step{
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
			{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
		}, 1, StateOpen, 1, []string{EventOpened}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openDB(t)
			m, err := Open(db, Config{MergeWindow: time.Minute}, t0, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				err := db.Update(func(tx *bolt.Tx) error {
					return m.Observe(tx, t0.Add(time.Duration(i)*time.Second), s.source, s.ts, s.acks, []string{"T1"})
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			list := m.List()
			if len(list) != tc.wantIncidents {
				t.Fatalf("%d incidents, want %d: %+v", len(list), tc.wantIncidents, list)
			}
			inc := list[0]
			if inc.State != tc.wantState || len(inc.Sources) != tc.wantSources {
				t.Fatalf("state %s sources %v; want %s and %d", inc.State, inc.SourceNames(), tc.wantState, tc.wantSources)
			}
			out, _ := m.Outbox()
			var events []string
			for _, p := range out {
				if p.Incident.ID == inc.ID {
					events = append(events, p.Event)
				}
			}
			if len(events) != len(tc.wantEvents) {
				t.Fatalf("notifications %v, want %v", events, tc.wantEvents)
			}
			for i := range events {
				if events[i] != tc.wantEvents[i] {
					t.Fatalf("notifications %v, want %v", events, tc.wantEvents)
				}
			}
		})
	}
}

func TestTimersAndRestart(t *testing.T) {
	db, _ := openDB(t)
	cfg := Config{MergeWindow: time.Minute, RepeatInterval: 10 * time.Minute, EscalateAfter: 5 * time.Minute, OfflineSilence: time.Minute, OfflineGrace: 2 * time.Minute}
	m, err := Open(db, cfg, t0, []string{"T1", "T2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0, "edge", []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 0, 10)}, nil, []string{"T1"})
	})
	events := func() map[string]int {
		out, _ := m.Outbox()
		n := map[string]int{}
		for _, p := range out {
			n[p.Incident.Truck+":"+p.Event]++
		}
		return n
	}
	// T1 keeps sending; T2 falls silent.
	tick := func(at time.Time) {
		t.Helper()
		if err := db.Update(func(tx *bolt.Tx) error { return m.Observe(tx, at, "edge", nil, nil, []string{"T1"}) }); err != nil {
			t.Fatal(err)
		}
		if err := m.Tick(at); err != nil {
			t.Fatal(err)
		}
	}
	// 2 minutes: T2 silent for less than silence+grace: nothing.
	tick(t0.Add(2 * time.Minute))
	if e := events(); e["T2:opened"] != 0 || e["T1:escalated"] != 0 {
		t.Fatalf("too early: %v", e)
	}
	tick(t0.Add(3*time.Minute + time.Second)) // T2 past silence+grace
	tick(t0.Add(5*time.Minute + time.Second)) // T1 unacked past escalation
	tick(t0.Add(6 * time.Minute))             // nothing new
	if e := events(); e["T2:opened"] != 1 || e["T1:escalated"] != 1 || e["T1:opened"] != 1 {
		t.Fatalf("after timers: %v", e)
	}

	// Restart: open incidents stay open, ids continue, no new notifications.
	m2, err := Open(db, cfg, t0.Add(7*time.Minute), []string{"T1", "T2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m = m2
	if l := m.List(); len(l) != 2 || l[0].State != StateOpen || l[1].State != StateOpen {
		t.Fatalf("after restart %+v", l)
	}
	tick(t0.Add(7*time.Minute + time.Second))
	if e := events(); e["T2:opened"] != 1 || e["T1:escalated"] != 1 {
		t.Fatalf("restart re-notified: %v", e)
	}
	tick(t0.Add(16 * time.Minute)) // T1 last notified at 5:01 -> repeat due at 15:01
	if e := events(); e["T1:repeat"] != 1 {
		t.Fatalf("repeat: %v", e)
	}
	// T2 comes back: offline incident resolves.
	db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0.Add(17*time.Minute), "edge", nil, nil, []string{"T2"})
	})
	if e := events(); e["T2:resolved"] != 1 {
		t.Fatalf("offline not resolved: %v", e)
	}
	// Operator acks T1; a second ack is refused.
	var id string
	for _, inc := range m.List() {
		if inc.Truck == "T1" {
			id = inc.ID
		}
	}
	inc, err := m.Acknowledge(id, "alice", t0.Add(18*time.Minute))
	if err != nil || inc.AckedBy != "alice" || inc.State != StateAcknowledged {
		t.Fatalf("ack: %+v %v", inc, err)
	}
	if _, err := m.Acknowledge(id, "bob", t0.Add(19*time.Minute)); err == nil {
		t.Fatal("second ack accepted")
	}
	if _, err := m.Acknowledge("inc-nope", "bob", t0); err == nil {
		t.Fatal("ack of unknown incident accepted")
	}
}

func TestRetainResolved(t *testing.T) {
	db, _ := openDB(t)
	m, err := Open(db, Config{MergeWindow: time.Minute}, t0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0, "edge", []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 0, 10), tr(detect.Cleared, detect.SeverityCritical, 0, 20)}, nil, nil)
	})
	db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0.Add(48*time.Hour), "edge", []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 48*3600, 48*3600+10)}, nil, nil)
	})
	// Reopen three days later keeping one day of resolved incidents: the
	// old resolved one goes, the open one stays.
	m2, err := Open(db, Config{RetainResolved: 24 * time.Hour}, t0.Add(72*time.Hour), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := m2.List()
	if len(l) != 1 || l[0].State != StateOpen {
		t.Fatalf("after retention: %+v", l)
	}
	if _, err := m2.Get("inc-00000001"); err == nil {
		t.Fatal("expired incident still in the database")
	}
}
