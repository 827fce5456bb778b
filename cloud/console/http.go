package console

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

//go:embed assets
var assets embed.FS

// public are the assets served without a session (the sign-in page).
var public = map[string]bool{"/login": true, "/login.html": true, "/login.js": true, "/style.css": true, "/favicon.svg": true}

// Handler returns the console's HTTP handler. Every route but the
// sign-in page and POST /api/login, /api/logout needs a session or API
// token (see package auth); acting on incidents needs the operator role.
//
//	GET  /api/me                      the caller: user, role, CSRF token
//	GET  /api/config                  map tiles
//	GET  /api/trucks                  every truck's latest view
//	GET  /api/trucks/{id}?since=unix  one truck with its chart history
//	GET  /api/alerts                  recent alert transitions
//	GET  /api/incidents[?truck=id]    incidents, newest first
//	GET  /api/incidents/{id}          one incident with history and notification log
//	POST /api/incidents/{id}/ack      operator: acknowledge ({} or {"note":...})
//	POST /api/incidents/{id}/resolve  operator: resolve
//	POST /api/incidents/{id}/snooze   operator: {"minutes": 1-1440}
//	GET  /api/events                  Server-Sent Events: trucks, alert, incident
//	GET  /api/stats                   counters
//	GET  /api/users                   admin: users and roles (no hashes)
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	viewer := func(h http.HandlerFunc) http.Handler { return c.require(auth.RoleViewer, h) }

	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			r2 := *r
			u := *r.URL
			u.Path = "/login.html"
			r2.URL = &u
			files.ServeHTTP(w, &r2)
			return
		}
		if public[r.URL.Path] {
			files.ServeHTTP(w, r)
			return
		}
		c.require(auth.RoleViewer, files).ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /api/login", func(w http.ResponseWriter, r *http.Request) {
		a := c.auth.Load()
		if a == nil {
			http.Error(w, "console starting", http.StatusServiceUnavailable)
			return
		}
		a.HandleLogin(w, r)
	})
	mux.HandleFunc("POST /api/logout", func(w http.ResponseWriter, r *http.Request) {
		if a := c.auth.Load(); a != nil {
			a.HandleLogout(w, r)
		}
	})
	mux.Handle("GET /api/me", viewer(func(w http.ResponseWriter, r *http.Request) { c.auth.Load().HandleMe(w, r) }))
	mux.Handle("GET /api/config", viewer(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"tile_url": c.opts.Config.TileURL, "tile_attribution": c.opts.Config.TileAttribution,
			"history_s": int64(c.opts.Config.History / time.Second), "offline_after_s": int64(c.opts.OfflineAfter / time.Second)})
	}))
	mux.Handle("GET /api/trucks", viewer(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Trucks()) }))
	mux.Handle("GET /api/trucks/{id}", viewer(c.serveTruck))
	mux.Handle("GET /api/alerts", viewer(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Alerts()) }))
	mux.Handle("GET /api/stats", viewer(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"console_dropped_clients": c.DroppedClients(), "console_auth": c.AuthCounters()}
		if c.opts.Stats != nil {
			if b, err := json.Marshal(c.opts.Stats()); err == nil {
				var m map[string]any
				if json.Unmarshal(b, &m) == nil {
					for k, v := range m {
						out[k] = v
					}
				}
			}
		}
		writeJSON(w, out)
	}))
	mux.Handle("GET /api/events", viewer(c.serveEvents))
	mux.Handle("GET /api/incidents", viewer(c.serveIncidents))
	mux.Handle("GET /api/incidents/{id}", viewer(c.serveIncident))
	mux.Handle("POST /api/incidents/{id}/{action}", c.require(auth.RoleOperator, http.HandlerFunc(c.serveIncidentAction)))
	mux.Handle("GET /api/users", c.require(auth.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.auth.Load().Users())
	})))
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:"
	if o := c.opts.Config.tileOrigin(); o != "" {
		csp += " " + o
	}
	csp += "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

