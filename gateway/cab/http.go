package cab

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
)

//go:embed web
var webFS embed.FS

// maxAckBody bounds the body of an acknowledgement request.
const maxAckBody = 1 << 10

func (s *Server) routes() {
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	files := http.FileServerFS(static)
	m := http.NewServeMux()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			s.reject(w, r, http.StatusNotFound, "no such page %q", r.URL.Path)
			return
		}
		if !s.method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		pageHeaders(w.Header())
		files.ServeHTTP(w, r) // serves index.html for "/"
	})
	m.HandleFunc("/static/", func(w http.ResponseWriter, r *http.Request) {
		if !s.method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if _, err := fs.Stat(static, name); err != nil || name == "" || name == "index.html" {
			s.reject(w, r, http.StatusNotFound, "no such file %q", r.URL.Path)
			return
		}
		pageHeaders(w.Header())
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	})
	m.HandleFunc("/api/state", s.handleState)
	m.HandleFunc("/api/events", s.handleEvents)
	m.HandleFunc("/api/ack", s.handleAck)
	m.HandleFunc("/api/stats", s.handleStats)
	s.mux = m
}

// pageHeaders are set on the page and its assets: revalidate on every
// load (a new gateway build shows at once), and let the browser load
// nothing from anywhere but this gateway.
func pageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

// reject answers a bad request with a plain-text error naming what was
// wrong, counts it, and logs it (throttled).
func (s *Server) reject(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	s.badReq.Add(1)
	msg := fmt.Sprintf(format, args...)
	if ok, suppressed := s.badLog.allow(s.now()); ok {
		s.log.Warn("cab: rejected request", "method", r.Method, "path", r.URL.Path, "status", code, "err", msg, "suppressed", suppressed)
	}
	http.Error(w, msg, code)
}

// method checks r's method against allowed, rejecting it with 405 if not.
func (s *Server) method(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.reject(w, r, http.StatusMethodNotAllowed, "%s: method %s not allowed, use %s", r.URL.Path, r.Method, strings.Join(allowed, " or "))
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodGet) {
		return
	}
	s.mu.Lock()
	st := s.stateLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}

// ackRequest is the body of POST /api/ack: the alert the page shows and
// the severity the driver saw.
type ackRequest struct {
	Key      string `json:"key"`
	Severity string `json:"severity"`
}

// parseAckRequest decodes and checks the body of POST /api/ack.
func parseAckRequest(body []byte) (key string, sev detect.Severity, err error) {
	var req ackRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", 0, fmt.Errorf("%w: ack body: %v", ErrBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", 0, fmt.Errorf("%w: ack body: more than one JSON value, or trailing data", ErrBadRequest)
	}
	if req.Key == "" {
		return "", 0, fmt.Errorf("%w: ack body: key is missing", ErrBadRequest)
	}
	for sv := detect.SeverityInfo; sv <= detect.SeverityCritical; sv++ {
		if sv.String() == req.Severity {
			return req.Key, sv, nil
		}
	}
	return "", 0, fmt.Errorf("%w: ack body: severity %q is not info, warning or critical", ErrBadRequest, req.Severity)
}

type ackResponse struct {
	Key       string `json:"key"`
	Severity  string `json:"severity"`
	Time      int64  `json:"time"` // Unix ms
	Duplicate bool   `json:"duplicate"`
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodPost) {
		return
	}
	// Only the display's own page may acknowledge: a page from elsewhere
	// that the tablet's browser happens to show must not silence the alarm.
	if err := s.ownPage(r); err != nil {
		s.reject(w, r, http.StatusForbidden, "ack: %v", err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.reject(w, r, http.StatusUnsupportedMediaType, "ack: content type %q, want application/json", ct)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAckBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.reject(w, r, http.StatusRequestEntityTooLarge, "ack: body larger than %d bytes", maxAckBody)
			return
		}
		s.reject(w, r, http.StatusBadRequest, "ack: read body: %v", err)
		return
	}
	key, sev, err := parseAckRequest(body)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	a, dup, err := s.ack(key, sev)
	if err != nil {
		s.reject(w, r, http.StatusConflict, "ack: %v (it may have cleared)", err)
		return
	}
	writeJSON(w, http.StatusOK, ackResponse{Key: key, Severity: a.Severity.String(), Time: a.Time / 1e6, Duplicate: dup})
}

