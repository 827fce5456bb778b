package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// MaxAlerts is how many recent alert transitions the console keeps.
const MaxAlerts = 500

// Truck statuses, as served in Truck.Status and shown as map colours.
const (
	StatusNormal   = "normal"
	StatusWarning  = "warning"
	StatusCritical = "critical"
	StatusOffline  = "offline"
)

// Truck is the console's view of one truck, as served by /api/trucks.
// Pointer fields are nil until a value arrives.
type Truck struct {
	ID       string    `json:"id"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
	// DataTime is the measurement time of the newest reading.
	DataTime time.Time `json:"data_time"`
	Lat      *float64  `json:"lat,omitempty"`
	Lon      *float64  `json:"lon,omitempty"`
	Coolant  *float64  `json:"coolant_temp,omitempty"`
	Cargo    *float64  `json:"cargo_temp,omitempty"`
	Speed    *float64  `json:"speed,omitempty"`
	// CoolantBand and CargoBand are the learned normal bands [low, high]
	// including the detector's margin; nil until learned.
	CoolantBand *[2]float64 `json:"coolant_band,omitempty"`
	CargoBand   *[2]float64 `json:"cargo_band,omitempty"`
	// OpenAlerts counts alerts raised and not cleared, per source.
	OpenAlerts map[string]int `json:"open_alerts"`
	// Severity is the worst open alert's severity ("none" if none).
	Severity string `json:"severity"`
	// Status is offline, critical, warning or normal (the map colour).
	Status string `json:"status"`
	// Faults are the ECUs' active trouble codes from the truck's latest
	// DTC report (dtc.go), as of FaultsTime; FaultLamp is "red_stop" or
	// "amber_warning" when an ECU has that lamp on, else "". The slice is
	// replaced, never changed in place.
	Faults     []Fault   `json:"faults,omitempty"`
	FaultLamp  string    `json:"fault_lamp,omitempty"`
	FaultsTime time.Time `json:"faults_time,omitzero"`

	open        map[string]detect.Severity // open alert key+source -> severity
	shownSilent bool
	det         *detect.Detector
	hist        *history
	vals        [5]float64 // what Lat, Lon, Coolant, Cargo, Speed point at
	valTime     [5]int64   // and when each was measured
}

// set points *p at the truck's own storage i holding v measured at tm,
// unless it holds a newer value (no allocation).
func (t *Truck) set(p **float64, i int, v float64, tm int64) {
	if *p != nil && tm < t.valTime[i] {
		return
	}
	t.vals[i], t.valTime[i] = v, tm
	*p = &t.vals[i]
}

// Alert is one alert transition as served by /api/alerts.
type Alert struct {
	Source   string    `json:"source"`
	Truck    string    `json:"truck"`
	Signal   string    `json:"signal"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Phase    string    `json:"phase"`
	Key      string    `json:"key"`
	Start    time.Time `json:"start"`
	Time     time.Time `json:"time"`
	Value    float64   `json:"value"`
}

type event struct {
	name string
	data []byte
}

// IncidentAPI is what the console needs from the incident store. by is
// the signed-in user's name. If it also has a method
// Snooze(id, by string, until time.Time) (incident.Incident, error), the
// console's snooze action calls it; otherwise the console keeps snoozes
// itself (in memory: they hide an incident's alarm in the console only).
type IncidentAPI interface {
	List() []incident.Incident
	Acknowledge(id, by string) (incident.Incident, error)
	Resolve(id, by string) (incident.Incident, error)
}

type snoozer interface {
	Snooze(id, by string, until time.Time) (incident.Incident, error)
}

