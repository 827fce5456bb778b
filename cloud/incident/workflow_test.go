package incident

import (
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// workflow is one Manager on a fresh database with helpers to feed it.
type workflow struct {
	t  *testing.T
	db *bolt.DB
	m  *Manager
}

func newWorkflow(t *testing.T, cfg Config) *workflow {
	db, _ := openDB(t)
	m, err := Open(db, cfg, t0, []string{"T1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &workflow{t, db, m}
}

func (w *workflow) observe(atS int, source string, ts []detect.Transition, acks ...detect.Ack) {
	w.t.Helper()
	err := w.db.Update(func(tx *bolt.Tx) error {
		return w.m.Observe(tx, t0.Add(time.Duration(atS)*time.Second), source, ts, acks, []string{"T1"})
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *workflow) only() Incident {
	w.t.Helper()
	l := w.m.List()
	if len(l) != 1 {
		w.t.Fatalf("%d incidents, want 1: %+v", len(l), l)
	}
	return l[0]
}

// events returns the outbox's notification events, oldest first.
func (w *workflow) events() []string {
	out, err := w.m.Outbox()
	if err != nil {
		w.t.Fatal(err)
	}
	var ev []string
	for _, p := range out {
		ev = append(ev, p.Event)
	}
	return ev
}

func driverAck(sev detect.Severity, atS int) detect.Ack {
	return detect.Ack{Truck: "T1", Signal: sensors.CoolantTemp, Start: t0.UnixNano(), Time: t0.Add(time.Duration(atS) * time.Second).UnixNano(), By: "driver", Severity: sev}
}

// Observation 1: an operator could resolve an incident whose truck was
// still critical; nothing repeated and the console said "0 open".
func TestResolveRefusedWhileConditionActive(t *testing.T) {
	w := newWorkflow(t, Config{MergeWindow: time.Minute, RepeatInterval: 10 * time.Minute})
	w.observe(10, SourceEdge, []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 0, 10)})
	w.observe(11, SourceCloud, []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 0, 11)})
	id := w.only().ID

	_, err := w.m.Resolve(id, "alice", t0.Add(time.Minute))
	if !errors.Is(err, ErrActive) || !errors.Is(err, ErrState) {
		t.Fatalf("resolve of an active incident: %v, want ErrActive", err)
	}
	for _, want := range []string{"edge reports limit critical", "cloud reports limit critical", "resolves by itself"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if inc := w.only(); inc.State != StateOpen || inc.ResolvedAt != nil {
		t.Fatalf("after the refused resolve: state %s resolved %v", inc.State, inc.ResolvedAt)
	}
	// Still open, so it keeps repeating.
	if err := w.m.Tick(t0.Add(11 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ev := w.events(); len(ev) != 2 || ev[1] != EventRepeat {
		t.Fatalf("notifications %v, want opened then repeat", ev)
	}

	// One source clears: still refused. Both clear: it resolves itself.
	w.observe(700, SourceEdge, []detect.Transition{tr(detect.Cleared, detect.SeverityCritical, 0, 700)})
	if _, err := w.m.Resolve(id, "alice", t0.Add(12*time.Minute)); !errors.Is(err, ErrActive) || !strings.Contains(err.Error(), "cloud reports") || strings.Contains(err.Error(), "edge reports") {
		t.Fatalf("resolve with the cloud still active: %v", err)
	}
	w.observe(701, SourceCloud, []detect.Transition{tr(detect.Cleared, detect.SeverityCritical, 0, 701)})
	if inc := w.only(); inc.State != StateResolved || inc.ResolvedBy != SourceSystem {
		t.Fatalf("after both cleared: state %s by %q", inc.State, inc.ResolvedBy)
	}
}

// An offline incident cannot be resolved while the truck is still silent.
func TestResolveOfflineRefusedWhileSilent(t *testing.T) {
	w := newWorkflow(t, Config{OfflineSilence: time.Minute, OfflineGrace: time.Minute})
	if err := w.m.Tick(t0.Add(3 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	inc := w.only()
	if _, err := w.m.Resolve(inc.ID, "alice", t0.Add(4*time.Minute)); !errors.Is(err, ErrActive) || !strings.Contains(err.Error(), "no data from T1") {
		t.Fatalf("resolve of a silent truck's incident: %v", err)
	}
}

// Observations 2 and 3: a driver's ACKNOWLEDGE after an operator's ack
// never reached the fleet team; the acknowledgements showed the
// incident's current severity, not the one acknowledged.
func TestEveryAcknowledgementRecordedAndNotified(t *testing.T) {
	w := newWorkflow(t, Config{MergeWindow: time.Minute})
	W, C := detect.SeverityWarning, detect.SeverityCritical
	w.observe(10, SourceEdge, []detect.Transition{tr(detect.Raised, W, 0, 10)})
	// The driver acknowledges the warning; then it becomes critical.
	w.observe(15, SourceEdge, nil, driverAck(W, 14))
	w.observe(20, SourceEdge, []detect.Transition{tr(detect.Changed, C, 0, 20)})
	if inc := w.only(); inc.State != StateOpen {
		t.Fatalf("a warning's ack covers the critical: state %s", inc.State)
	}
	// The operator acknowledges the critical; then the driver does too.
	id := w.only().ID
	if _, err := w.m.Acknowledge(id, "alice", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.observe(41, SourceEdge, nil, driverAck(C, 40))
	w.observe(42, SourceEdge, nil, driverAck(C, 40)) // the same press, delivered again

	inc := w.only()
	type ack struct {
		by     string
		origin detect.AckOrigin
		sev    string
	}
	want := []ack{{"driver", OriginDriver, "warning"}, {"alice", OriginFleet, "critical"}, {"driver", OriginDriver, "critical"}}
	if len(inc.Acks) != len(want) {
		t.Fatalf("acks %+v, want %v", inc.Acks, want)
	}
	for i, a := range inc.Acks {
		if (ack{a.By, a.Origin, a.Severity}) != want[i] {
			t.Errorf("ack %d: %+v, want %v", i, a, want[i])
		}
	}
	if at := inc.Acks[0].At; !at.Equal(t0.Add(14 * time.Second)) {
		t.Errorf("driver's ack at %v, want the cab's time %v", at, t0.Add(14*time.Second))
	}
	if inc.State != StateAcknowledged || inc.AckedBy != "driver" {
		t.Errorf("state %s acked by %q, want acknowledged by the latest (driver)", inc.State, inc.AckedBy)
	}
	ev := w.events()
	wantEv := []string{EventOpened, EventAcknowledged, EventChanged, EventAcknowledged, EventAcknowledged}
	if strings.Join(ev, ",") != strings.Join(wantEv, ",") {
		t.Fatalf("notifications %v, want %v (every acknowledgement reaches the fleet team)", ev, wantEv)
	}
	// The last notification tells the fleet team who acknowledged what.
	out, _ := w.m.Outbox()
	if last := out[len(out)-1].Incident; len(last.Acks) != 3 || last.Acks[2].Origin != OriginDriver || last.Acks[2].Severity != "critical" {
		t.Errorf("last notification's acks %+v, want all three, the driver's critical last", last.Acks)
	}
	// The fleet team has acknowledged this severity: a second fleet ack is
	// refused with who did it.
	if _, err := w.m.Acknowledge(id, "bob", t0.Add(time.Minute)); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("second fleet ack: %v", err)
	}
}

// An operator may acknowledge what only the driver has acknowledged.
func TestFleetAckAfterDriverAck(t *testing.T) {
	w := newWorkflow(t, Config{MergeWindow: time.Minute})
	w.observe(10, SourceEdge, []detect.Transition{tr(detect.Raised, detect.SeverityCritical, 0, 10)})
	w.observe(12, SourceEdge, nil, driverAck(detect.SeverityCritical, 11))
	inc, err := w.m.Acknowledge(w.only().ID, "alice", t0.Add(20*time.Second))
	if err != nil || len(inc.Acks) != 2 || inc.AckedBy != "alice" {
		t.Fatalf("fleet ack after the driver's: %v, %+v", err, inc.Acks)
	}
}

// Observation 4: the incident's kind lagged the latest transition
// (rate_of_rise shown while the edge already reported the limit).
func TestKindFollowsLatestTransition(t *testing.T) {
	w := newWorkflow(t, Config{MergeWindow: time.Minute})
	rise := tr(detect.Raised, detect.SeverityWarning, 0, 10)
	rise.Kind = detect.KindRateOfRise
	w.observe(10, SourceEdge, []detect.Transition{rise})
	limit := tr(detect.Changed, detect.SeverityWarning, 0, 20)
	limit.Kind = detect.KindLimit
	w.observe(20, SourceEdge, []detect.Transition{limit})
	if inc := w.only(); inc.Kind != "limit" {
		t.Fatalf("kind %q after the edge changed to limit, want limit", inc.Kind)
	}
	// The cloud joins with the same excursion a little later as deviation:
	// its transition is the latest.
	dev := tr(detect.Raised, detect.SeverityWarning, 0, 25)
	w.observe(25, SourceCloud, []detect.Transition{dev})
	if inc := w.only(); inc.Kind != "deviation" {
		t.Fatalf("kind %q after the cloud's later deviation, want deviation", inc.Kind)
	}
	// A worse source wins over a later, milder one.
	crit := tr(detect.Changed, detect.SeverityCritical, 0, 30)
	w.observe(30, SourceEdge, []detect.Transition{crit})
	dev2 := tr(detect.Changed, detect.SeverityWarning, 0, 35)
	dev2.Kind = detect.KindRateOfRise
	w.observe(35, SourceCloud, []detect.Transition{dev2})
	if inc := w.only(); inc.Kind != "limit" || inc.Severity != "critical" {
		t.Fatalf("%s %s, want critical limit", inc.Severity, inc.Kind)
	}
	// Easing back to a warning: the latest condition, and the peak kept.
	ease := tr(detect.Changed, detect.SeverityWarning, 0, 40)
	w.observe(40, SourceEdge, []detect.Transition{ease})
	if inc := w.only(); inc.Severity != "warning" || inc.Kind != "deviation" || inc.Peak != "critical" {
		t.Fatalf("after easing: %s %s peak %s, want a warning that peaked critical", inc.Severity, inc.Kind, inc.Peak)
	}
}
