package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures sessions. Zero fields take the defaults below.
type Config struct {
	// SessionTTL is the longest a session lasts after sign-in.
	SessionTTL time.Duration `json:"session_ttl,omitempty"`
	// IdleTimeout ends a session unused for this long. An open console
	// page keeps its session alive through its live event stream.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// SecureCookie marks the session cookie Secure (HTTPS only). Set it
	// when the console is served over TLS, e.g. behind a proxy.
	SecureCookie bool `json:"secure_cookie,omitempty"`
	// MaxSessions bounds the live sessions; the oldest is ended to make room.
	MaxSessions int `json:"max_sessions,omitempty"`
}

// Defaults.
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultIdleTimeout = time.Hour
	DefaultMaxSessions = 10000
)

// CookieName is the session cookie's name; CSRFHeader the request header
// that must carry the session's CSRF token on every state-changing request.
const (
	CookieName = "tankguard_session"
	CSRFHeader = "X-CSRF-Token"
)

func (c *Config) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	switch {
	case c.SessionTTL < 0:
		return fmt.Errorf("session_ttl must not be negative, got %v", c.SessionTTL)
	case c.IdleTimeout < 0:
		return fmt.Errorf("idle_timeout must not be negative, got %v", c.IdleTimeout)
	case c.MaxSessions < 0:
		return fmt.Errorf("max_sessions must not be negative, got %d", c.MaxSessions)
	}
	return nil
}

// Session is a signed-in user's session, as seen by handlers. It is a
// value type; CSRF is the token the page must echo in CSRFHeader.
type Session struct {
	User    string    `json:"user"`
	Role    Role      `json:"role"`
	CSRF    string    `json:"csrf,omitempty"`
	Expires time.Time `json:"expires"`
	// Token is set for API-token requests (no cookie, no CSRF check).
	Token bool `json:"token,omitempty"`
}

type session struct {
	Session
	created, used time.Time
}

// failures are a name's failed sign-ins in a row.
type failures struct {
	n    int
	last time.Time
}

// Sign-in throttling: after FreeFailures failed sign-ins in a row for a
// name, each further try must wait 1 s, doubling per failure up to
// MaxThrottle. A success clears it; so does MaxThrottle without tries.
const (
	FreeFailures = 5
	MaxThrottle  = time.Minute
)

func (f failures) wait() time.Duration {
	if f.n < FreeFailures {
		return 0
	}
	return min(time.Second<<min(f.n-FreeFailures, 10), MaxThrottle)
}

type account struct {
	User
	hash hash
}

// Counters are the sign-in counters served in the console's stats.
type Counters struct {
	Logins       uint64 `json:"logins"`
	LoginsFailed uint64 `json:"logins_failed"`
	Unauthorized uint64 `json:"unauthorized"` // requests refused with 401
	Forbidden    uint64 `json:"forbidden"`    // requests refused with 403 (role or CSRF)
	Throttled    uint64 `json:"throttled"`    // sign-ins refused for too many failures
	Sessions     int    `json:"sessions"`
}

// Authenticator holds the users and live sessions. It is safe for
// concurrent use.
type Authenticator struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	dummy hash // checked for unknown users, so timing does not tell them apart

	mu       sync.Mutex
	users    map[string]account
	tokens   map[string]account  // by TokenSHA256
	sessions map[string]*session // by HashToken(cookie value)
	fails    map[string]failures // by user name tried, known or not

	logins, failed, unauthorized, forbidden, throttled atomic.Uint64
}

// New returns an Authenticator for users (checked with ValidateUsers).
// now may be nil (time.Now).
func New(users []User, cfg Config, log *slog.Logger, now func() time.Time) (*Authenticator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsers, err)
	}
	if err := ValidateUsers(users); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{cfg: cfg, log: log, now: now, users: map[string]account{}, tokens: map[string]account{},
		sessions: map[string]*session{}, fails: map[string]failures{}}
	// A fixed valid hash of a random password, at the default cost.
	a.dummy, _ = parseHash("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	for _, u := range users {
		acc := account{User: u}
		if u.PasswordHash != "" {
			acc.hash, _ = parseHash(u.PasswordHash)
		}
		a.users[u.Name] = acc
		if u.TokenSHA256 != "" {
			a.tokens[strings.ToLower(u.TokenSHA256)] = acc
		}
	}
	return a, nil
}

