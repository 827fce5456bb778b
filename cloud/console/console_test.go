package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const viewerToken = "viewer-token"

// fakeIncidents is an in-memory IncidentAPI.
type fakeIncidents struct {
	mu   sync.Mutex
	incs map[string]*incident.Incident
	now  func() time.Time
}

func newFakeIncidents(now func() time.Time, incs ...incident.Incident) *fakeIncidents {
	f := &fakeIncidents{incs: map[string]*incident.Incident{}, now: now}
	for _, i := range incs {
		f.incs[i.ID] = &i
	}
	return f
}

func (f *fakeIncidents) List() []incident.Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []incident.Incident
	for _, i := range f.incs {
		out = append(out, *i)
	}
	return out
}

func (f *fakeIncidents) act(id, by string, fn func(*incident.Incident, time.Time) error) (incident.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.incs[id]
	if i == nil {
		return incident.Incident{}, fmt.Errorf("%w: %s", incident.ErrNotFound, id)
	}
	if err := fn(i, f.now()); err != nil {
		return *i, err
	}
	return *i, nil
}

func (f *fakeIncidents) Acknowledge(id, by string) (incident.Incident, error) {
	return f.act(id, by, func(i *incident.Incident, now time.Time) error {
		if i.State != incident.StateOpen {
			return incident.ErrState
		}
		i.State, i.AckedBy, i.AckedAt = incident.StateAcknowledged, by, &now
		i.History = append(i.History, incident.Event{At: now, Type: incident.EventAcknowledged, By: by})
		return nil
	})
}

func (f *fakeIncidents) Resolve(id, by string) (incident.Incident, error) {
	return f.act(id, by, func(i *incident.Incident, now time.Time) error {
		if i.State == incident.StateResolved {
			return incident.ErrState
		}
		i.State, i.ResolvedBy, i.ResolvedAt = incident.StateResolved, by, &now
		return nil
	})
}

func hash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testUsers: one of each role with password "<name>-password", and an
// API token for a viewer.
func testUsers(t testing.TB) []auth.User {
	return []auth.User{
		{Name: "vera", Role: auth.RoleViewer, PasswordHash: hash(t, "vera-password"), TokenSHA256: auth.HashToken(viewerToken)},
		{Name: "otto", Role: auth.RoleOperator, PasswordHash: hash(t, "otto-password")},
		{Name: "ada", Role: auth.RoleAdmin, PasswordHash: hash(t, "ada-password")},
	}
}

type fixture struct {
	c   *Console
	srv *httptest.Server
	inc *fakeIncidents
	now *time.Time
	mu  *sync.Mutex
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	inc := newFakeIncidents(clock,
		incident.Incident{ID: "inc-1", Truck: "T1", Signal: "coolant_temp", Kind: "limit", Severity: "critical", State: incident.StateOpen},
		incident.Incident{ID: "inc-2", Truck: "T2", Signal: "cargo_temp", Kind: "deviation", Severity: "warning", State: incident.StateOpen})
	if cfg.Users == nil {
		cfg.Users = testUsers(t)
	}
	c := New(slog.New(slog.DiscardHandler), Options{Config: cfg, Incidents: inc, Tick: 10 * time.Millisecond, Now: clock, KeepAlive: 20 * time.Millisecond,
		Stats: func() any { return map[string]int{"readings": 3} }})
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &fixture{c: c, srv: srv, inc: inc, now: &now, mu: &mu}
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	*f.now = f.now.Add(d)
	f.mu.Unlock()
}

// client is a browser-like client: cookie jar, no redirects followed.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (f *fixture) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: f.srv.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path, body string, hdr ...string) (int, string, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func (c *client) login(name, password string) int {
	c.t.Helper()
	code, body, _ := c.do("POST", "/api/login", fmt.Sprintf(`{"name":%q,"password":%q}`, name, password))
	if code == 200 {
		var s auth.Session
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			c.t.Fatal(err)
		}
		c.csrf = s.CSRF
	}
	return code
}

