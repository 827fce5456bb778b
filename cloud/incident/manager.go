package incident

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
)

var (
	bucketIncidents  = []byte("incidents")
	bucketOutbox     = []byte("outbox")
	bucketDeadLetter = []byte("deadletter")
)

// Errors.
var (
	ErrNotFound = errors.New("incident: not found")
	ErrState    = errors.New("incident: not allowed in this state")
	// ErrActive: an operator may not resolve an incident whose condition
	// a source still reports; it resolves by itself when they all clear.
	// It wraps ErrState.
	ErrActive = fmt.Errorf("%w: condition still active", ErrState)
)

// Config configures a Manager. Zero durations disable what they time.
type Config struct {
	// MergeWindow: a source raising an excursion whose start is within
	// this of an incident's start joins that incident.
	MergeWindow time.Duration
	// RepeatInterval: an open, unacknowledged incident is notified again
	// this long after its last notification.
	RepeatInterval time.Duration
	// EscalateAfter: an incident still unacknowledged this long after it
	// opened is escalated (once).
	EscalateAfter time.Duration
	// OfflineSilence: a truck unheard of for this long shows offline.
	OfflineSilence time.Duration
	// OfflineGrace: a truck silent for OfflineSilence plus this long gets a
	// truck-offline incident; shorter coverage gaps page nobody.
	OfflineGrace time.Duration
	// KeepResolved is how many resolved incidents stay in memory for List.
	KeepResolved int
	// RetainResolved: incidents resolved longer ago than this are deleted
	// from the database when the Manager opens (every state of them is in
	// the archive's incidents/ dataset). 0 keeps them forever.
	RetainResolved time.Duration
}

// Manager holds the incidents. It is safe for concurrent use.
type Manager struct {
	cfg Config
	db  *bolt.DB

	mu       sync.Mutex
	byID     map[string]*Incident
	current  map[string]*Incident // truck/signal -> latest incident
	lastSeen map[string]time.Time
	onChange func(Incident)
	onTx     func(tx *bolt.Tx, inc *Incident) error
	kick     chan struct{}
}

// OnChangeTx sets fn to be called, inside the transaction, with every
// incident a transaction changes (for example to archive its new state).
// Set it before use; fn must not keep inc.
func (m *Manager) OnChangeTx(fn func(tx *bolt.Tx, inc *Incident) error) { m.onTx = fn }