// require wraps h with the authenticator's check for role min; 503 before
// Open.
func (c *Console) require(min auth.Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := c.auth.Load()
		if a == nil {
			http.Error(w, "console starting", http.StatusServiceUnavailable)
			return
		}
		a.Require(min, h).ServeHTTP(w, r)
	})
}

func (c *Console) badRequest(w http.ResponseWriter, code int, format string, a ...any) {
	c.badRequests.Add(1)
	http.Error(w, fmt.Sprintf(format, a...), code)
}

// serveTruck answers one truck's view, its chart history since ?since
// (Unix seconds; default the whole history) and its detector limits.
func (c *Console) serveTruck(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var since int64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			c.badRequest(w, http.StatusBadRequest, "since %q: want Unix seconds", s)
			return
		}
		since = v
	}
	c.mu.Lock()
	t := c.trucks[id]
	if t == nil {
		c.mu.Unlock()
		http.Error(w, "no truck "+id, http.StatusNotFound)
		return
	}
	view, err := json.Marshal(c.view(t, c.opts.Now()))
	var b []byte
	b = append(b, `{"truck":`...)
	b = append(b, view...)
	b = append(b, `,"history":`...)
	b = t.hist.appendJSON(b, since)
	c.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	limits := map[string]map[string]*float64{}
	for sig, sc := range map[sensors.Signal]detect.SignalConfig{sensors.CoolantTemp: c.opts.Detect.Coolant, sensors.CargoTemp: c.opts.Detect.Cargo} {
		limits[sig.String()] = map[string]*float64{"warn_high": finite(sc.WarnHigh), "crit_high": finite(sc.CritHigh), "warn_low": finite(sc.WarnLow)}
	}
	lb, _ := json.Marshal(limits)
	b = append(b, `,"limits":`...)
	b = append(b, lb...)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func finite(v float64) *float64 {
	if v != v || v > 1e300 || v < -1e300 {
		return nil
	}
	return &v
}

func (c *Console) incidents() []IncidentView {
	if c.opts.Incidents == nil {
		return []IncidentView{}
	}
	l := c.opts.Incidents.List()
	out := make([]IncidentView, 0, len(l))
	for _, inc := range l {
		out = append(out, c.incidentView(inc))
	}
	return out
}

func (c *Console) serveIncidents(w http.ResponseWriter, r *http.Request) {
	l := c.incidents()
	if truck := r.URL.Query().Get("truck"); truck != "" {
		out := l[:0]
		for _, inc := range l {
			if inc.Truck == truck {
				out = append(out, inc)
			}
		}
		l = out
	}
	writeJSON(w, l)
}

func (c *Console) serveIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, inc := range c.incidents() {
		if inc.ID == id {
			writeJSON(w, inc)
			return
		}
	}
	http.Error(w, "no incident "+id, http.StatusNotFound)
}

// actionRequest is the body of POST /api/incidents/{id}/{action}. Who
// acts is the signed-in user, never the body.
type actionRequest struct {
	// Note is free text kept in the console log.
	Note string `json:"note,omitempty"`
	// Minutes is how long a snooze lasts (1-1440).
	Minutes int `json:"minutes,omitempty"`
}