func TestAuthHTTP(t *testing.T) {
	f := newFixture(t, Config{Auth: auth.Config{SessionTTL: time.Hour, IdleTimeout: 20 * time.Minute}})
	anon := f.client(t)
	for _, tc := range []struct {
		name, method, path string
		want               int
		location           string
	}{
		{"api needs a session", "GET", "/api/trucks", 401, ""},
		{"events need a session", "GET", "/api/events", 401, ""},
		{"incidents need a session", "GET", "/api/incidents", 401, ""},
		{"stats need a session", "GET", "/api/stats", 401, ""},
		{"truck needs a session", "GET", "/api/trucks/T1", 401, ""},
		{"action needs a session", "POST", "/api/incidents/inc-1/ack", 401, ""},
		{"page redirects to sign-in", "GET", "/", 303, "/login?next=%2F"},
		{"app script needs a session", "GET", "/app.js", 401, ""},
		{"sign-in page is public", "GET", "/login", 200, ""},
		{"sign-in script is public", "GET", "/login.js", 200, ""},
		{"style is public", "GET", "/style.css", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, h := anon.do(tc.method, tc.path, "", "Accept", "text/html,*/*")
			if tc.path == "/app.js" {
				code, _, h = anon.do(tc.method, tc.path, "", "Accept", "*/*")
			}
			if code != tc.want || h.Get("Location") != tc.location {
				t.Fatalf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, h.Get("Location"), tc.want, tc.location)
			}
			if h.Get("Content-Security-Policy") == "" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("security headers missing: %v", h)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		c := f.client(t)
		if code := c.login("otto", "vera-password"); code != 401 {
			t.Fatalf("login %d", code)
		}
		if code := c.login("nobody", "otto-password"); code != 401 {
			t.Fatalf("unknown user %d", code)
		}
		if code, _, _ := c.do("POST", "/api/login", `name=otto&password=otto-password`, "Content-Type", "application/x-www-form-urlencoded"); code != 415 {
			t.Fatalf("form login %d, want 415", code)
		}
	})

	t.Run("cookie attributes", func(t *testing.T) {
		c := f.client(t)
		code, _, h := c.do("POST", "/api/login", `{"name":"vera","password":"vera-password"}`)
		sc := h.Get("Set-Cookie")
		if code != 200 || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/") {
			t.Fatalf("login %d, Set-Cookie %q", code, sc)
		}
	})

	viewer := f.client(t)
	if code := viewer.login("vera", "vera-password"); code != 200 {
		t.Fatalf("viewer login %d", code)
	}
	operator := f.client(t)
	if code := operator.login("otto", "otto-password"); code != 200 {
		t.Fatalf("operator login %d", code)
	}
	admin := f.client(t)
	if code := admin.login("ada", "ada-password"); code != 200 {
		t.Fatalf("admin login %d", code)
	}

	t.Run("viewer sees but cannot act", func(t *testing.T) {
		for _, p := range []string{"/", "/app.js", "/api/trucks", "/api/incidents", "/api/me", "/api/config", "/api/stats"} {
			if code, body, _ := viewer.do("GET", p, ""); code != 200 {
				t.Errorf("GET %s: %d %s", p, code, body)
			}
		}
		for _, a := range []string{"ack", "resolve", "snooze"} {
			if code, body, _ := viewer.do("POST", "/api/incidents/inc-1/"+a, `{"minutes":5}`, auth.CSRFHeader, viewer.csrf); code != 403 {
				t.Errorf("viewer %s: %d %s, want 403", a, code, body)
			}
		}
		if code, _, _ := viewer.do("GET", "/api/users", ""); code != 403 {
			t.Errorf("viewer /api/users: %d", code)
		}
		if got, _ := f.inc.act("inc-1", "", func(*incident.Incident, time.Time) error { return nil }); got.State != incident.StateOpen {
			t.Fatalf("viewer changed the incident: %+v", got)
		}
	})

	t.Run("CSRF token and origin", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			hdr  []string
		}{
			{"no token", nil},
			{"wrong token", []string{auth.CSRFHeader, "x" + operator.csrf}},
			{"cross-site origin", []string{auth.CSRFHeader, operator.csrf, "Origin", "https://evil.example"}},
		} {
			if code, body, _ := operator.do("POST", "/api/incidents/inc-1/ack", `{}`, tc.hdr...); code != 403 {
				t.Errorf("%s: %d %s, want 403", tc.name, code, body)
			}
		}
	})

	t.Run("operator acknowledges as themself", func(t *testing.T) {
		code, body, _ := operator.do("POST", "/api/incidents/inc-1/ack", `{"note":"called driver"}`, auth.CSRFHeader, operator.csrf, "Origin", f.srv.URL)
		var v IncidentView
		if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.AckedBy != "otto" || v.AckedAt == nil || v.State != incident.StateAcknowledged {
			t.Fatalf("ack: %d %s", code, body)
		}
		for _, tc := range []struct {
			name, path, body string
			want             int
		}{
			{"again conflicts", "/api/incidents/inc-1/ack", `{}`, 409},
			{"unknown incident", "/api/incidents/nope/ack", `{}`, 404},
			{"unknown action", "/api/incidents/inc-1/delete", `{}`, 404},
			{"body cannot name who", "/api/incidents/inc-2/ack", `{"by":"mallory"}`, 400},
			{"snooze needs minutes", "/api/incidents/inc-2/snooze", `{}`, 400},
			{"snooze", "/api/incidents/inc-2/snooze", `{"minutes":30}`, 200},
			{"resolve", "/api/incidents/inc-2/resolve", ``, 200},
			{"snooze resolved", "/api/incidents/inc-2/snooze", `{"minutes":30}`, 409},
		} {
			if code, body, _ := operator.do("POST", tc.path, tc.body, auth.CSRFHeader, operator.csrf); code != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
			}
		}
		var l []IncidentView
		_, body, _ = operator.do("GET", "/api/incidents?truck=T2", "")
		if json.Unmarshal([]byte(body), &l) != nil || len(l) != 1 || l[0].ResolvedBy != "otto" {
			t.Fatalf("incidents of T2: %s", body)
		}
	})

	t.Run("admin lists users without hashes", func(t *testing.T) {
		code, body, _ := admin.do("GET", "/api/users", "")
		if code != 200 || !strings.Contains(body, `"otto"`) || strings.Contains(body, "$2a$") || strings.Contains(body, "token") {
			t.Fatalf("users: %d %s", code, body)
		}
	})

	t.Run("API token", func(t *testing.T) {
		if code, _, _ := anon.do("GET", "/api/trucks", "", "Authorization", "Bearer "+viewerToken); code != 200 {
			t.Errorf("good token: %d", code)
		}
		if code, _, _ := anon.do("GET", "/api/trucks", "", "Authorization", "Bearer nope"); code != 401 {
			t.Errorf("bad token: %d", code)
		}
		if code, _, _ := anon.do("POST", "/api/incidents/inc-1/resolve", "", "Authorization", "Bearer "+viewerToken); code != 403 {
			t.Errorf("viewer token resolves: %d", code)
		}
	})

	t.Run("Require guards other endpoints", func(t *testing.T) {
		h := f.c.Require(auth.RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") }))
		for _, tc := range []struct {
			name, authz string
			want        int
		}{
			{"no credentials", "", 401},
			{"bad token", "Bearer nope", 401},
			{"viewer token", "Bearer " + viewerToken, 200},
		} {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		c := f.client(t)
		c.login("vera", "vera-password")
		if code, _, _ := c.do("POST", "/api/logout", ""); code != 204 {
			t.Fatalf("logout %d", code)
		}
		if code, _, _ := c.do("GET", "/api/me", ""); code != 401 {
			t.Fatalf("after logout %d", code)
		}
	})

	t.Run("live stream ends when its session expires", func(t *testing.T) {
		c := f.client(t)
		c.login("vera", "vera-password")
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/events", nil)
		res, err := c.hc.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("events: %v %v", err, res.Status)
		}
		defer res.Body.Close()
		got := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(res.Body)
			var evs []string
			for sc.Scan() {
				if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
					evs = append(evs, ev)
				}
			}
			got <- strings.Join(evs, ",")
		}()
		time.Sleep(60 * time.Millisecond) // keepalives pass while the session is good
		f.advance(2 * time.Hour)          // beyond the session's lifetime
		select {
		case evs := <-got:
			if !strings.HasSuffix(evs, "auth") {
				t.Fatalf("stream events %q, want it to end with auth", evs)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the stream outlived its session")
		}
	})

	t.Run("expired session", func(t *testing.T) {
		f.advance(21 * time.Minute) // idle timeout is 20 minutes
		for _, c := range []*client{viewer, operator} {
			if code, _, _ := c.do("GET", "/api/trucks", ""); code != 401 {
				t.Errorf("after idle timeout: %d, want 401", code)
			}
			if code, _, h := c.do("GET", "/", "", "Accept", "text/html"); code != 303 || !strings.HasPrefix(h.Get("Location"), "/login") {
				t.Errorf("page after expiry: %d %q", code, h.Get("Location"))
			}
		}
		if got := f.c.AuthCounters(); got.Unauthorized == 0 || got.Forbidden == 0 || got.LoginsFailed < 2 {
			t.Errorf("counters %+v", got)
		}
	})
}

