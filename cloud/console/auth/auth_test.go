package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func mustHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestHashPasswordAlgorithms(t *testing.T) {
	for _, alg := range []string{AlgBcrypt, AlgArgon2id} {
		t.Run(alg, func(t *testing.T) {
			h, err := HashPassword("correct horse", alg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, map[string]string{AlgBcrypt: "$2a$", AlgArgon2id: "$argon2id$v=19$"}[alg]) {
				t.Fatalf("hash %q", h)
			}
			p, err := parseHash(h)
			if err != nil {
				t.Fatal(err)
			}
			if !p.check("correct horse") || p.check("correct horsf") || p.check("") {
				t.Fatal("check accepts the wrong password or refuses the right one")
			}
		})
	}
	if _, err := HashPassword("short", AlgBcrypt); err == nil {
		t.Error("7-byte password accepted")
	}
	if _, err := HashPassword("long enough", "md5"); err == nil {
		t.Error("md5 accepted")
	}
}

func TestParseUsers(t *testing.T) {
	good := mustHash(t, "password1")
	tok := HashToken("tok")
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"ok", `{"users":[{"name":"ann","role":"admin","password_hash":"` + good + `"},{"name":"bot","role":"viewer","token_sha256":"` + tok + `"}]}`, ""},
		{"no users", `{"users":[]}`, "no users"},
		{"unknown field", `{"users":[{"name":"ann","role":"admin","password":"x"}]}`, `unknown field "password"`},
		{"bad role", `{"users":[{"name":"ann","role":"root","password_hash":"` + good + `"}]}`, `role "root"`},
		{"duplicate", `{"users":[{"name":"a","role":"admin","password_hash":"` + good + `"},{"name":"a","role":"viewer","password_hash":"` + good + `"}]}`, "duplicate"},
		{"no secret", `{"users":[{"name":"ann","role":"admin"}]}`, "needs password_hash or token_sha256"},
		{"plain password as hash", `{"users":[{"name":"ann","role":"admin","password_hash":"hunter2"}]}`, "password_hash"},
		{"bad argon2 params", `{"users":[{"name":"ann","role":"admin","password_hash":"$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}]}`, "parameters"},
		{"bad token", `{"users":[{"name":"ann","role":"admin","token_sha256":"abc"}]}`, "64 hex digits"},
		{"space in name", `{"users":[{"name":"a b","role":"admin","password_hash":"` + good + `"}]}`, "name"},
		{"two values", `{"users":[{"name":"ann","role":"admin","password_hash":"` + good + `"}]}{}`, "more than one"},
		{"trailing brace", `{"users":[{"name":"ann","role":"admin","password_hash":"` + good + `"}]}}`, "more than one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUsers([]byte(tc.in))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrUsers)):
				t.Fatalf("err %v, want ErrUsers containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "$2a$"):
				t.Fatalf("error echoes a hash: %v", err)
			}
		})
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(`{"users":[{"name":"ann","role":"admin","password_hash":"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"}]}`))
	f.Add([]byte(`{"users":[{"name":"bot","role":"viewer","token_sha256":"` + HashToken("x") + `"}]}`))
	f.Add([]byte(`{"users":[{"name":"a","role":"admin","password_hash":"$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		us, err := ParseUsers(data)
		if err == nil && ValidateUsers(us) != nil {
			t.Fatal("ParseUsers returned users that do not validate")
		}
	})
}

func TestSessionsExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := New([]User{{Name: "ann", Role: RoleOperator, PasswordHash: mustHash(t, "password1")}},
		Config{SessionTTL: time.Hour, IdleTimeout: 10 * time.Minute}, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	req := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/api/me", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: tok})
		return r
	}
	if _, _, err := a.Login("ann", "password2", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := a.Login("bob", "password1", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	tok, s, err := a.Login("ann", "password1", "")
	if err != nil || s.User != "ann" || s.Role != RoleOperator || s.CSRF == "" || !s.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("login: %+v %v", s, err)
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		want    bool
	}{
		{"fresh", 0, true},
		{"used within idle timeout", 9 * time.Minute, true},
		{"used again", 9 * time.Minute, true},
		{"idle too long", 10 * time.Minute, false},
	} {
		now = now.Add(step.advance)
		if _, ok := a.Authenticate(req(tok)); ok != step.want {
			t.Fatalf("%s: authenticated %v, want %v", step.name, ok, step.want)
		}
	}
	// Absolute lifetime: keep using it every 5 minutes; it ends after 1 h.
	tok, _, _ = a.Login("ann", "password1", "")
	start := now
	for now.Sub(start) < time.Hour {
		if _, ok := a.Authenticate(req(tok)); !ok {
			t.Fatalf("ended early, after %v", now.Sub(start))
		}
		now = now.Add(5 * time.Minute)
	}
	if _, ok := a.Authenticate(req(tok)); ok {
		t.Fatal("session outlived its TTL")
	}
	if c := a.Counters(); c.Logins != 2 || c.LoginsFailed != 2 || c.Sessions != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// TestBootstrapCreatesAdminOnce: the first admin's password goes to a
// file only its owner can read, never to the log (issue 15, observation 11).
func TestBootstrapCreatesAdminOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	us, err := Bootstrap(path, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].Name != "admin" || us[0].Role != RoleAdmin {
		t.Fatalf("users %+v", us)
	}
	pwFile := filepath.Join(filepath.Dir(path), InitialPasswordFile)
	raw, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatalf("initial password file: %v", err)
	}
	password := strings.TrimSpace(string(raw))
	if len(password) != 20 {
		t.Fatalf("password %q", password)
	}
	if strings.Contains(logBuf.String(), password) {
		t.Fatalf("the log holds the admin password: %q", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), pwFile) {
		t.Errorf("the log does not say where the password is: %q", logBuf.String())
	}
	for _, p := range []string{path, pwFile} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v %v", p, st.Mode(), err)
		}
	}
	users, _ := os.ReadFile(path)
	if bytes.Contains(users, []byte(password)) {
		t.Fatal("users file holds the password in clear")
	}
	a, err := New(us, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Login("admin", password, ""); err != nil {
		t.Fatalf("the written password does not sign in: %v", err)
	}
	logBuf.Reset()
	again, err := Bootstrap(path, log)
	if err != nil || len(again) != 1 || again[0].PasswordHash != us[0].PasswordHash || logBuf.Len() != 0 {
		t.Fatalf("second start: %+v %v, log %q", again, err, logBuf.String())
	}
}

// TestWeakBcryptRefused: a bcrypt hash below cost 10 is refused when the
// users are loaded (issue 15, observation 11).
func TestWeakBcryptRefused(t *testing.T) {
	for _, cost := range []int{4, 9} {
		h, err := bcrypt.GenerateFromPassword([]byte("password1"), cost)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseUsers([]byte(`{"users":[{"name":"ann","role":"admin","password_hash":"` + string(h) + `"}]}`))
		if err == nil || !errors.Is(err, ErrUsers) || !strings.Contains(err.Error(), "cost") {
			t.Errorf("cost %d: %v, want ErrUsers naming the cost", cost, err)
		}
	}
	if _, err := ParseUsers([]byte(`{"users":[{"name":"ann","role":"admin","password_hash":"` + mustHash(t, "password1") + `"}]}`)); err != nil {
		t.Errorf("cost %d refused: %v", bcrypt.DefaultCost, err)
	}
}

func TestSignInThrottle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := New([]User{{Name: "ann", Role: RoleViewer, PasswordHash: mustHash(t, "password1")}}, Config{}, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for i := range FreeFailures {
		if _, _, err := a.Login("ann", "guess", ""); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	for _, step := range []struct {
		name     string
		advance  time.Duration
		password string
		want     error
	}{
		{"right password refused while throttled", 0, "password1", ErrThrottled},
		{"a refused try lengthens the wait: 1 s is not enough", time.Second, "guess", ErrThrottled},
		{"after the 4 s wait: checked again", 3 * time.Second, "guess", ErrBadCredentials},
		{"wait doubled", 7 * time.Second, "password1", ErrThrottled},
		{"after 16 s", 9 * time.Second, "password1", nil},
		{"success cleared it", 0, "guess", ErrBadCredentials},
	} {
		now = now.Add(step.advance)
		if _, _, err := a.Login("ann", step.password, ""); !errors.Is(err, step.want) && !(step.want == nil && err == nil) {
			t.Fatalf("%s: %v, want %v", step.name, err, step.want)
		}
	}
	if c := a.Counters(); c.Throttled != 3 {
		t.Fatalf("counters %+v", c)
	}
	// Unknown names are throttled too (no telling them apart).
	for range FreeFailures {
		a.Login("nobody", "x", "")
	}
	if _, _, err := a.Login("nobody", "x", ""); !errors.Is(err, ErrThrottled) {
		t.Fatalf("unknown name: %v", err)
	}
	now = now.Add(MaxThrottle)
	if _, _, err := a.Login("nobody", "x", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after MaxThrottle: %v", err)
	}
}

// TestSignInThrottleParallel: parallel wrong passwords for one name get
// exactly FreeFailures password checks; the rest are throttled before
// their password is looked at (issue 15, observation 1).
func TestSignInThrottleParallel(t *testing.T) {
	a, err := New([]User{{Name: "ann", Role: RoleViewer, PasswordHash: mustHash(t, "password1")}}, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 40)
	for range 40 {
		go func() { _, _, err := a.Login("ann", "guess", "192.0.2.1"); errs <- err }()
	}
	n := map[error]int{}
	for range 40 {
		n[<-errs]++
	}
	if n[ErrBadCredentials] != FreeFailures || n[ErrThrottled] != 40-FreeFailures {
		t.Fatalf("40 parallel wrong passwords: %v; want %d checked, the rest throttled", n, FreeFailures)
	}
	if _, _, err := a.Login("ann", "password1", "192.0.2.9"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("right password during the lock-out: %v", err)
	}
}

// TestSignInThrottlePerAddress: one address trying many names is throttled
// after AddrFreeFailures, whatever the names; other addresses are not.
func TestSignInThrottlePerAddress(t *testing.T) {
	a, err := New([]User{{Name: "ann", Role: RoleViewer, PasswordHash: mustHash(t, "password1")}}, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range AddrFreeFailures {
		if _, _, err := a.Login(fmt.Sprintf("name-%d", i), "x", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	if _, _, err := a.Login("ann", "password1", "192.0.2.1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("the address's next try: %v, want throttled", err)
	}
	if _, _, err := a.Login("ann", "password1", "192.0.2.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// TestPasswordHashingBounded: at most HashSlots+HashQueue password checks
// run or wait at once; more at the same moment are refused with ErrBusy
// (HTTP 429) without hashing (issue 15, observation 2).
func TestPasswordHashingBounded(t *testing.T) {
	a, err := New([]User{{Name: "ann", Role: RoleViewer, PasswordHash: mustHash(t, "password1")}}, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			_, _, err := a.Login(fmt.Sprintf("user-%d", i), "x", "") // distinct names, no address: no throttle
			errs <- err
		}()
	}
	close(start)
	got := map[error]int{}
	for range n {
		got[<-errs]++
	}
	if got[ErrBusy] == 0 || got[ErrBadCredentials] < HashSlots || got[ErrBusy]+got[ErrBadCredentials] != n {
		t.Fatalf("%d sign-ins at once: %v; want some refused busy, the others checked", n, got)
	}
	if c := a.Counters(); c.Busy != uint64(got[ErrBusy]) {
		t.Errorf("busy counter %d, want %d", c.Busy, got[ErrBusy])
	}
}