// Open loads the incidents kept in db (creating its buckets). Trucks in
// known start as seen at now, so a restart pages nobody for silence.
// onChange, if set, is called with a copy of each changed incident after
// its change is committed.
func Open(db *bolt.DB, cfg Config, now time.Time, known []string, onChange func(Incident)) (*Manager, error) {
	m := &Manager{
		cfg: cfg, db: db, byID: map[string]*Incident{}, current: map[string]*Incident{},
		lastSeen: map[string]time.Time{}, onChange: onChange, kick: make(chan struct{}, 1),
	}
	for _, t := range known {
		m.lastSeen[t] = now
	}
	var resolved []*Incident
	var expired [][]byte
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIncidents, bucketOutbox, bucketDeadLetter} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketIncidents)
		err := b.ForEach(func(k, v []byte) error {
			inc := new(Incident)
			if err := json.Unmarshal(v, inc); err != nil {
				return fmt.Errorf("incident %s: %w", k, err)
			}
			if inc.State == StateResolved {
				if cfg.RetainResolved > 0 && inc.ResolvedAt != nil && now.Sub(*inc.ResolvedAt) > cfg.RetainResolved {
					expired = append(expired, slices.Clone(k))
					return nil
				}
				resolved = append(resolved, inc)
				return nil
			}
			m.add(inc)
			if _, ok := m.lastSeen[inc.Truck]; !ok {
				m.lastSeen[inc.Truck] = now
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired { // not during ForEach: bbolt forbids it
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("incident load: %w", err)
	}
	sort.Slice(resolved, func(i, j int) bool { return resolved[i].ID < resolved[j].ID })
	if n := len(resolved) - m.keep(); n > 0 {
		resolved = resolved[n:]
	}
	for _, inc := range resolved {
		if cur := m.current[key(inc.Truck, inc.Signal)]; cur == nil || cur.ID < inc.ID {
			m.add(inc)
		} else {
			m.byID[inc.ID] = inc
		}
	}
	return m, nil
}

func (m *Manager) keep() int {
	if m.cfg.KeepResolved > 0 {
		return m.cfg.KeepResolved
	}
	return 1000
}

func (m *Manager) add(inc *Incident) {
	m.byID[inc.ID] = inc
	k := key(inc.Truck, inc.Signal)
	if cur := m.current[k]; cur == nil || cur.State == StateResolved || inc.State != StateResolved {
		m.current[k] = inc
	}
}

func key(truck, signal string) string {
	if signal == "" {
		return truck + "/" + KindOffline
	}
	return truck + "/" + signal
}

// Kick delivers a value after each commit that added notifications.
func (m *Manager) Kick() <-chan struct{} { return m.kick }

// List returns the incidents in memory (all unresolved and the most
// recent resolved ones), newest first.
func (m *Manager) List() []Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Incident, 0, len(m.byID))
	for _, inc := range m.byID {
		out = append(out, inc.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out
}

// Get returns the incident with id.
func (m *Manager) Get(id string) (Incident, error) {
	m.mu.Lock()
	if inc := m.byID[id]; inc != nil {
		defer m.mu.Unlock()
		return inc.clone(), nil
	}
	m.mu.Unlock()
	var inc Incident
	err := m.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIncidents).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &inc)
	})
	return inc, err
}

// change collects what one transaction did, for OnCommit.
type change struct {
	m       *Manager
	tx      *bolt.Tx
	now     time.Time
	changed map[string]*Incident
	notes   bool
}

func (m *Manager) begin(tx *bolt.Tx, now time.Time) *change {
	return &change{m: m, tx: tx, now: now.UTC(), changed: map[string]*Incident{}}
}

func (c *change) touch(inc *Incident) { c.changed[inc.ID] = inc }

func (c *change) history(inc *Incident, typ, source, by, detail string) {
	inc.History = append(inc.History, Event{At: c.now, Type: typ, Source: source, By: by, Detail: detail})
	c.touch(inc)
}

// notify enqueues a notification of inc's current state in the outbox.
func (c *change) notify(inc *Incident, event string, escalation bool) error {
	inc.Notified++
	inc.LastNotifiedAt = c.now
	n := Notification{
		ID: fmt.Sprintf("%s/%d", inc.ID, inc.Notified), Event: event, Events: []string{event},
		Escalation: escalation, At: c.now, Incident: inc.summary(),
	}
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	b := c.tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	c.notes = true
	c.touch(inc)
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

// finish writes changed incidents and arranges callbacks after commit.
func (c *change) finish() error {
	b := c.tx.Bucket(bucketIncidents)
	var copies []Incident
	for _, inc := range c.changed {
		v, err := json.Marshal(inc)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(inc.ID), v); err != nil {
			return err
		}
		if c.m.onTx != nil {
			if err := c.m.onTx(c.tx, inc); err != nil {
				return err
			}
		}
		copies = append(copies, inc.clone())
	}
	m, notes := c.m, c.notes
	c.tx.OnCommit(func() {
		if notes {
			select {
			case m.kick <- struct{}{}:
			default:
			}
		}
		if m.onChange != nil {
			for _, inc := range copies {
				m.onChange(inc)
			}
		}
	})
	return nil
}

