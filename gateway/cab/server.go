package cab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// UplinkState is what the page shows about the link to the fleet team.
type UplinkState struct {
	// Online is true while the MQTT session to the broker is up.
	Online bool
	// Backlog is how many records (readings, alerts, acknowledgements) wait
	// in the store-and-forward queue for the broker's acknowledgement.
	Backlog int
	// LastSent is when the broker last acknowledged something; zero if
	// never.
	LastSent time.Time
}

// Stats are the Server's counters. Every rejected request and every
// dropped page connection is counted here.
type Stats struct {
	// Clients is the number of pages connected now.
	Clients int
	// Events is how many events were written to pages, all pages together.
	Events uint64
	// BadRequests counts HTTP requests rejected with a 4xx status.
	BadRequests uint64
	// DriverAcks counts acknowledgements made with the cab button that
	// produced a detect.Ack.
	DriverAcks uint64
	// RemoteAcks counts operators' acknowledgements applied to an open
	// alert; RemoteAcksUnmatched those that named no open alert.
	RemoteAcks, RemoteAcksUnmatched uint64
	// SlowClients counts pages disconnected because they fell behind.
	SlowClients uint64
	// GPIOErrors counts failed writes to the GPIO line.
	GPIOErrors uint64
	// GPIO is "off" (none configured), "ok", or the error that kept the
	// line from opening.
	GPIO string
}

// maxQueued is how many events may wait for one page before it is
// disconnected as too slow (it reconnects and re-syncs).
const maxQueued = 1024

// reading is the latest value of one signal.
type reading struct {
	v    float64
	at   int64 // when the gateway received it, Unix ms
	have bool
}

// alert is the cab's view of one open alert.
type alert struct {
	t    detect.Transition // the latest transition
	key  string
	text AlertText
	// driverAck is the severity the driver acknowledged (SeverityNone:
	// not acknowledged); it never exceeds the alert's current severity.
	driverAck   detect.Severity
	driverAckAt int64 // Unix ms
	// remote is the latest fleet user's acknowledgement; Origin is
	// AckFleet if there is one.
	remote detect.Ack
}

// client is one connected page's event stream.
type client struct {
	wake    chan struct{} // cap 1
	queue   [][]byte      // guarded by Server.mu
	tooSlow bool          // guarded by Server.mu
}

// Server is the cab display of one truck. Its feed methods (Readings,
// Transition, Uplink, SetBand, RemoteAck) and Stats are safe for
// concurrent use and never block on a page; they copy what they need, so
// callers keep ownership of what they pass.
type Server struct {
	cfg   Config
	truck string
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux
	buzz  *buzzer
	ready chan struct{}
	addr  atomic.Pointer[string]
	ran   atomic.Bool

	badReq, events, driverAcks, remoteAcks, remoteUnmatched, slow atomic.Uint64
	badLog                                                        throttle

	mu        sync.Mutex
	onAck     func(detect.Ack)
	values    [sensors.NumSignals]reading
	bands     [sensors.NumSignals]Band
	uplink    UplinkState
	faults    faultsJSON // SetDTCs
	statusVer uint64     // bumped by every change to values, bands, uplink
	statusBuf []byte     // cached "status" event for statusAt
	statusAt  uint64
	alerts    [sensors.NumSignals]*alert
	eventID   uint64
	clients   map[*client]struct{}
	gpio      string
}

// New returns the cab display for truck. Zero fields of cfg take their
// defaults; cfg is then validated. log may be nil (silent).
func New(cfg Config, truck string, log *slog.Logger) (*Server, error) {
	if truck == "" {
		return nil, errors.New("cab: empty truck id")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "cab")
	s := &Server{
		cfg:     cfg,
		truck:   truck,
		log:     log,
		now:     time.Now,
		ready:   make(chan struct{}),
		clients: make(map[*client]struct{}),
		gpio:    "off",
		buzz:    newBuzzer(nil, cfg.Buzzer, log),
	}
	s.badLog.every = 10 * time.Second
	for name, b := range cfg.Bands {
		sig, _ := sensors.ParseSignal(name) // validated
		s.bands[sig] = b
	}
	s.routes()
	return s, nil
}