func TestConsoleLiveAndHistory(t *testing.T) {
	f := newFixture(t, Config{HistoryStep: 10 * time.Second})
	c := f.c
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
		close(events)
	}()
	time.Sleep(20 * time.Millisecond) // let the stream subscribe

	now := time.Now()
	t0 := now.Add(-5 * time.Minute).Truncate(10 * time.Second)
	var rs []sensors.Reading
	for i := range 300 { // 5 minutes at 1 Hz: long enough to learn the band
		at := t0.Add(time.Duration(i) * time.Second).UnixNano()
		rs = append(rs, sensors.Reading{Time: at, Signal: sensors.CoolantTemp, Value: 88 + float64(i%3)},
			sensors.Reading{Time: at, Signal: sensors.CargoTemp, Value: 18},
			sensors.Reading{Time: at, Signal: sensors.WheelSpeed, Value: float64(i % 90)},
			sensors.Reading{Time: at, Signal: sensors.GNSSLatitude, Value: 52.5})
	}
	c.Readings("T1", rs, now)
	c.Readings("T1", []sensors.Reading{{Time: t0.UnixNano() - 1e9, Signal: sensors.CoolantTemp, Value: 50}}, now) // late: must not win
	c.Alert("edge", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: t0.UnixNano(), Time: t0.UnixNano()})
	c.Alert("cloud", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: t0.UnixNano(), Time: t0.UnixNano()})

	seen := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for !(seen["alert"] && seen["trucks"]) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			seen[ev] = true
		case <-timeout:
			t.Fatalf("events seen %v", seen)
		}
	}
	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var trucks []Truck
	get("/api/trucks", &trucks)
	if len(trucks) != 1 || *trucks[0].Coolant != 88+float64(299%3) || *trucks[0].Lat != 52.5 || trucks[0].Severity != "critical" ||
		trucks[0].Status != StatusCritical || trucks[0].OpenAlerts["edge"] != 1 || trucks[0].OpenAlerts["cloud"] != 1 {
		t.Fatalf("trucks %+v", trucks)
	}
	if b := trucks[0].CoolantBand; b == nil || b[0] > 88 || b[1] < 90 {
		t.Fatalf("coolant band %v, want it to cover 88..90", b)
	}
	var detail struct {
		Truck   Truck
		History struct {
			Step    int        `json:"step"`
			T       []int64    `json:"t"`
			Coolant []*float64 `json:"coolant"`
			Speed   []*float64 `json:"speed"`
			CoolHi  []*float64 `json:"coolant_hi"`
		}
		Limits map[string]map[string]*float64
	}
	get("/api/trucks/T1", &detail)
	h := detail.History
	if h.Step != 10 || len(h.T) != 31 || len(h.Coolant) != 31 || h.T[1] != t0.Unix() {
		t.Fatalf("history step %d, %d points from %v (t0 %d)", h.Step, len(h.T), h.T[:2], t0.Unix())
	}
	if h.Coolant[0] == nil || *h.Coolant[0] != 50 || *h.Coolant[1] != 90 || *h.Speed[1] != 9 {
		t.Fatalf("history values: late %v, max %v, last speed %v", h.Coolant[0], *h.Coolant[1], *h.Speed[1])
	}
	if h.CoolHi[len(h.CoolHi)-1] == nil || detail.Limits["coolant_temp"]["crit_high"] == nil || *detail.Limits["coolant_temp"]["crit_high"] != 110 {
		t.Fatalf("band or limits missing: %v %v", h.CoolHi[len(h.CoolHi)-1], detail.Limits)
	}
	get(fmt.Sprintf("/api/trucks/T1?since=%d", now.Add(-time.Minute).Unix()), &detail)
	if n := len(detail.History.T); n < 4 || n > 7 {
		t.Fatalf("since a minute ago: %d points", n)
	}
	c.Alert("edge", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Cleared, Start: t0.UnixNano(), Time: t0.UnixNano() + 5e9})
	trucks = nil
	get("/api/trucks", &trucks)
	if trucks[0].OpenAlerts["edge"] != 0 || trucks[0].OpenAlerts["cloud"] != 1 {
		t.Fatalf("after clear: %+v", trucks[0].OpenAlerts)
	}
	var alerts []Alert
	get("/api/alerts", &alerts)
	if len(alerts) != 3 || alerts[2].Phase != "cleared" {
		t.Fatalf("alerts %+v", alerts)
	}
	var stats map[string]any
	get("/api/stats", &stats)
	if stats["readings"] != 3.0 || stats["console_auth"] == nil {
		t.Fatalf("stats %v", stats)
	}
}