func (c *change) open(truck, signal, kind, severity string, start time.Time) (*Incident, error) {
	seq, err := c.tx.Bucket(bucketIncidents).NextSequence()
	if err != nil {
		return nil, err
	}
	inc := &Incident{
		ID: fmt.Sprintf("inc-%08d", seq), Truck: truck, Signal: signal, Kind: kind, Severity: severity, Peak: severity,
		State: StateOpen, Start: start.UTC(), OpenedAt: c.now, Sources: map[string]*SourceState{},
	}
	c.m.add(inc)
	c.m.trim()
	return inc, nil
}

// trim forgets the oldest resolved incidents beyond KeepResolved.
func (m *Manager) trim() {
	var resolved []string
	for id, inc := range m.byID {
		if inc.State == StateResolved {
			resolved = append(resolved, id)
		}
	}
	if n := len(resolved) - m.keep(); n > 0 {
		slices.Sort(resolved)
		for _, id := range resolved[:n] {
			inc := m.byID[id]
			delete(m.byID, id)
			if k := key(inc.Truck, inc.Signal); m.current[k] == inc {
				delete(m.current, k)
			}
		}
	}
}

var severityRank = map[string]int{"none": 0, "info": 1, "warning": 2, "critical": 3}

// worst returns the highest severity among the incident's uncleared
// sources (or all sources if all cleared).
func (inc *Incident) worst() string {
	best, any := "none", false
	for _, s := range inc.Sources {
		if s.Cleared == nil {
			any = true
		}
	}
	for _, s := range inc.Sources {
		if (!any || s.Cleared == nil) && severityRank[s.Severity] > severityRank[best] {
			best = s.Severity
		}
	}
	return best
}