// Counters returns a snapshot of the counters.
func (a *Authenticator) Counters() Counters {
	a.mu.Lock()
	n := len(a.sessions)
	a.mu.Unlock()
	return Counters{Logins: a.logins.Load(), LoginsFailed: a.failed.Load(), Unauthorized: a.unauthorized.Load(),
		Forbidden: a.forbidden.Load(), Throttled: a.throttled.Load(), Sessions: n}
}

// Login checks name and password and starts a session. It returns the
// cookie value (a secret: never log it) and the session. A name with too
// many failures in a row gets ErrThrottled until its wait has passed.
func (a *Authenticator) Login(name, password string) (string, Session, error) {
	now := a.now()
	if len(name) > 256 {
		name = name[:256]
	}
	a.mu.Lock()
	acc, ok := a.users[name]
	f := a.fails[name]
	if now.Sub(f.last) >= MaxThrottle {
		f = failures{}
	}
	if w := f.wait(); w > 0 && now.Sub(f.last) < w {
		a.mu.Unlock()
		a.throttled.Add(1)
		return "", Session{}, ErrThrottled
	}
	a.mu.Unlock()
	h := a.dummy
	if ok && acc.PasswordHash != "" {
		h = acc.hash
	}
	good := len(password) <= MaxPassword && h.check(password)
	if !ok || acc.PasswordHash == "" || !good {
		a.failed.Add(1)
		a.mu.Lock()
		if len(a.fails) > 100000 { // names tried at random: forget the oldest half's worth
			for k, v := range a.fails {
				if now.Sub(v.last) >= MaxThrottle || len(a.fails) > 50000 {
					delete(a.fails, k)
				}
			}
		}
		a.fails[name] = failures{n: f.n + 1, last: now}
		a.mu.Unlock()
		return "", Session{}, ErrBadCredentials
	}
	tok := NewToken()
	s := &session{Session: Session{User: acc.Name, Role: acc.Role, CSRF: NewToken(), Expires: now.Add(a.cfg.SessionTTL)}, created: now, used: now}
	a.mu.Lock()
	a.sweepLocked(now)
	for len(a.sessions) >= a.cfg.MaxSessions {
		a.dropOldestLocked()
	}
	a.sessions[HashToken(tok)] = s
	delete(a.fails, name)
	a.mu.Unlock()
	a.logins.Add(1)
	return tok, s.Session, nil
}

func (a *Authenticator) sweepLocked(now time.Time) {
	for k, s := range a.sessions {
		if a.expired(s, now) {
			delete(a.sessions, k)
		}
	}
}

func (a *Authenticator) dropOldestLocked() {
	var oldest string
	var at time.Time
	for k, s := range a.sessions {
		if oldest == "" || s.created.Before(at) {
			oldest, at = k, s.created
		}
	}
	delete(a.sessions, oldest)
}

func (a *Authenticator) expired(s *session, now time.Time) bool {
	return !now.Before(s.Expires) || now.Sub(s.used) >= a.cfg.IdleTimeout
}

// Logout ends the session with cookie value tok, if any.
func (a *Authenticator) Logout(tok string) {
	a.mu.Lock()
	delete(a.sessions, HashToken(tok))
	a.mu.Unlock()
}

// Authenticate returns the session of r: its session cookie, or its
// bearer API token. It touches the session (idle timeout).
func (a *Authenticator) Authenticate(r *http.Request) (Session, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Session{}, false
		}
		a.mu.Lock()
		acc, ok := a.tokens[HashToken(strings.TrimSpace(tok))]
		a.mu.Unlock()
		if !ok {
			return Session{}, false
		}
		return Session{User: acc.Name, Role: acc.Role, Token: true}, true
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	now := a.now()
	k := HashToken(c.Value)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[k]
	if s == nil {
		return Session{}, false
	}
	if a.expired(s, now) {
		delete(a.sessions, k)
		return Session{}, false
	}
	s.used = now
	return s.Session, true
}

