package incident

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
)

// TestGatewayRestartDoesNotSplitIncident: a gateway that restarts during an
// excursion has lost its detector state and raises the same, still-open
// condition again with a new start (found by the chaos run: each
// overheated truck got 6-10 incidents). The raise must join the open
// incident, not open and notify another.
func TestGatewayRestartDoesNotSplitIncident(t *testing.T) {
	C := detect.SeverityCritical
	db, _ := openDB(t)
	m, err := Open(db, Config{MergeWindow: time.Minute}, t0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{"edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
		{"cloud", []detect.Transition{tr(detect.Raised, C, 0, 10)}, nil},
		{"edge", []detect.Transition{tr(detect.Raised, C, 11, 21)}, nil},   // restarted gateway, within the merge window
		{"edge", []detect.Transition{tr(detect.Raised, C, 300, 310)}, nil}, // and again, minutes later: still the same open excursion
	}
	for i, s := range steps {
		if err := db.Update(func(tx *bolt.Tx) error {
			return m.Observe(tx, t0.Add(time.Duration(i)*time.Second), s.source, s.ts, s.acks, []string{"T1"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	list := m.List()
	if len(list) != 1 {
		t.Fatalf("%d incidents, want 1: %+v", len(list), list)
	}
	out, _ := m.Outbox()
	opened := 0
	for _, p := range out {
		if p.Event == EventOpened {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("opening notified %d times, want once", opened)
	}
	// The source now tracks the newest excursion, so its clear resolves.
	if err := db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0.Add(time.Hour), "edge", []detect.Transition{tr(detect.Cleared, C, 300, 400)}, nil, []string{"T1"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return m.Observe(tx, t0.Add(time.Hour), "cloud", []detect.Transition{tr(detect.Cleared, C, 0, 400)}, nil, []string{"T1"})
	}); err != nil {
		t.Fatal(err)
	}
	if inc := m.List()[0]; inc.State != StateResolved {
		t.Errorf("state %s after both sources cleared, want resolved", inc.State)
	}
}