func TestKnownTrucksListedOffline(t *testing.T) {
	c := New(nil, Options{})
	c.Readings("T2", []sensors.Reading{{Time: time.Now().UnixNano(), Signal: sensors.CoolantTemp, Value: 80}}, time.Now())
	c.Known([]string{"T1", "T2"})
	ts := c.Trucks()
	if len(ts) != 2 || ts[0].ID != "T1" || ts[0].Status != StatusOffline || !ts[0].LastSeen.IsZero() || ts[1].Status != StatusNormal {
		t.Fatalf("trucks %+v", ts)
	}
}

func TestHistoryRing(t *testing.T) {
	h := &history{step: 10, max: 5}
	for _, tc := range []struct {
		name string
		sec  int64
		want []uint32 // step starts after the call
	}{
		{"first", 1000, []uint32{1000}},
		{"same step", 1009, []uint32{1000}},
		{"next", 1010, []uint32{1000, 1010}},
		{"gap", 1040, []uint32{1000, 1010, 1040}},
		{"late fills the gap", 1025, []uint32{1000, 1010, 1020, 1040}},
		{"full", 1050, []uint32{1010, 1020, 1040, 1050}},
		{"too old", 990, []uint32{1010, 1020, 1040, 1050}},
		{"long silence drops all", 2000, []uint32{2000}},
	} {
		h.at(tc.sec)
		var got []uint32
		for _, p := range h.pts {
			got = append(got, p.t)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"tiles", Config{TileURL: "https://tile.openstreetmap.org/{z}/{x}/{y}.png"}, ""},
		{"tiles without x", Config{TileURL: "https://tile.example/{z}/{y}.png"}, "tile_url"},
		{"tiles ftp", Config{TileURL: "ftp://tile.example/{z}/{x}/{y}.png"}, "tile_url"},
		{"bad user", Config{Users: []auth.User{{Name: "a", Role: "god", TokenSHA256: auth.HashToken("x")}}}, "role"},
		{"negative ttl", Config{Auth: auth.Config{SessionTTL: -1}}, "session_ttl"},
		{"too fine history", Config{History: 48 * time.Hour, HistoryStep: time.Second}, "history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkReadings1000Trucks(b *testing.B) {
	c := New(slog.New(slog.DiscardHandler), Options{})
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("truck-%04d", i)
	}
	batch := make([]sensors.Reading, 0, 13)
	b.ReportAllocs()
	at := time.Now().Add(-time.Hour).UnixNano()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		if i%len(ids) == 0 {
			at += 1e9
		}
		batch = batch[:0]
		for _, s := range []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp, sensors.GNSSLatitude, sensors.GNSSLongitude} {
			batch = append(batch, sensors.Reading{Time: at, Signal: s, Value: 50})
		}
		for k := range 10 {
			batch = append(batch, sensors.Reading{Time: at + int64(k)*1e8, Signal: sensors.WheelSpeed, Value: 60})
		}
		c.Readings(id, batch, time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/14, "console_fold_ns_per_reading:ns")
}