// latestKind returns the kind of the latest transition among the
// sources that worst (severity w) considers.
func (inc *Incident) latestKind(w string) string {
	any := false
	for _, s := range inc.Sources {
		if s.Cleared == nil {
			any = true
		}
	}
	kind, at := "", time.Time{}
	for _, name := range inc.SourceNames() {
		s := inc.Sources[name]
		t := s.At
		if t.IsZero() {
			t = s.RaisedAt // stored before At existed
		}
		if (!any || s.Cleared == nil) && s.Severity == w && (kind == "" || t.After(at)) {
			kind, at = s.Kind, t
		}
	}
	return kind
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Observe applies alert transitions from source ("edge" or "cloud") and
// acknowledgements from the edge, inside tx (the ingest transaction), at
// cloud time now. Each truck in seen counts as heard from at now.
func (m *Manager) Observe(tx *bolt.Tx, now time.Time, source string, ts []detect.Transition, acks []detect.Ack, seen []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.begin(tx, now)
	for _, truck := range seen {
		if err := m.seen(c, truck); err != nil {
			return err
		}
	}
	for _, t := range ts {
		if err := m.transition(c, source, t); err != nil {
			return fmt.Errorf("incident %s: %w", t.Key(), err)
		}
	}
	for _, a := range acks {
		if err := m.ack(c, a); err != nil {
			return fmt.Errorf("incident ack %s: %w", a.Key(), err)
		}
	}
	return c.finish()
}

func (m *Manager) seen(c *change, truck string) error {
	m.lastSeen[truck] = c.now
	inc := m.current[key(truck, "")]
	if inc == nil || inc.State == StateResolved {
		return nil
	}
	return m.resolve(c, inc, SourceSystem, "data received again")
}

func (m *Manager) transition(c *change, source string, t detect.Transition) error {
	k := key(t.Truck, t.Signal.String())
	start := time.Unix(0, t.Start).UTC()
	at := time.Unix(0, t.Time).UTC()
	inc := m.current[k]
	var src *SourceState
	if inc != nil {
		src = inc.Sources[source]
	}
	switch t.Phase {
	case detect.Raised:
		switch {
		case inc != nil && src != nil && src.Key == t.Key():
			return nil // repeated raise of the same excursion
		case inc != nil && src == nil && (inc.State != StateResolved || abs(start.Sub(inc.Start)) <= m.cfg.MergeWindow):
			// The other source reports the same excursion.
			inc.Sources[source] = &SourceState{Key: t.Key(), Kind: t.Kind.String(), Severity: t.Severity.String(), Start: start, RaisedAt: at, At: at}
			c.history(inc, EventSourceJoined, source, "", fmt.Sprintf("%s %s at %.1f", t.Kind, t.Severity, t.Value))
			return m.severityChanged(c, inc)
		case inc != nil && src != nil && inc.State != StateResolved:
			// This source re-raised while the incident is still open: after
			// clearing while another source held it open, or without
			// clearing at all because it restarted (a gateway that
			// restarts mid-excursion has lost its detector state and
			// raises the same condition with a new start).
			*src = SourceState{Key: t.Key(), Kind: t.Kind.String(), Severity: t.Severity.String(), Start: start, RaisedAt: at, At: at}
			c.history(inc, EventChanged, source, "", "raised again")
			return m.severityChanged(c, inc)
		}
		inc, err := c.open(t.Truck, t.Signal.String(), t.Kind.String(), t.Severity.String(), start)
		if err != nil {
			return err
		}
		inc.Sources[source] = &SourceState{Key: t.Key(), Kind: t.Kind.String(), Severity: t.Severity.String(), Start: start, RaisedAt: at, At: at}
		c.history(inc, EventOpened, source, "", fmt.Sprintf("%s %s at %.1f", t.Kind, t.Severity, t.Value))
		return c.notify(inc, EventOpened, false)
	case detect.Changed:
		if src == nil || src.Key != t.Key() {
			return nil
		}
		src.Kind, src.Severity, src.At = t.Kind.String(), t.Severity.String(), at
		c.history(inc, EventChanged, source, "", fmt.Sprintf("%s %s at %.1f", t.Kind, t.Severity, t.Value))
		return m.severityChanged(c, inc)
	case detect.Cleared:
		if src == nil || src.Key != t.Key() || src.Cleared != nil {
			return nil
		}
		src.Cleared = &at
		c.history(inc, EventCleared, source, "", fmt.Sprintf("at %.1f", t.Value))
		if inc.State == StateResolved {
			return nil
		}
		for _, s := range inc.Sources {
			if s.Cleared == nil {
				return nil
			}
		}
		return m.resolve(c, inc, SourceSystem, "condition cleared")
	}
	return nil
}

// severityChanged updates inc's severity and kind from its sources and
// notifies a rise while the incident is not resolved.
func (m *Manager) severityChanged(c *change, inc *Incident) error {
	w := inc.worst()
	if k := inc.latestKind(w); k != "" && k != inc.Kind {
		inc.Kind = k
		c.touch(inc)
	}
	if w == inc.Severity {
		return nil
	}
	rose := severityRank[w] > severityRank[inc.Severity]
	inc.Severity = w
	if severityRank[w] > severityRank[inc.Peak] {
		inc.Peak = w
	}
	c.touch(inc)
	if rose && inc.State != StateResolved {
		if inc.State == StateAcknowledged {
			// A worse condition needs a fresh acknowledgement.
			inc.State, inc.AckedBy, inc.AckedAt, inc.AckedFrom = StateOpen, "", nil, detect.AckOriginUnknown
		}
		return c.notify(inc, EventChanged, false)
	}
	return nil
}

// ack records a driver's acknowledgement from the cab, in whatever state
// the incident is: the fleet team hears of every one (a driver who
// acknowledges after an operator did is news too).
func (m *Manager) ack(c *change, a detect.Ack) error {
	inc := m.current[key(a.Truck, a.Signal.String())]
	if inc == nil {
		return nil
	}
	match := false
	for _, s := range inc.Sources {
		if s.Key == a.Key() {
			match = true
		}
	}
	if !match {
		return nil
	}
	sev := inc.Severity
	if a.Severity > detect.SeverityNone {
		sev = a.Severity.String()
	}
	origin := a.Origin
	if origin == detect.AckOriginUnknown {
		origin = OriginDriver // an edge ack comes from the cab
	}
	ack := Acknowledgement{By: a.By, Origin: origin, At: time.Unix(0, a.Time).UTC(), Severity: sev, Kind: inc.Kind}
	for _, have := range inc.Acks {
		if have.Origin == ack.Origin && have.By == ack.By && have.At.Equal(ack.At) && have.Severity == ack.Severity {
			return nil // the same press delivered again
		}
	}
	return m.acknowledge(c, inc, ack)
}

// acknowledge records a and notifies it. An open incident becomes
// acknowledged if a covers its severity (a driver who acknowledged the
// warning has not acknowledged the critical it became).
func (m *Manager) acknowledge(c *change, inc *Incident, a Acknowledgement) error {
	a.Recorded = c.now
	inc.Acks = append(inc.Acks, a)
	if inc.State != StateResolved && severityRank[a.Severity] >= severityRank[inc.Severity] {
		at := a.At
		inc.State, inc.AckedBy, inc.AckedAt, inc.AckedFrom = StateAcknowledged, a.By, &at, a.Origin
	}
	source := ""
	if a.Origin == OriginDriver {
		source = SourceEdge
	}
	c.history(inc, EventAcknowledged, source, a.By, fmt.Sprintf("%s acknowledged %s %s at %s", a.Origin, a.Severity, a.Kind, a.At.Format(time.RFC3339)))
	inc.History[len(inc.History)-1].Origin = a.Origin
	return c.notify(inc, EventAcknowledged, false)
}

func (m *Manager) resolve(c *change, inc *Incident, by, detail string) error {
	at := c.now
	inc.State, inc.ResolvedBy, inc.ResolvedAt = StateResolved, by, &at
	c.history(inc, EventResolved, "", by, detail)
	return c.notify(inc, EventResolved, false)
}

// Acknowledge records that fleet user by acknowledged incident id at now.
// It is refused for a resolved incident and for one the fleet team has
// already acknowledged at its current severity; a driver's earlier
// acknowledgement does not stand for the fleet team's.
func (m *Manager) Acknowledge(id, by string, now time.Time) (Incident, error) {
	return m.operate(id, now, func(c *change, inc *Incident) error {
		if inc.State == StateResolved {
			return fmt.Errorf("%w: acknowledge resolved incident", ErrState)
		}
		for _, a := range inc.Acks {
			if a.Origin == OriginFleet && severityRank[a.Severity] >= severityRank[inc.Severity] {
				return fmt.Errorf("%w: already acknowledged by %s at %s (%s)", ErrState, a.By, a.At.Format(time.RFC3339), a.Severity)
			}
		}
		return m.acknowledge(c, inc, Acknowledgement{By: by, Origin: OriginFleet, At: c.now, Severity: inc.Severity, Kind: inc.Kind})
	})
}

// Resolve records that by resolved incident id at now. An incident whose
// condition a source still reports is not resolved: the error (ErrActive)
// says which, and the incident keeps repeating until acknowledged.
func (m *Manager) Resolve(id, by string, now time.Time) (Incident, error) {
	return m.operate(id, now, func(c *change, inc *Incident) error {
		if inc.State == StateResolved {
			return fmt.Errorf("%w: already resolved", ErrState)
		}
		if active := inc.active(); len(active) > 0 {
			return fmt.Errorf("%w: %s; it resolves by itself when that clears (acknowledge it to stop the repeats)", ErrActive, strings.Join(active, "; "))
		}
		return m.resolve(c, inc, by, "resolved by operator")
	})
}

// active describes each source still reporting inc's condition.
func (inc *Incident) active() []string {
	var out []string
	for _, name := range inc.SourceNames() {
		s := inc.Sources[name]
		if s.Cleared != nil {
			continue
		}
		if s.Kind == KindOffline {
			out = append(out, "no data from "+inc.Truck+" since "+s.Start.UTC().Format(time.RFC3339))
			continue
		}
		out = append(out, fmt.Sprintf("%s reports %s %s since %s", name, s.Kind, s.Severity, s.Start.UTC().Format(time.RFC3339)))
	}
	return out
}

func (m *Manager) operate(id string, now time.Time, fn func(*change, *Incident) error) (Incident, error) {
	var out Incident
	err := m.db.Update(func(tx *bolt.Tx) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		inc := m.byID[id]
		if inc == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		c := m.begin(tx, now)
		if err := fn(c, inc); err != nil {
			return err
		}
		out = inc.clone()
		return c.finish()
	})
	return out, err
}

