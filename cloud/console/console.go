package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

//go:embed assets
var assets embed.FS

// MaxAlerts is how many recent alert transitions the console keeps.
const MaxAlerts = 500

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
	// OpenAlerts counts alerts raised and not cleared, per source.
	OpenAlerts map[string]int `json:"open_alerts"`
	// Severity is the worst open alert's severity ("none" if none).
	Severity string `json:"severity"`

	open        map[string]detect.Severity // open alert key+source -> severity
	shownSilent bool
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

// IncidentAPI is what the console needs from the incident store.
type IncidentAPI interface {
	List() []incident.Incident
	Acknowledge(id, by string) (incident.Incident, error)
	Resolve(id, by string) (incident.Incident, error)
}

// Options configure a Console.
type Options struct {
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
}

// Console holds the fleet view and serves it. All methods are safe for
// concurrent use.
type Console struct {
	log  *slog.Logger
	opts Options

	mu     sync.Mutex
	trucks map[string]*Truck
	alerts []Alert
	dirty  map[string]bool
	subs   map[chan event]struct{}

	done        chan struct{}
	dropped     atomic.Uint64
	badRequests atomic.Uint64
}

// New returns an empty console.
func New(log *slog.Logger, opts Options) *Console {
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	return &Console{
		log: log, opts: opts,
		trucks: map[string]*Truck{}, dirty: map[string]bool{}, subs: map[chan event]struct{}{},
		done: make(chan struct{}),
	}
}

func (c *Console) truck(id string) *Truck {
	t := c.trucks[id]
	if t == nil {
		t = &Truck{ID: id, OpenAlerts: map[string]int{}, Severity: "none", open: map[string]detect.Severity{}}
		c.trucks[id] = t
	}
	c.dirty[id] = true
	return t
}

// Readings folds a truck's newly accepted readings into its view; now is
// when the cloud received them.
func (c *Console) Readings(truck string, rs []sensors.Reading, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.truck(truck)
	t.LastSeen = now.UTC()
	t.Online = true
	var newest int64
	if !t.DataTime.IsZero() {
		newest = t.DataTime.UnixNano()
	}
	for _, r := range rs {
		if r.Time < newest {
			continue // late data must not overwrite the current view
		}
		newest = r.Time
		v := r.Value
		switch r.Signal {
		case sensors.GNSSLatitude, sensors.VPLatitude:
			t.Lat = &v
		case sensors.GNSSLongitude, sensors.VPLongitude:
			t.Lon = &v
		case sensors.CoolantTemp:
			t.Coolant = &v
		case sensors.CargoTemp:
			t.Cargo = &v
		case sensors.WheelSpeed:
			t.Speed = &v
		}
	}
	if newest != 0 {
		t.DataTime = time.Unix(0, newest).UTC()
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
	now := time.Now()
	for _, t := range c.trucks {
		out = append(out, c.view(t, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// view returns a copy of t with Online also false after OfflineAfter of
// silence.
func (c *Console) view(t *Truck, now time.Time) Truck {
	v := t.copy()
	if c.opts.OfflineAfter > 0 && now.Sub(t.LastSeen) >= c.opts.OfflineAfter {
		v.Online = false
	}
	return v
}

func (t *Truck) copy() Truck {
	cp := *t
	cp.OpenAlerts = maps.Clone(t.OpenAlerts)
	cp.open = nil
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
	if len(c.dirty) == 0 {
		return
	}
	batch := make([]Truck, 0, len(c.dirty))
	now := time.Now()
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
	now := time.Now()
	for id, t := range c.trucks {
		if silent := now.Sub(t.LastSeen) >= c.opts.OfflineAfter; silent && !t.shownSilent {
			t.shownSilent = true
			c.dirty[id] = true
		} else if !silent {
			t.shownSilent = false
		}
	}
}

// IncidentChanged pushes a changed incident to live clients.
func (c *Console) IncidentChanged(inc incident.Incident) {
	data, err := json.Marshal(inc)
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

// Handler returns the console's HTTP handler.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/trucks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Trucks()) })
	mux.HandleFunc("GET /api/alerts", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Alerts()) })
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		if c.opts.Stats == nil {
			writeJSON(w, struct{}{})
			return
		}
		writeJSON(w, c.opts.Stats())
	})
	mux.HandleFunc("GET /api/events", c.serveEvents)
	mux.HandleFunc("GET /api/incidents", func(w http.ResponseWriter, r *http.Request) {
		if c.opts.Incidents == nil {
			writeJSON(w, []incident.Incident{})
			return
		}
		writeJSON(w, c.opts.Incidents.List())
	})
	mux.HandleFunc("POST /api/incidents/{id}/{action}", c.serveIncidentAction)
	return mux
}

// actionRequest is the body of POST /api/incidents/{id}/{ack|resolve}.
type actionRequest struct {
	By string `json:"by"`
}

func (c *Console) serveIncidentAction(w http.ResponseWriter, r *http.Request) {
	if c.opts.Incidents == nil {
		http.Error(w, "incidents disabled", http.StatusNotFound)
		return
	}
	var req actionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.badRequests.Add(1)
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.By == "" || len(req.By) > 128 || !utf8.ValidString(req.By) {
		c.badRequests.Add(1)
		http.Error(w, `"by" must be 1-128 bytes of UTF-8`, http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	var inc incident.Incident
	var err error
	switch r.PathValue("action") {
	case "ack":
		inc, err = c.opts.Incidents.Acknowledge(id, req.By)
	case "resolve":
		inc, err = c.opts.Incidents.Resolve(id, req.By)
	default:
		c.badRequests.Add(1)
		http.Error(w, "unknown action "+r.PathValue("action"), http.StatusNotFound)
		return
	}
	switch {
	case errors.Is(err, incident.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, incident.ErrState):
		http.Error(w, err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		writeJSON(w, inc)
	}
}

// BadRequests returns how many malformed API requests were rejected.
func (c *Console) BadRequests() uint64 { return c.badRequests.Load() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan event, 256)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if _, ok := c.subs[ch]; ok {
			delete(c.subs, ch)
		}
		c.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 1000\n: hello\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case <-keep.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
			fl.Flush()
		}
	}
}