type ctxKey struct{}

// FromContext returns the session that Require put in a request's context.
func FromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(Session)
	return s, ok
}

// Require wraps h so that it runs only for a signed-in user whose role
// allows min. Without a session: a redirect to /login for a browser
// asking for a page (GET outside /api/ accepting text/html), else 401.
// With too weak a role:
// 403. State-changing methods with a cookie session also need
// CSRFHeader to carry the session's CSRF token, and an Origin header, if
// sent, to name this host: else 403.
func (a *Authenticator) Require(min Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.Authenticate(r)
		if !ok {
			a.unauthorized.Add(1)
			page := r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") && strings.Contains(r.Header.Get("Accept"), "text/html")
			if !page {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tankguard"`)
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !s.Role.Allows(min) {
			a.forbidden.Add(1)
			a.log.Warn("console request refused: role", "user", s.User, "role", s.Role, "needs", min, "method", r.Method, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("%s needs the %s role; %s is %s", r.URL.Path, min, s.User, s.Role), http.StatusForbidden)
			return
		}
		if !s.Token && unsafeMethod(r.Method) {
			if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
				a.forbidden.Add(1)
				http.Error(w, "missing or wrong "+CSRFHeader, http.StatusForbidden)
				return
			}
			if !sameOrigin(r) {
				a.forbidden.Add(1)
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin reports whether r's Origin header, if any, names r's host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// loginRequest is the body of POST /api/login.
type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// HandleLogin serves POST /api/login: a JSON body {"name","password"}
// (Content-Type application/json, so a cross-site form cannot post it).
// On success it sets the session cookie and answers the Session as JSON;
// wrong credentials get 401 after the same work as right ones.
func (a *Authenticator) HandleLogin(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "want Content-Type application/json", http.StatusUnsupportedMediaType)
		return
	}
	if !sameOrigin(r) {
		a.forbidden.Add(1)
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	var req loginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		a.failed.Add(1)
		http.Error(w, "sign-in body: want {\"name\":...,\"password\":...}", http.StatusBadRequest)
		return
	}
	tok, s, err := a.Login(req.Name, req.Password)
	if errors.Is(err, ErrThrottled) {
		a.log.Warn("console sign-in throttled", "user", req.Name, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many failed sign-ins for this name; wait a minute", http.StatusTooManyRequests)
		return
	}
	if err != nil {
		a.log.Warn("console sign-in failed", "user", req.Name, "remote", r.RemoteAddr)
		http.Error(w, "wrong user name or password", http.StatusUnauthorized)
		return
	}
	a.log.Info("console sign-in", "user", s.User, "role", s.Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: "/", HttpOnly: true, Secure: a.cfg.SecureCookie,
		SameSite: http.SameSiteStrictMode, Expires: s.Expires,
	})
	writeJSON(w, s)
}

// HandleLogout serves POST /api/logout: it ends the session and clears
// the cookie. It needs no CSRF token: the worst a forged one does is sign
// the user out.
func (a *Authenticator) HandleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		if s, ok := a.Authenticate(r); ok {
			a.log.Info("console sign-out", "user", s.User, "remote", r.RemoteAddr)
		}
		a.Logout(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: a.cfg.SecureCookie,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// HandleMe serves GET /api/me (wrap it in Require): the caller's session,
// with the CSRF token the page must send.
func (a *Authenticator) HandleMe(w http.ResponseWriter, r *http.Request) {
	s, ok := FromContext(r.Context())
	if !ok {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	writeJSON(w, s)
}

// Users returns the users without their hashes, for admins.
func (a *Authenticator) Users() []User {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]User, 0, len(a.users))
	for _, acc := range a.users {
		out = append(out, User{Name: acc.Name, Role: acc.Role})
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return
	}
}