// Snooze is a console-side snooze of an incident: who, when, until when.
type Snooze struct {
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Options configure a Console.
type Options struct {
	// Config is the operator's console configuration.
	Config Config
	// DataDir is where the default users file is created
	// (DataDir/users.json) when Config names none.
	DataDir string
	// Detect configures the per-truck detectors whose learned bands the
	// charts show (zero: detect.DefaultConfig()).
	Detect detect.Config
	// Incidents serves /api/incidents and its actions; nil disables them.
	Incidents IncidentAPI
	// OfflineAfter shows a truck offline when unheard of this long
	// (0: only by its status message).
	OfflineAfter time.Duration
	// Stats returns the counters served as JSON by /api/stats; nil serves {}.
	Stats func() any
	// Tick is how often changed trucks are pushed to live clients
	// (default 250ms).
	Tick time.Duration
	// KeepAlive is how often a live stream sends a comment and checks
	// that its session is still valid (default 15s).
	KeepAlive time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Console holds the fleet view and serves it. All methods are safe for
// concurrent use. Call Open before serving Handler.
type Console struct {
	log  *slog.Logger
	opts Options
	auth atomic.Pointer[auth.Authenticator]

	mu      sync.Mutex
	trucks  map[string]*Truck
	alerts  []Alert
	dirty   map[string]bool
	subs    map[chan event]struct{}
	snoozes map[string]Snooze

	done        chan struct{}
	dropped     atomic.Uint64
	badRequests atomic.Uint64
	detectErrs  atomic.Uint64
}

// New returns an empty console. It does no I/O.
func New(log *slog.Logger, opts Options) *Console {
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if reflect.ValueOf(opts.Detect).IsZero() {
		opts.Detect = detect.DefaultConfig()
	}
	opts.Config.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Console{
		log: log, opts: opts,
		trucks: map[string]*Truck{}, dirty: map[string]bool{}, subs: map[chan event]struct{}{},
		snoozes: map[string]Snooze{}, done: make(chan struct{}),
	}
}

// Open loads the users (Config.Users, else the users file, creating
// DataDir/users.json with a random admin password, written to
// DataDir/initial-admin-password, if no file is named and
// none exists) and readies sign-in. Until Open succeeds every request but
// the sign-in page gets 503.
func (c *Console) Open() error {
	if err := c.opts.Config.Validate(); err != nil {
		return fmt.Errorf("console config: %w", err)
	}
	users := c.opts.Config.Users
	if len(users) == 0 {
		path := c.opts.Config.UsersFile
		if path == "" {
			if c.opts.DataDir == "" {
				return fmt.Errorf("console users: no users, no users_file and no data dir")
			}
			path = filepath.Join(c.opts.DataDir, UsersFileName)
		}
		var err error
		if users, err = auth.Bootstrap(path, c.log); err != nil {
			return fmt.Errorf("console users: %w", err)
		}
	}
	a, err := auth.New(users, c.opts.Config.Auth, c.log, c.opts.Now)
	if err != nil {
		return fmt.Errorf("console users: %w", err)
	}
	c.auth.Store(a)
	return nil
}

func (c *Console) truck(id string) *Truck {
	t := c.trucks[id]
	if t == nil {
		t = &Truck{ID: id, OpenAlerts: map[string]int{}, Severity: "none", open: map[string]detect.Severity{}}
		t.hist = &history{step: uint32(max(c.opts.Config.HistoryStep/time.Second, 1)),
			max: int(max(c.opts.Config.History/max(c.opts.Config.HistoryStep, time.Second), 1))}
		if d, err := detect.New(id, c.opts.Detect); err == nil {
			t.det = d
		} else {
			c.detectErrs.Add(1)
		}
		c.trucks[id] = t
	}
	c.dirty[id] = true
	return t
}

// Readings folds a truck's newly accepted readings into its view, its
// chart history and its learned bands; now is when the cloud received
// them.
func (c *Console) Readings(truck string, rs []sensors.Reading, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.truck(truck)
	t.LastSeen = now.UTC()
	t.Online = true
	c.fold(t, rs)
}

// fold folds rs into t's view, history and bands. c.mu is held.
func (c *Console) fold(t *Truck, rs []sensors.Reading) {
	var newest int64
	if !t.DataTime.IsZero() {
		newest = t.DataTime.UnixNano()
	}
	var last *point
	lastStep, step := int64(-1), int64(t.hist.step)
	for _, r := range rs {
		switch r.Signal {
		case sensors.CoolantTemp, sensors.CargoTemp, sensors.WheelSpeed:
			if t.det != nil && r.Signal != sensors.WheelSpeed {
				t.det.Observe(r)
			}
			if s := r.Time / 1e9 / step; s != lastStep {
				t.bandInto(last) // before at(), which may move the points
				last, lastStep = t.hist.at(r.Time/1e9), s
			}
			if last != nil {
				v := float32(r.Value)
				switch r.Signal {
				case sensors.CoolantTemp:
					last.coolant = maxNaN(last.coolant, v)
				case sensors.CargoTemp:
					last.cargo = maxNaN(last.cargo, v)
				case sensors.WheelSpeed:
					last.speed = v
				}
			}
		}
		// Each value shows its newest measurement: late data (a backlog,
		// the archive) never overwrites a newer one.
		newest = max(newest, r.Time)
		switch r.Signal {
		case sensors.GNSSLatitude, sensors.VPLatitude:
			t.set(&t.Lat, 0, r.Value, r.Time)
		case sensors.GNSSLongitude, sensors.VPLongitude:
			t.set(&t.Lon, 1, r.Value, r.Time)
		case sensors.CoolantTemp:
			t.set(&t.Coolant, 2, r.Value, r.Time)
		case sensors.CargoTemp:
			t.set(&t.Cargo, 3, r.Value, r.Time)
		case sensors.WheelSpeed:
			t.set(&t.Speed, 4, r.Value, r.Time)
		}
	}
	if newest != 0 {
		t.DataTime = time.Unix(0, newest).UTC()
	}
	t.bandInto(last)
	if t.det != nil {
		t.CoolantBand = band(t.det, sensors.CoolantTemp, t.CoolantBand)
		t.CargoBand = band(t.det, sensors.CargoTemp, t.CargoBand)
	}
}

// bandInto records the learned bands as they are now in history point p.
func (t *Truck) bandInto(p *point) {
	if p == nil || t.det == nil {
		return
	}
	if lo, hi, ok := bandEdges(t.det, sensors.CoolantTemp); ok {
		p.coolLo, p.coolHi = float32(lo), float32(hi)
	}
	if lo, hi, ok := bandEdges(t.det, sensors.CargoTemp); ok {
		p.cargoLo, p.cargoHi = float32(lo), float32(hi)
	}
}

// bandEdges returns the edges of sig's learned normal band, widened by
// the detector's margin: readings beyond them count as away from normal.
func bandEdges(d *detect.Detector, sig sensors.Signal) (lo, hi float64, ok bool) {
	b, ok := d.Band(sig)
	if !ok || !b.Ready || math.IsNaN(b.Low) || math.IsNaN(b.High) {
		return 0, 0, false
	}
	m := b.Margin
	if math.IsNaN(m) {
		m = 0
	}
	return b.Low - m, b.High + m, true
}

// band returns sig's band edges, reusing buf's storage; nil if none.
func band(d *detect.Detector, sig sensors.Signal, buf *[2]float64) *[2]float64 {
	lo, hi, ok := bandEdges(d, sig)
	if !ok {
		return nil
	}
	if buf == nil {
		buf = new([2]float64)
	}
	*buf = [2]float64{lo, hi}
	return buf
}

// Known adds trucks the cloud has heard of before (after a restart), so
// that a silent truck is still listed, as offline, until it speaks.
func (c *Console) Known(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.trucks[id] == nil {
			c.truck(id)
		}
	}
}

// Status records a truck's online/offline status message.
func (c *Console) Status(truck string, online bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.truck(truck)
	t.Online = online
	if online {
		t.LastSeen = now.UTC()
	}
}

// Alert records an alert transition from source ("edge" or "cloud") and
// pushes it to live clients at once.
func (c *Console) Alert(source string, tr detect.Transition) {
	a := Alert{
		Source: source, Truck: tr.Truck, Signal: tr.Signal.String(), Kind: tr.Kind.String(),
		Severity: tr.Severity.String(), Phase: tr.Phase.String(), Key: tr.Key(),
		Start: time.Unix(0, tr.Start).UTC(), Time: time.Unix(0, tr.Time).UTC(), Value: tr.Value,
	}
	data, err := json.Marshal(a)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.truck(tr.Truck)
	k := source + "|" + tr.Key()
	if tr.Phase == detect.Cleared {
		delete(t.open, k)
	} else {
		t.open[k] = tr.Severity
	}
	clear(t.OpenAlerts)
	worst := detect.SeverityNone
	for k, sev := range t.open {
		src, _, _ := cut(k)
		t.OpenAlerts[src]++
		worst = max(worst, sev)
	}
	t.Severity = worst.String()
	c.alerts = append(c.alerts, a)
	if len(c.alerts) > MaxAlerts {
		c.alerts = slices.Delete(c.alerts, 0, len(c.alerts)-MaxAlerts)
	}
	c.broadcastLocked(event{"alert", data})
}

func cut(k string) (string, string, bool) {
	for i := range k {
		if k[i] == '|' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// Trucks returns a copy of every truck's view, sorted by id.
func (c *Console) Trucks() []Truck {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Truck, 0, len(c.trucks))
	now := c.opts.Now()
	for _, t := range c.trucks {
		out = append(out, c.view(t, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// view returns a copy of t with Online also false after OfflineAfter of
// silence, and its Status.
func (c *Console) view(t *Truck, now time.Time) Truck {
	v := t.copy()
	if c.opts.OfflineAfter > 0 && now.Sub(t.LastSeen) >= c.opts.OfflineAfter {
		v.Online = false
	}
	switch {
	case !v.Online:
		v.Status = StatusOffline
	case v.Severity == detect.SeverityCritical.String():
		v.Status = StatusCritical
	case v.Severity == detect.SeverityWarning.String():
		v.Status = StatusWarning
	default:
		v.Status = StatusNormal
	}
	return v
}

func (t *Truck) copy() Truck {
	cp := *t
	cp.OpenAlerts = maps.Clone(t.OpenAlerts)
	cp.open, cp.det, cp.hist = nil, nil, nil
	for _, p := range []**float64{&cp.Lat, &cp.Lon, &cp.Coolant, &cp.Cargo, &cp.Speed} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	if t.CoolantBand != nil {
		b := *t.CoolantBand
		cp.CoolantBand = &b
	}
	if t.CargoBand != nil {
		b := *t.CargoBand
		cp.CargoBand = &b
	}
	return cp
}

// Alerts returns the recent alert transitions, newest last.
func (c *Console) Alerts() []Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.alerts)
}

// Run pushes changed trucks to live clients every Tick until ctx ends;
// then it ends the live streams.
func (c *Console) Run(ctx context.Context) error {
	defer close(c.done)
	tick := time.NewTicker(c.opts.Tick)
	defer tick.Stop()
	sweep := time.NewTicker(5 * time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.pushDirty()
		case <-sweep.C:
			c.markSilent()
		}
	}
}

func (c *Console) pushDirty() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) == 0 || len(c.subs) == 0 {
		clear(c.dirty)
		return
	}
	batch := make([]Truck, 0, len(c.dirty))
	now := c.opts.Now()
	for id := range c.dirty {
		batch = append(batch, c.view(c.trucks[id], now))
	}
	clear(c.dirty)
	data, err := json.Marshal(batch)
	if err != nil {
		return
	}
	c.broadcastLocked(event{"trucks", data})
}

// markSilent marks trucks that fell silent as changed, so live clients
// see them go offline.
func (c *Console) markSilent() {
	if c.opts.OfflineAfter <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	for id, t := range c.trucks {
		if silent := now.Sub(t.LastSeen) >= c.opts.OfflineAfter; silent && !t.shownSilent {
			t.shownSilent = true
			c.dirty[id] = true
		} else if !silent {
			t.shownSilent = false
		}
	}
}

// IncidentView is an incident as the console serves it: the store's
// incident plus the console's snooze, if any.
type IncidentView struct {
	incident.Incident
	Snooze *Snooze `json:"snooze,omitempty"`
}

func (c *Console) incidentView(inc incident.Incident) IncidentView {
	v := IncidentView{Incident: inc}
	c.mu.Lock()
	if s, ok := c.snoozes[inc.ID]; ok && c.opts.Now().Before(s.Until) && inc.State != incident.StateResolved {
		v.Snooze = &s
	}
	c.mu.Unlock()
	return v
}

// IncidentChanged pushes a changed incident to live clients.
func (c *Console) IncidentChanged(inc incident.Incident) {
	data, err := json.Marshal(c.incidentView(inc))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broadcastLocked(event{"incident", data})
}

func (c *Console) broadcastLocked(e event) {
	for ch := range c.subs {
		select {
		case ch <- e:
		default:
			// A slow client loses its stream; the browser reconnects and
			// reloads the snapshot.
			c.dropped.Add(1)
			close(ch)
			delete(c.subs, ch)
		}
	}
}

// DroppedClients returns how many live clients were cut off for being slow.
func (c *Console) DroppedClients() uint64 { return c.dropped.Load() }

// BadRequests returns how many malformed API requests were rejected.
func (c *Console) BadRequests() uint64 { return c.badRequests.Load() }

// AuthCounters returns the sign-in counters (zero before Open).
func (c *Console) AuthCounters() auth.Counters {
	if a := c.auth.Load(); a != nil {
		return a.Counters()
	}
	return auth.Counters{}
}
