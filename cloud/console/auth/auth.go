package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Config configures sessions. Zero fields take the defaults below.
type Config struct {
	// SessionTTL is the longest a session lasts after sign-in.
	SessionTTL time.Duration `json:"session_ttl,omitempty"`
	// IdleTimeout ends a session unused for this long. An open console
	// page keeps its session alive through its live event stream.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// SecureCookie marks the session cookie Secure (HTTPS only) even on
	// plain HTTP requests: set it when a proxy terminates TLS in front of
	// the console. Requests that come over TLS always get a Secure cookie.
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

// failures are a name's (or a source address's) failed sign-ins in a row.
type failures struct {
	n    int
	last time.Time
}

// Sign-in throttling: after FreeFailures failed sign-ins in a row for a
// name, or AddrFreeFailures from one source address, each further try
// must wait 1 s, doubling per failure up to MaxThrottle. A success clears
// the name's count; MaxThrottle without a checked try clears either. A
// try counts as a failure from the moment it is let through until its
// password is found right, so parallel tries cannot all pass on one stale
// count; a try refused while throttled counts too (it lengthens the wait
// but not the time it is measured from), so a flood locks the name out
// for MaxThrottle and even the right password waits it out.
const (
	FreeFailures     = 5
	AddrFreeFailures = 20
	MaxThrottle      = time.Minute
)

// Password checks are bounded: at most HashSlots run at once (an argon2id
// check with more than 16 MiB takes both), at most HashQueue more wait for
// a slot, for at most HashWait; any other try is refused with ErrBusy
// (HTTP 429) before its password is looked at.
const (
	HashSlots = 2
	HashQueue = 8
	HashWait  = 5 * time.Second
)

func (f failures) wait(free int) time.Duration {
	if f.n < free {
		return 0
	}
	return min(time.Second<<min(f.n-free, 10), MaxThrottle)
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
	Busy         uint64 `json:"busy"`         // sign-ins refused because too many passwords were being checked
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
	addrs    map[string]failures // by source address (host, no port)

	hashing *semaphore.Weighted // HashSlots
	queued  atomic.Int32        // tries waiting for a hashing slot

	logins, failed, unauthorized, forbidden, throttled, busy atomic.Uint64
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
		sessions: map[string]*session{}, fails: map[string]failures{}, addrs: map[string]failures{},
		hashing: semaphore.NewWeighted(HashSlots)}
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
		Forbidden: a.forbidden.Load(), Throttled: a.throttled.Load(), Busy: a.busy.Load(), Sessions: n}
}