func (c *Console) serveIncidentAction(w http.ResponseWriter, r *http.Request) {
	if c.opts.Incidents == nil {
		http.Error(w, "incidents disabled", http.StatusNotFound)
		return
	}
	s, _ := auth.FromContext(r.Context())
	var req actionRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		c.badRequest(w, http.StatusRequestEntityTooLarge, "action body: %v", err)
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			c.badRequest(w, http.StatusBadRequest, "action body: %v", err)
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			c.badRequest(w, http.StatusBadRequest, "action body: more than one JSON value")
			return
		}
	}
	if len(req.Note) > 1024 {
		c.badRequest(w, http.StatusBadRequest, "note: at most 1024 bytes")
		return
	}
	id := r.PathValue("id")
	var inc incident.Incident
	action := r.PathValue("action")
	switch action {
	case "ack":
		inc, err = c.opts.Incidents.Acknowledge(id, s.User)
	case "resolve":
		inc, err = c.opts.Incidents.Resolve(id, s.User)
	case "snooze":
		if req.Minutes < 1 || req.Minutes > 1440 {
			c.badRequest(w, http.StatusBadRequest, "minutes %d: want 1-1440", req.Minutes)
			return
		}
		inc, err = c.snooze(id, s.User, time.Duration(req.Minutes)*time.Minute)
	default:
		c.badRequest(w, http.StatusNotFound, "unknown action %q: want ack, resolve or snooze", action)
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
		c.log.Info("incident action", "action", action, "incident", id, "truck", inc.Truck, "by", s.User, "note", req.Note)
		v := c.incidentView(inc)
		if action == "snooze" {
			// The store may not tell the console about a snooze it keeps.
			if data, err := json.Marshal(v); err == nil {
				c.mu.Lock()
				c.broadcastLocked(event{"incident", data})
				c.mu.Unlock()
			}
		}
		writeJSON(w, v)
	}
}

// snooze snoozes incident id for d: in the incident store if it can,
// else in the console.
func (c *Console) snooze(id, by string, d time.Duration) (incident.Incident, error) {
	now := c.opts.Now()
	if s, ok := c.opts.Incidents.(snoozer); ok {
		inc, err := s.Snooze(id, by, now.Add(d))
		if err == nil {
			c.mu.Lock()
			c.snoozes[id] = Snooze{By: by, At: now.UTC(), Until: now.Add(d).UTC()}
			c.mu.Unlock()
		}
		return inc, err
	}
	for _, inc := range c.opts.Incidents.List() {
		if inc.ID != id {
			continue
		}
		if inc.State == incident.StateResolved {
			return inc, fmt.Errorf("%w: snooze resolved incident", incident.ErrState)
		}
		c.mu.Lock()
		c.snoozes[id] = Snooze{By: by, At: now.UTC(), Until: now.Add(d).UTC()}
		for k, s := range c.snoozes { // forget expired snoozes
			if !now.Before(s.Until) {
				delete(c.snoozes, k)
			}
		}
		c.mu.Unlock()
		return inc, nil
	}
	return incident.Incident{}, fmt.Errorf("%w: %s", incident.ErrNotFound, id)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// serveEvents streams trucks, alert and incident events. It ends the
// stream with an "auth" event when the session expires.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan event, 256)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// The stream outlives the server's timeouts: the read deadline ends
	// once the request is read (net/http clears it), and a deadline per
	// event replaces the server's WriteTimeout.
	rc := http.NewResponseController(w)
	send := func(format string, a ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(c.opts.Config.EventWriteTimeout))
		if _, err := fmt.Fprintf(w, format, a...); err != nil {
			c.slowClient(err)
			return false
		}
		if err := rc.Flush(); err != nil {
			c.slowClient(err)
			return false
		}
		return true
	}
	if !send("retry: 1000\n: hello\n\n") {
		return
	}
	keep := time.NewTicker(c.opts.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case <-keep.C:
			if _, ok := c.auth.Load().Authenticate(r); !ok {
				send("event: auth\ndata: {}\n\n")
				return
			}
			if !send(": keepalive\n\n") {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			if !send("event: %s\ndata: %s\n\n", e.name, e.data) {
				return
			}
		}
	}
}

// slowClient counts a live stream ended because a write failed or missed
// its deadline.
func (c *Console) slowClient(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.dropped.Add(1)
	}
}

// Server returns an HTTP server for h (the console's Handler, possibly
// wrapped) with the console's read, write and idle timeouts. The caller
// serves and shuts it down.
func (c *Console) Server(h http.Handler) *http.Server {
	cfg := c.opts.Config
	return &http.Server{Handler: h, ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout), ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: 64 << 10}
}

// Require wraps h so that it needs a session or API token whose role
// allows min (see auth.Authenticator.Require), for other endpoints the
// cloud serves next to the console, such as /metrics.
func (c *Console) Require(min auth.Role, h http.Handler) http.Handler { return c.require(min, h) }