// OnAck sets the func that receives the driver's acknowledgements, to store
// and uplink them. It is called from the HTTP handler of the button press,
// after the page and buzzer are updated, never with Server locks held; the
// press is answered when it returns. Set it before Run.
func (s *Server) OnAck(f func(detect.Ack)) {
	s.mu.Lock()
	s.onAck = f
	s.mu.Unlock()
}

// SetClock sets the clock that stamps driver acknowledgements, reading
// arrival and the page's "now" (default time.Now). Pass the gateway's
// GNSS-corrected clock so that they agree with reading and alert times.
// Call it before Run and before any feed method.
func (s *Server) SetClock(now func() time.Time) {
	if now != nil {
		s.now = now
	}
}

// Handler returns the HTTP handler of the display: the page, its assets,
// /api/state, /api/events (Server-Sent Events) and /api/ack. Run serves
// it; tests and other servers may mount it themselves.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready returns a channel that is closed once Run listens; Addr is then
// set. If Run fails before it listens the channel stays open, so wait on
// Run's result as well.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address Run listens on, or "" before it listens.
func (s *Server) Addr() string {
	if p := s.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run listens on Config.Listen, serves the display and drives the GPIO
// buzzer until ctx ends, then shuts down (open event streams end with
// ctx). A GPIO line that fails to open is logged and shown on the page;
// the display still runs. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("cab: Run called twice")
	}
	if s.cfg.GPIO.Enabled() {
		l, err := openLine(s.cfg.GPIO)
		s.mu.Lock()
		if err != nil {
			s.gpio = err.Error()
			s.log.Error("cab: gpio buzzer unavailable, display only", "err", err)
		} else {
			s.gpio = "ok"
			s.buzz.line = l
			defer l.Close()
		}
		s.statusVer++
		s.mu.Unlock()
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cab listen: %w", err)
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	close(s.ready)
	s.log.Info("cab display listening", "addr", addr)

	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout),
		// A request must arrive whole within ReadTimeout and its answer
		// be written within WriteTimeout; the event stream sets a
		// deadline per write instead of the latter.
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		BaseContext:    func(net.Listener) context.Context { return ctx },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("cab serve: %w", err)
		}
		return nil
	})
	g.Go(func() error { return s.buzz.run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	})
	return g.Wait()
}

// Readings records the latest value of each reading's signal. It is cheap
// (no allocation, one lock per batch); pages see the values at most every
// Config.PageInterval. Readings with invalid signals are ignored.
func (s *Server) Readings(batch []sensors.Reading) {
	if len(batch) == 0 {
		return
	}
	at := s.now().UnixMilli()
	s.mu.Lock()
	for i := range batch {
		r := &batch[i]
		if !r.Signal.Valid() {
			continue
		}
		v := &s.values[r.Signal]
		v.v, v.at, v.have = r.Value, at, true
	}
	s.statusVer++
	s.mu.Unlock()
}

// Uplink records the state of the link to the cloud, shown on the page.
func (s *Server) Uplink(u UplinkState) {
	s.mu.Lock()
	if s.uplink != u {
		s.uplink = u
		s.statusVer++
	}
	s.mu.Unlock()
}

// SetBand sets the normal range drawn for temperature signal sig, e.g.
// from the detector's learned band widened by its margin. A band that is
// not finite or has Low >= High is ignored (the previous one stays).
func (s *Server) SetBand(sig sensors.Signal, b Band) {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if !sig.IsTemperature() || !finite(b.Low) || !finite(b.High) || !finite(b.Limit) || !(b.Low < b.High) {
		return
	}
	s.mu.Lock()
	if s.bands[sig] != b {
		s.bands[sig] = b
		s.statusVer++
	}
	s.mu.Unlock()
}