// Login checks name and password, tried from source address from (a
// host, or "" if unknown), and starts a session. It returns the cookie
// value (a secret: never log it) and the session. A name or address with
// too many failures in a row gets ErrThrottled until its wait has passed;
// too many password checks at once get ErrBusy.
func (a *Authenticator) Login(name, password, from string) (string, Session, error) {
	now := a.now()
	if len(name) > 256 {
		name = name[:256]
	}
	if !a.reserve(name, from, now) {
		a.throttled.Add(1)
		return "", Session{}, ErrThrottled
	}
	a.mu.Lock()
	acc, ok := a.users[name]
	a.mu.Unlock()
	h := a.dummy
	if ok && acc.PasswordHash != "" {
		h = acc.hash
	}
	good, err := a.check(h, password)
	if err != nil {
		a.release(name, from) // not checked: it does not count
		a.busy.Add(1)
		return "", Session{}, err
	}
	if !ok || acc.PasswordHash == "" || !good {
		a.failed.Add(1)
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
	if f, ok := a.addrs[from]; ok && f.n > 0 {
		f.n-- // this try was counted as a failure of its address
		a.addrs[from] = f
	}
	a.mu.Unlock()
	a.logins.Add(1)
	return tok, s.Session, nil
}

// reserve decides, under one lock, whether a try of name from address
// from may check its password now, and if so counts it as a failure of
// both until it proves right.
func (a *Authenticator) reserve(name, from string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[name]
	if now.Sub(f.last) >= MaxThrottle {
		f = failures{}
	}
	af := a.addrs[from]
	if now.Sub(af.last) >= MaxThrottle {
		af = failures{}
	}
	refuse := false
	if w := f.wait(FreeFailures); w > 0 && now.Sub(f.last) < w {
		refuse = true
	}
	if from != "" {
		if w := af.wait(AddrFreeFailures); w > 0 && now.Sub(af.last) < w {
			refuse = true
		}
	}
	if refuse {
		if f.n > 0 {
			f.n++
			a.fails[name] = f
		}
		if af.n > 0 {
			af.n++
			a.addrs[from] = af
		}
		return false
	}
	forget(a.fails, now)
	a.fails[name] = failures{n: f.n + 1, last: now}
	if from != "" {
		forget(a.addrs, now)
		a.addrs[from] = failures{n: af.n + 1, last: now}
	}
	return true
}

// release takes back a reserved try that was never checked.
func (a *Authenticator) release(name, from string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.fails[name]; ok && f.n > 0 {
		f.n--
		a.fails[name] = f
	}
	if f, ok := a.addrs[from]; ok && f.n > 0 {
		f.n--
		a.addrs[from] = f
	}
}

// forget bounds a failure map that names or addresses tried at random
// would grow: past 100,000 keys it drops the stale ones, and then any
// until half are left.
func forget(m map[string]failures, now time.Time) {
	if len(m) <= 100000 {
		return
	}
	for k, v := range m {
		if now.Sub(v.last) >= MaxThrottle || len(m) > 50000 {
			delete(m, k)
		}
	}
}

// check checks password against h within the bound on concurrent
// password hashing; ErrBusy if it cannot get a slot.
func (a *Authenticator) check(h hash, password string) (bool, error) {
	if len(password) > MaxPassword {
		return false, nil
	}
	if a.queued.Add(1) > HashSlots+HashQueue {
		a.queued.Add(-1)
		return false, ErrBusy
	}
	defer a.queued.Add(-1)
	w := h.weight()
	ctx, cancel := context.WithTimeout(context.Background(), HashWait)
	defer cancel()
	if err := a.hashing.Acquire(ctx, w); err != nil {
		return false, ErrBusy
	}
	defer a.hashing.Release(w)
	if w == HashSlots {
		// Collect the big argon2id buffer now, so the next check reuses
		// its memory instead of the heap growing by another one before
		// the collector would run: this keeps a sign-in flood within one
		// buffer's worth of memory.
		defer runtime.GC()
	}
	return h.check(password), nil
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
	// Next is where the page was headed; the answer's Next is the
	// same-site path to go to (SafeNext).
	Next string `json:"next,omitempty"`
}

// loginResponse is the answer to a successful POST /api/login.
type loginResponse struct {
	Session
	Next string `json:"next"`
}

// SafeNext returns next if it is a path on this site ("/..." that no
// browser reads as another host), else "/". It refuses "//host",
// "/\host", empty, "." and ".." path segments, schemes, control
// characters and backslashes, and their percent-encoded forms.
func SafeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 {
		return "/"
	}
	for p := next; ; {
		path, _, _ := strings.Cut(p, "?")
		path, _, _ = strings.Cut(path, "#")
		if strings.Contains(path, "//") || strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
			strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..") {
			return "/" // "/..//host" resolves to "//host"
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
				return "/"
			}
		}
		u, err := url.PathUnescape(p)
		if err != nil {
			return "/"
		}
		if u == p {
			break
		}
		p = u // check the decoded form too, until it no longer changes
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return next
}

// remoteHost returns the host of r.RemoteAddr (the address the throttle
// counts): the peer of the TCP connection, never a header the client sets.
func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// HandleLogin serves POST /api/login: a JSON body {"name","password"}
// and optionally "next" (Content-Type application/json, so a cross-site
// form cannot post it). On success it sets the session cookie (Secure
// when the request came over TLS or Config.SecureCookie is set) and
// answers the Session and the safe "next" path as JSON; wrong
// credentials get 401 after the same work as right ones; a throttled
// name or address, or too many sign-ins at once, get 429.
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
	tok, s, err := a.Login(req.Name, req.Password, remoteHost(r))
	switch {
	case errors.Is(err, ErrThrottled):
		a.log.Warn("console sign-in throttled", "user", req.Name, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many failed sign-ins for this name or address; wait a minute", http.StatusTooManyRequests)
		return
	case errors.Is(err, ErrBusy):
		a.log.Warn("console sign-in refused: too many at once", "user", req.Name, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many sign-ins at once; try again in a few seconds", http.StatusTooManyRequests)
		return
	case err != nil:
		a.log.Warn("console sign-in failed", "user", req.Name, "remote", r.RemoteAddr)
		http.Error(w, "wrong user name or password", http.StatusUnauthorized)
		return
	}
	a.log.Info("console sign-in", "user", s.User, "role", s.Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: "/", HttpOnly: true, Secure: a.secure(r),
		SameSite: http.SameSiteStrictMode, Expires: s.Expires,
	})
	writeJSON(w, loginResponse{Session: s, Next: SafeNext(req.Next)})
}

// secure reports whether cookies set in answer to r are Secure.
func (a *Authenticator) secure(r *http.Request) bool { return a.cfg.SecureCookie || r.TLS != nil }

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
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: a.secure(r),
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