// FuzzIncidentAction posts arbitrary bodies to the incident actions: the
// answer is never a server error, and nothing but a well-formed body acts.
func FuzzIncidentAction(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"note":"called the driver"}`, `{"minutes":30}`, `{"by":"x"}`, `{"note":`, `{}{}`, `[1]`, `{"minutes":1e99}`} {
		f.Add("ack", s)
		f.Add("snooze", s)
	}
	users := []auth.User{{Name: "op", Role: auth.RoleOperator, TokenSHA256: auth.HashToken("tok")}}
	f.Fuzz(func(t *testing.T, action, body string) {
		inc := newFakeIncidents(time.Now, incident.Incident{ID: "inc-1", Truck: "T1", State: incident.StateOpen})
		c := New(nil, Options{Config: Config{Users: users}, Incidents: inc})
		if err := c.Open(); err != nil {
			t.Fatal(err)
		}
		h := c.Handler()
		req := httptest.NewRequest("POST", "/api/incidents/inc-1/"+url.PathEscape(action), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", action, body, w.Code, w.Body)
		}
		if w.Code == 200 && !json.Valid([]byte(strings.TrimSpace(body))) && strings.TrimSpace(body) != "" {
			t.Fatalf("%s %q acted on a malformed body", action, body)
		}
	})
}

// BenchmarkHistoryMemory fills 1,000 trucks' chart history (the default
// 6 h at 20 s) and reports the heap it takes per truck.
func BenchmarkHistoryMemory(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c := New(nil, Options{})
		start := time.Now().Add(-DefaultHistory)
		for i := range 1000 {
			id := fmt.Sprintf("truck-%04d", i)
			var rs []sensors.Reading
			for s := time.Duration(0); s < DefaultHistory; s += DefaultHistoryStep {
				at := start.Add(s).UnixNano()
				rs = append(rs, sensors.Reading{Time: at, Signal: sensors.CoolantTemp, Value: 88},
					sensors.Reading{Time: at, Signal: sensors.CargoTemp, Value: 18}, sensors.Reading{Time: at, Signal: sensors.WheelSpeed, Value: 70})
			}
			c.Readings(id, rs, time.Now())
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/1000/1024, "console_history_per_truck:KiB")
		runtime.KeepAlive(c)
	}
}