// Transition shows an alert being raised, changed or cleared. It pushes the
// change to every connected page at once and updates the buzzer; this is
// the latency-critical path. Transitions of other trucks or of invalid
// signals are ignored.
func (s *Server) Transition(t detect.Transition) {
	if !t.Signal.Valid() || (t.Truck != "" && t.Truck != s.truck) {
		return
	}
	s.mu.Lock()
	a := s.alerts[t.Signal]
	switch t.Phase {
	case detect.Raised, detect.Changed:
		if a == nil || a.t.Start != t.Start {
			a = &alert{key: alertKey(s.truck, t.Signal, t.Start)}
			s.alerts[t.Signal] = a
		}
		a.t = t
		a.text = s.cfg.textFor(t.Signal, t.Kind, t.Severity)
		// An acknowledgement never covers more than what is open now, so
		// that getting worse again sounds again.
		a.driverAck = min(a.driverAck, t.Severity)
	case detect.Cleared:
		if a != nil && a.t.Start == t.Start {
			s.alerts[t.Signal] = nil
		} else {
			// Not the open one (or none): tell the pages, keep the open one.
			a = &alert{key: alertKey(s.truck, t.Signal, t.Start), text: s.cfg.textFor(t.Signal, t.Kind, t.Severity)}
		}
		a.t = t
	default:
		s.mu.Unlock()
		return
	}
	sound := s.soundLocked()
	s.broadcastLocked("alert", s.alertEventLocked(a, sound))
	s.mu.Unlock()
	s.buzz.set(sound)
}

// RemoteAck shows that a fleet user acknowledged an alert in the fleet
// console ("acknowledged by <user>"). It does not silence the cab: the
// driver must still press the button, so a missed alarm is never silenced
// from afar. Whatever its By or Origin, an Ack that comes this way is never
// taken as the driver's: only the cab's own button makes those. It reports
// whether the Ack named an open alert.
func (s *Server) RemoteAck(a detect.Ack) bool {
	if !a.Signal.Valid() || a.Truck != s.truck {
		s.remoteUnmatched.Add(1)
		return false
	}
	s.mu.Lock()
	al := s.alerts[a.Signal]
	if al == nil || al.t.Start != a.Start {
		s.mu.Unlock()
		s.remoteUnmatched.Add(1)
		return false
	}
	a.Origin = detect.AckFleet
	if a.By == "" {
		a.By = "fleet"
	}
	al.remote = a
	sound := s.soundLocked()
	s.broadcastLocked("alert", s.alertEventLocked(al, sound))
	s.mu.Unlock()
	s.remoteAcks.Add(1)
	s.buzz.set(sound)
	return true
}

// ack applies the driver's button press on the alert named key, showing
// severity sev. It returns the Ack to store, or dup=true if that severity
// was already acknowledged.
func (s *Server) ack(key string, sev detect.Severity) (a detect.Ack, dup bool, err error) {
	now := s.now()
	s.mu.Lock()
	var al *alert
	for _, x := range s.alerts {
		if x != nil && x.key == key {
			al = x
			break
		}
	}
	if al == nil {
		s.mu.Unlock()
		return a, false, fmt.Errorf("%w %q", ErrNoAlert, key)
	}
	sev = min(sev, al.t.Severity)
	a = detect.Ack{Truck: s.truck, Signal: al.t.Signal, Start: al.t.Start, Time: now.UnixNano(), By: "driver", Severity: al.driverAck, Origin: detect.AckDriver}
	if sev <= al.driverAck {
		s.mu.Unlock()
		return a, true, nil
	}
	al.driverAck, al.driverAckAt = sev, now.UnixMilli()
	a.Severity = sev
	sound := s.soundLocked()
	s.broadcastLocked("alert", s.alertEventLocked(al, sound))
	cb := s.onAck
	s.mu.Unlock()
	s.buzz.set(sound)
	s.driverAcks.Add(1)
	if cb != nil {
		cb(a)
	} else {
		s.log.Warn("cab: driver acknowledgement not delivered: no OnAck func", "alert", key)
	}
	return a, false, nil
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	clients, gpio := len(s.clients), s.gpio
	s.mu.Unlock()
	return Stats{
		Clients: clients, Events: s.events.Load(), BadRequests: s.badReq.Load(),
		DriverAcks: s.driverAcks.Load(), RemoteAcks: s.remoteAcks.Load(),
		RemoteAcksUnmatched: s.remoteUnmatched.Load(), SlowClients: s.slow.Load(),
		GPIOErrors: s.buzz.errs.Load(), GPIO: gpio,
	}
}