// Tick applies the timers at now: repeats, escalations, and truck-offline
// incidents. It writes (and syncs) the database only when one is due.
func (m *Manager) Tick(now time.Time) error {
	if !m.due(now.UTC()) {
		return nil
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		c := m.begin(tx, now)
		for _, inc := range m.byID {
			if inc.State != StateOpen {
				continue
			}
			if m.cfg.EscalateAfter > 0 && !inc.Escalated && c.now.Sub(inc.OpenedAt) >= m.cfg.EscalateAfter {
				inc.Escalated = true
				c.history(inc, EventEscalated, SourceSystem, "", fmt.Sprintf("unacknowledged for %v", m.cfg.EscalateAfter))
				if err := c.notify(inc, EventEscalated, true); err != nil {
					return err
				}
				continue
			}
			if m.cfg.RepeatInterval > 0 && c.now.Sub(inc.LastNotifiedAt) >= m.cfg.RepeatInterval {
				c.history(inc, EventRepeat, SourceSystem, "", "")
				if err := c.notify(inc, EventRepeat, inc.Escalated); err != nil {
					return err
				}
			}
		}
		if m.cfg.OfflineSilence > 0 {
			for truck, seen := range m.lastSeen {
				if c.now.Sub(seen) < m.cfg.OfflineSilence+m.cfg.OfflineGrace {
					continue
				}
				if cur := m.current[key(truck, "")]; cur != nil && cur.State != StateResolved {
					continue
				}
				inc, err := c.open(truck, "", KindOffline, "warning", seen)
				if err != nil {
					return err
				}
				inc.Sources[SourceSystem] = &SourceState{Key: truck + "/offline", Kind: KindOffline, Severity: "warning", Start: seen.UTC(), RaisedAt: c.now}
				c.history(inc, EventOpened, SourceSystem, "", fmt.Sprintf("no data since %s", seen.UTC().Format(time.RFC3339)))
				if err := c.notify(inc, EventOpened, false); err != nil {
					return err
				}
			}
		}
		return c.finish()
	})
}

// due reports whether Tick has anything to do at now. The answer is
// rechecked inside Tick's transaction.
func (m *Manager) due(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inc := range m.byID {
		if inc.State != StateOpen {
			continue
		}
		if m.cfg.EscalateAfter > 0 && !inc.Escalated && now.Sub(inc.OpenedAt) >= m.cfg.EscalateAfter {
			return true
		}
		if m.cfg.RepeatInterval > 0 && now.Sub(inc.LastNotifiedAt) >= m.cfg.RepeatInterval {
			return true
		}
	}
	if m.cfg.OfflineSilence > 0 {
		for truck, seen := range m.lastSeen {
			if now.Sub(seen) < m.cfg.OfflineSilence+m.cfg.OfflineGrace {
				continue
			}
			if cur := m.current[key(truck, "")]; cur == nil || cur.State == StateResolved {
				return true
			}
		}
	}
	return false
}

// Offline reports whether truck has been silent for OfflineSilence at now.
func (m *Manager) Offline(truck string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen, ok := m.lastSeen[truck]
	return ok && m.cfg.OfflineSilence > 0 && now.Sub(seen) >= m.cfg.OfflineSilence
}