// ownPage checks that a state-changing request comes from the display's
// own page: its Host is one of the display's names (loopback, Listen's
// host, Config.Hosts; so a rebinding DNS name is refused), and the browser
// says it is same-origin: an Origin naming that same host, and no
// Sec-Fetch-Site other than same-origin. Browsers send Origin with every
// POST, so a request with neither header is not from a page and is
// refused too.
func (s *Server) ownPage(r *http.Request) error {
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	if !s.ownHost(host) {
		return fmt.Errorf("host %q is not this display (add it to the cab's hosts if the kiosk uses that name)", r.Host)
	}
	sfs := r.Header.Get("Sec-Fetch-Site")
	if sfs != "" && sfs != "same-origin" {
		return fmt.Errorf("request from another site (Sec-Fetch-Site %s) is not this display's page", sfs)
	}
	o := r.Header.Get("Origin")
	if o == "" {
		if sfs == "" {
			return errors.New("no Origin: only the display's own page may acknowledge")
		}
		return nil
	}
	if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host != r.Host {
		return fmt.Errorf("origin %q is not this display", o)
	}
	return nil
}

// ownHost reports whether host (no port) names this display.
func (s *Server) ownHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	if h, _, err := net.SplitHostPort(s.cfg.Listen); err == nil && h != "" && strings.EqualFold(strings.Trim(h, "[]"), host) {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return true
		}
	}
	for _, h := range s.cfg.Hosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

// handleEvents streams Server-Sent Events to one page: the full "state"
// first (also on every reconnect), then "alert" events as they happen,
// "status" (readings, uplink) at most every PageInterval and "ping" every
// Heartbeat.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodGet) {
		return
	}
	rc := http.NewResponseController(w)
	// The server's ReadTimeout ends once the request is read (net/http
	// clears the read deadline then); each write has its own deadline
	// (write), replacing the server's WriteTimeout.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	c := &client{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	st := s.stateLocked()
	sentStatus := s.statusVer
	s.eventID++
	first := s.eventID
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()

	data, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("cab: encode state: %v", err))
	}
	w.WriteHeader(http.StatusOK)
	if !s.write(w, rc, fmt.Appendf(nil, "retry: 1000\nid: %d\nevent: state\ndata: %s\n\n", first, data)) {
		return
	}

	tick := time.NewTicker(s.cfg.PageInterval)
	defer tick.Stop()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	var batch [][]byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.wake:
			s.mu.Lock()
			batch, c.queue = c.queue, batch[:0]
			slow := c.tooSlow
			s.mu.Unlock()
			if slow {
				s.slow.Add(1)
				s.log.Warn("cab: page fell behind, disconnecting it", "remote", r.RemoteAddr)
				return
			}
			if !s.write(w, rc, batch...) {
				return
			}
			clear(batch)
		case <-tick.C:
			s.mu.Lock()
			if s.statusVer == sentStatus {
				s.mu.Unlock()
				continue
			}
			sentStatus = s.statusVer
			data := s.statusEventLocked()
			s.eventID++
			ev := fmt.Appendf(nil, "id: %d\nevent: status\ndata: %s\n\n", s.eventID, data)
			s.mu.Unlock()
			if !s.write(w, rc, ev) {
				return
			}
		case <-beat.C:
			if !s.write(w, rc, fmt.Appendf(nil, "event: ping\ndata: %d\n\n", s.now().UnixMilli())) {
				return
			}
		}
	}
}

// write writes events to one page and flushes them, within WriteTimeout.
// It reports false when the page is gone or too slow (counted).
func (s *Server) write(w http.ResponseWriter, rc *http.ResponseController, evs ...[]byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	var err error
	for _, ev := range evs {
		if _, err = w.Write(ev); err != nil {
			break
		}
	}
	if err == nil {
		err = rc.Flush()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.slow.Add(1)
		s.log.Warn("cab: page too slow to take events, disconnecting it", "timeout", s.cfg.WriteTimeout)
	}
	if err != nil {
		return false
	}
	s.events.Add(uint64(len(evs)))
	return true
}