// soundLocked returns the severity that should sound: the worst open
// alert whose severity the driver has not acknowledged.
func (s *Server) soundLocked() detect.Severity {
	sound := detect.SeverityNone
	for _, a := range s.alerts {
		if a != nil && a.t.Severity > a.driverAck && a.t.Severity > sound {
			sound = a.t.Severity
		}
	}
	return sound
}

// broadcastLocked queues one event for every connected page and wakes
// them. data must not be modified afterwards.
func (s *Server) broadcastLocked(name string, data []byte) {
	s.eventID++
	ev := make([]byte, 0, len(data)+len(name)+40)
	ev = append(ev, "id: "...)
	ev = strconv.AppendUint(ev, s.eventID, 10)
	ev = append(ev, "\nevent: "...)
	ev = append(ev, name...)
	ev = append(ev, "\ndata: "...)
	ev = append(ev, data...)
	ev = append(ev, "\n\n"...)
	for c := range s.clients {
		if len(c.queue) >= maxQueued {
			c.tooSlow = true
		} else {
			c.queue = append(c.queue, ev)
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// alertKey is detect.Transition.Key / detect.Ack.Key for one alert.
func alertKey(truck string, sig sensors.Signal, start int64) string {
	return detect.Ack{Truck: truck, Signal: sig, Start: start}.Key()
}

// --- JSON sent to the page ---

// num is a float that encodes as null when it is not finite.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'f', -1, 64), nil
}

type valueJSON struct {
	V  num   `json:"v"`
	At int64 `json:"at"` // received, Unix ms
}

// bandJSON is a band; low and high are absent while the range is not
// known (not yet learned).
type bandJSON struct {
	Low   *num `json:"low,omitempty"`
	High  *num `json:"high,omitempty"`
	Limit num  `json:"limit,omitempty"`
}

type textJSON struct {
	Title string `json:"title"`
	What  string `json:"what"`
	Do    string `json:"do"`
}

type uplinkJSON struct {
	Online   bool  `json:"online"`
	Backlog  int   `json:"backlog"`
	LastSent int64 `json:"lastSent,omitempty"` // Unix ms
}

type statusJSON struct {
	Now    int64                `json:"now"`
	Values map[string]valueJSON `json:"values"`
	Bands  map[string]bandJSON  `json:"bands"`
	Uplink uplinkJSON           `json:"uplink"`
	GPIO   string               `json:"gpio"`
	Faults faultsJSON           `json:"faults"`
}

type ackJSON struct {
	Severity string `json:"severity"`
	At       int64  `json:"at"` // Unix ms
	By       string `json:"by"`
}

type alertJSON struct {
	Key       string   `json:"key"`
	Signal    string   `json:"signal"`
	Unit      string   `json:"unit"`
	Kind      string   `json:"kind"`
	Severity  string   `json:"severity"`
	Phase     string   `json:"phase"`
	Start     int64    `json:"start"` // Unix ms
	Time      int64    `json:"time"`  // Unix ms
	Value     num      `json:"value"`
	Baseline  num      `json:"baseline"`
	Title     string   `json:"title"`
	What      string   `json:"what"`
	Do        string   `json:"do"`
	DriverAck *ackJSON `json:"driverAck"`
	RemoteAck *ackJSON `json:"remoteAck"`
	// Critical is the text of this signal's critical limit, for an alert
	// below critical: the page shows it while the reading is above the
	// limit (the detector takes its sustain period to say critical, and
	// the banner must not say "check soon" meanwhile).
	Critical *textJSON `json:"critical,omitempty"`
}

type alertEventJSON struct {
	Now   int64     `json:"now"`
	Sound string    `json:"sound"`
	Alert alertJSON `json:"alert"`
}

type stateJSON struct {
	Truck        string             `json:"truck"`
	StaleAfterMS int64              `json:"staleAfterMs"`
	HeartbeatMS  int64              `json:"heartbeatMs"`
	Patterns     map[string][]int64 `json:"patterns"` // ms, on/off
	Status       statusJSON         `json:"status"`
	Alerts       []alertJSON        `json:"alerts"`
	Sound        string             `json:"sound"`
}

func (s *Server) alertJSONLocked(a *alert) alertJSON {
	t := a.t
	j := alertJSON{
		Key: a.key, Signal: t.Signal.String(), Unit: t.Signal.Unit(), Kind: t.Kind.String(),
		Severity: t.Severity.String(), Phase: t.Phase.String(),
		Start: t.Start / 1e6, Time: t.Time / 1e6, Value: num(t.Value), Baseline: num(t.Baseline),
		Title: a.text.Title, What: a.text.What, Do: a.text.Do,
	}
	if a.driverAck > detect.SeverityNone {
		j.DriverAck = &ackJSON{Severity: a.driverAck.String(), At: a.driverAckAt, By: "driver"}
	}
	if a.remote.Origin == detect.AckFleet {
		j.RemoteAck = &ackJSON{Severity: a.remote.Severity.String(), At: a.remote.Time / 1e6, By: a.remote.By}
	}
	if t.Severity < detect.SeverityCritical && t.Signal.IsTemperature() {
		c := s.cfg.textFor(t.Signal, detect.KindLimit, detect.SeverityCritical)
		j.Critical = &textJSON{Title: c.Title, What: c.What, Do: c.Do}
	}
	return j
}

func (s *Server) alertEventLocked(a *alert, sound detect.Severity) []byte {
	b, err := json.Marshal(alertEventJSON{Now: s.now().UnixMilli(), Sound: sound.String(), Alert: s.alertJSONLocked(a)})
	if err != nil { // cannot happen: every field encodes
		panic(fmt.Sprintf("cab: encode alert: %v", err))
	}
	return b
}

func (s *Server) statusJSONLocked() statusJSON {
	st := statusJSON{
		Now:    s.now().UnixMilli(),
		Values: make(map[string]valueJSON, 8),
		Bands:  make(map[string]bandJSON, 2),
		Uplink: uplinkJSON{Online: s.uplink.Online, Backlog: s.uplink.Backlog},
		GPIO:   s.gpio,
		Faults: s.faults,
	}
	if st.Faults.Codes == nil {
		st.Faults.Codes = []faultJSON{}
	}
	if !s.uplink.LastSent.IsZero() {
		st.Uplink.LastSent = s.uplink.LastSent.UnixMilli()
	}
	for i, v := range s.values {
		if v.have {
			st.Values[sensors.Signal(i).String()] = valueJSON{V: num(v.v), At: v.at}
		}
	}
	for i, b := range s.bands {
		if b != (Band{}) {
			j := bandJSON{Limit: num(b.Limit)}
			if b.Low < b.High {
				lo, hi := num(b.Low), num(b.High)
				j.Low, j.High = &lo, &hi
			}
			st.Bands[sensors.Signal(i).String()] = j
		}
	}
	return st
}

// statusEventLocked returns the "status" event data for the current
// statusVer, encoding it once for all pages.
func (s *Server) statusEventLocked() []byte {
	if s.statusBuf == nil || s.statusAt != s.statusVer {
		b, err := json.Marshal(s.statusJSONLocked())
		if err != nil {
			panic(fmt.Sprintf("cab: encode status: %v", err))
		}
		s.statusBuf, s.statusAt = b, s.statusVer
	}
	return s.statusBuf
}

func (s *Server) stateLocked() stateJSON {
	ms := func(p Pattern) []int64 {
		out := make([]int64, len(p))
		for i, d := range p {
			out[i] = d.Milliseconds()
		}
		return out
	}
	st := stateJSON{
		Truck:        s.truck,
		StaleAfterMS: s.cfg.StaleAfter.Milliseconds(),
		HeartbeatMS:  s.cfg.Heartbeat.Milliseconds(),
		Patterns: map[string][]int64{
			"info": ms(s.cfg.Buzzer.Info), "warning": ms(s.cfg.Buzzer.Warning), "critical": ms(s.cfg.Buzzer.Critical),
		},
		Status: s.statusJSONLocked(),
		Alerts: []alertJSON{},
		Sound:  s.soundLocked().String(),
	}
	for _, a := range s.alerts {
		if a != nil {
			st.Alerts = append(st.Alerts, s.alertJSONLocked(a))
		}
	}
	return st
}

// throttle lets one log line through per period and counts the rest.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	n     int
}

// allow reports whether to log now, and how many were suppressed before.
func (t *throttle) allow(now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last) < t.every {
		t.n++
		return false, 0
	}
	n := t.n
	t.last, t.n = now, 0
	return true, n
}
