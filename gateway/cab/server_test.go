package cab

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func postAck(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/ack", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", url) // the display's own page
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func ackBody(key string, sev detect.Severity) string {
	return `{"key":` + strconv.Quote(key) + `,"severity":"` + sev.String() + `"}`
}

func TestStateJSON(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	s.Readings([]sensors.Reading{
		{Signal: sensors.CoolantTemp, Value: 91.5},
		{Signal: sensors.CargoTemp, Value: 17},
		{Signal: sensors.WheelSpeed, Value: 82},
		{Signal: sensors.GNSSFixQuality, Value: 1},
		{Signal: sensors.SignalInvalid, Value: 5}, // ignored
	})
	s.Uplink(UplinkState{Online: false, Backlog: 1234, LastSent: t0.Add(-time.Minute)})
	s.SetBand(sensors.CoolantTemp, Band{Low: 80, High: 96, Limit: 110})
	s.SetBand(sensors.CoolantTemp, Band{Low: 96, High: 80})         // upside down: ignored
	s.SetBand(sensors.CoolantTemp, Band{Low: nanValue(), High: 80}) // not finite: ignored
	s.SetBand(sensors.WheelSpeed, Band{Low: 0, High: 90})           // not a temperature: ignored
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0.Add(-30*time.Second), 112)
	s.Transition(tr)

	code, body := get(t, ts.URL+"/api/state")
	if code != http.StatusOK {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
	st := decode[stateJSON](t, body)
	if st.Truck != "T1" || st.Sound != "critical" {
		t.Errorf("truck %q sound %q, want T1 critical", st.Truck, st.Sound)
	}
	if got := st.Status.Values["coolant_temp"]; got.V != 91.5 || got.At != t0.UnixMilli() {
		t.Errorf("coolant value %+v, want 91.5 at %d", got, t0.UnixMilli())
	}
	if len(st.Status.Values) != 4 {
		t.Errorf("values %v, want 4 signals", st.Status.Values)
	}
	if u := st.Status.Uplink; u.Online || u.Backlog != 1234 || u.LastSent != t0.Add(-time.Minute).UnixMilli() {
		t.Errorf("uplink %+v", u)
	}
	if b := st.Status.Bands["coolant_temp"]; b.Low == nil || b.High == nil || *b.Low != 80 || *b.High != 96 || b.Limit != 110 {
		t.Errorf("coolant band %+v, want the one set", b)
	}
	// Not learned yet: the default has the limit and no range.
	if b := st.Status.Bands["cargo_temp"]; b.Low != nil || b.High != nil || float64(b.Limit) != DefaultConfig().Bands["cargo_temp"].Limit || b.Limit == 0 {
		t.Errorf("cargo band %+v, want only the default limit", b)
	}
	if len(st.Alerts) != 1 {
		t.Fatalf("alerts %+v, want 1", st.Alerts)
	}
	a := st.Alerts[0]
	if a.Key != tr.Key() || a.Severity != "critical" || a.Kind != "limit" || a.Title != "ENGINE OVERHEATING" ||
		a.Start != tr.Start/1e6 || a.Value != 112 || a.DriverAck != nil {
		t.Errorf("alert %+v", a)
	}
	if p := st.Patterns["critical"]; len(p) != 2 || p[0] != 125 {
		t.Errorf("critical pattern %v ms", p)
	}
}

// A NaN baseline (none learned yet) must not break the JSON.
func TestStateJSONNaN(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	tr := raised(sensors.CargoTemp, detect.KindLimit, detect.SeverityCritical, t0, 70)
	tr.Baseline = nanValue()
	s.Transition(tr)
	s.Readings([]sensors.Reading{{Signal: sensors.CargoTemp, Value: nanValue()}})
	code, body := get(t, ts.URL+"/api/state")
	if code != http.StatusOK || !strings.Contains(body, `"baseline":null`) || !strings.Contains(body, `"v":null`) {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestEventsOrder(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{PageInterval: 20 * time.Millisecond})
	ev := openEvents(t, ts.URL)
	first := ev.next("state")
	if st := decode[stateJSON](t, first.Data); len(st.Alerts) != 0 || st.Sound != "none" {
		t.Fatalf("first state %+v, want no alerts", st)
	}

	tr := raised(sensors.CoolantTemp, detect.KindDeviation, detect.SeverityWarning, t0, 99)
	steps := []detect.Transition{
		tr,
		with(tr, detect.Changed, detect.SeverityCritical),
		with(tr, detect.Cleared, detect.SeverityCritical),
	}
	wantSound := []string{"warning", "critical", "none"}
	for _, x := range steps {
		s.Transition(x)
	}
	lastID, _ := strconv.Atoi(first.ID)
	for i, x := range steps {
		e := ev.next("alert")
		id, _ := strconv.Atoi(e.ID)
		if id <= lastID {
			t.Errorf("event %d: id %d after %d, want increasing", i, id, lastID)
		}
		lastID = id
		got := decode[alertEventJSON](t, e.Data)
		if got.Alert.Phase != x.Phase.String() || got.Alert.Severity != x.Severity.String() || got.Sound != wantSound[i] {
			t.Errorf("event %d: phase %s severity %s sound %s, want %s %s %s", i,
				got.Alert.Phase, got.Alert.Severity, got.Sound, x.Phase, x.Severity, wantSound[i])
		}
	}

	// Readings arrive in a throttled "status" event.
	s.Readings([]sensors.Reading{{Signal: sensors.CoolantTemp, Value: 90}, {Signal: sensors.WheelSpeed, Value: 55}})
	st := decode[statusJSON](t, ev.next("status").Data)
	if st.Values["coolant_temp"].V != 90 || st.Values["wheel_speed"].V != 55 {
		t.Errorf("status values %+v", st.Values)
	}
	if n := s.Stats().Clients; n != 1 {
		t.Errorf("Stats().Clients = %d, want 1", n)
	}
}

// A page that reconnects gets the full state again, with the alerts that
// opened while it was away.
func TestEventsResyncOnReconnect(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	ev := openEvents(t, ts.URL)
	ev.next("state")
	ev.close()

	tr := raised(sensors.CargoTemp, detect.KindLimit, detect.SeverityCritical, t0, 60)
	s.Transition(tr)
	ev2 := openEvents(t, ts.URL)
	st := decode[stateJSON](t, ev2.next("state").Data)
	if len(st.Alerts) != 1 || st.Alerts[0].Key != tr.Key() || st.Sound != "critical" {
		t.Fatalf("state after reconnect %+v, want the cargo alert", st)
	}
}

func TestDriverAck(t *testing.T) {
	s, ts, sink := newTestServer(t, Config{})
	ev := openEvents(t, ts.URL)
	ev.next("state")
	tr := raised(sensors.CoolantTemp, detect.KindDeviation, detect.SeverityWarning, t0.Add(-time.Minute), 99)
	s.Transition(tr)
	ev.next("alert")

	code, body := postAck(t, ts.URL, ackBody(tr.Key(), detect.SeverityWarning))
	if code != http.StatusOK {
		t.Fatalf("POST /api/ack: %d %s", code, body)
	}
	want := detect.Ack{Truck: "T1", Signal: sensors.CoolantTemp, Start: tr.Start, Time: t0.UnixNano(), By: "driver", Severity: detect.SeverityWarning, Origin: detect.AckDriver}
	if got := sink.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("acks %+v, want [%+v]", got, want)
	}
	got := decode[alertEventJSON](t, ev.next("alert").Data)
	if got.Sound != "none" || got.Alert.DriverAck == nil || got.Alert.DriverAck.Severity != "warning" || got.Alert.DriverAck.At != t0.UnixMilli() {
		t.Fatalf("alert after ack: sound %s ack %+v", got.Sound, got.Alert.DriverAck)
	}

	// A second press of the same alert stores nothing new.
	code, body = postAck(t, ts.URL, ackBody(tr.Key(), detect.SeverityWarning))
	if code != http.StatusOK || !strings.Contains(body, `"duplicate":true`) || len(sink.all()) != 1 {
		t.Fatalf("second ack: %d %s, %d acks", code, body, len(sink.all()))
	}

	// Worse sounds again, and can be acknowledged again.
	s.Transition(with(tr, detect.Changed, detect.SeverityCritical))
	if got := decode[alertEventJSON](t, ev.next("alert").Data); got.Sound != "critical" {
		t.Fatalf("sound after escalation %q, want critical", got.Sound)
	}
	// The page saw warning when the driver pressed: only warning is covered.
	postAck(t, ts.URL, ackBody(tr.Key(), detect.SeverityWarning))
	if n := len(sink.all()); n != 1 {
		t.Fatalf("ack of the already acknowledged severity stored %d acks, want 1", n)
	}
	postAck(t, ts.URL, ackBody(tr.Key(), detect.SeverityCritical))
	acks := sink.all()
	if len(acks) != 2 || acks[1].Severity != detect.SeverityCritical {
		t.Fatalf("acks %+v, want a second one at critical", acks)
	}
	if got := decode[alertEventJSON](t, ev.next("alert").Data); got.Sound != "none" {
		t.Fatalf("sound after second ack %q, want none", got.Sound)
	}

	// Down to warning and back up to critical sounds again.
	s.Transition(with(tr, detect.Changed, detect.SeverityWarning))
	s.Transition(with(tr, detect.Changed, detect.SeverityCritical))
	ev.next("alert")
	if got := decode[alertEventJSON](t, ev.next("alert").Data); got.Sound != "critical" {
		t.Fatalf("sound after re-escalation %q, want critical", got.Sound)
	}
	if st := s.Stats(); st.DriverAcks != 2 || st.BadRequests != 0 {
		t.Errorf("stats %+v, want 2 driver acks, 0 bad requests", st)
	}
}

func TestBadRequests(t *testing.T) {
	s, ts, sink := newTestServer(t, Config{})
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)
	s.Transition(tr)

	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		says                            string
		origin                          string
	}{
		{"ack with GET", "GET", "/api/ack", "", "", 405, "method GET not allowed", ""},
		{"events with POST", "POST", "/api/events", "", "", 405, "method POST not allowed", ""},
		{"state with DELETE", "DELETE", "/api/state", "", "", 405, "not allowed", ""},
		{"unknown page", "GET", "/admin", "", "", 404, `no such page "/admin"`, ""},
		{"unknown asset", "GET", "/static/nope.js", "", "", 404, "no such file", ""},
		{"not JSON", "POST", "/api/ack", "application/json", "ack!", 400, "ack body", ""},
		{"empty body", "POST", "/api/ack", "application/json", "", 400, "ack body", ""},
		{"unknown field", "POST", "/api/ack", "application/json", `{"key":"a","severity":"critical","x":1}`, 400, `unknown field "x"`, ""},
		{"two values", "POST", "/api/ack", "application/json", `{"key":"a","severity":"critical"}{}`, 400, "more than one", ""},
		{"no key", "POST", "/api/ack", "application/json", `{"severity":"critical"}`, 400, "key is missing", ""},
		{"bad severity", "POST", "/api/ack", "application/json", `{"key":"a","severity":"none"}`, 400, `severity "none"`, ""},
		{"form post", "POST", "/api/ack", "application/x-www-form-urlencoded", "key=a", 415, "want application/json", ""},
		{"too large", "POST", "/api/ack", "application/json", `{"key":"` + strings.Repeat("a", 2000) + `"}`, 413, "larger than", ""},
		{"no such alert", "POST", "/api/ack", "application/json", ackBody("T1/coolant_temp/1", detect.SeverityCritical), 409, "no such open alert", ""},
		{"foreign page", "POST", "/api/ack", "application/json", ackBody(tr.Key(), detect.SeverityCritical), 403, "is not this display", "http://example.com"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.origin == "" && tc.method == http.MethodPost {
				tc.origin = ts.URL // the display's own page
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code || !strings.Contains(string(b), tc.says) {
				t.Errorf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, res.StatusCode, b, tc.code, tc.says)
			}
			if got := s.Stats().BadRequests; got != uint64(i+1) {
				t.Errorf("BadRequests = %d, want %d", got, i+1)
			}
		})
	}
	if n := len(sink.all()); n != 0 {
		t.Errorf("bad requests produced %d acks", n)
	}
	if code, body := get(t, ts.URL+"/api/stats"); code != 200 || !strings.Contains(body, `"BadRequests":15`) {
		t.Errorf("GET /api/stats: %d %s", code, body)
	}
	// Acknowledging an alert that has cleared is a conflict, not a crash.
	s.Transition(with(tr, detect.Cleared, detect.SeverityCritical))
	if code, body := postAck(t, ts.URL, ackBody(tr.Key(), detect.SeverityCritical)); code != http.StatusConflict {
		t.Errorf("ack after clear: %d %s, want 409", code, body)
	}
}

func TestRemoteAck(t *testing.T) {
	s, ts, sink := newTestServer(t, Config{})
	ev := openEvents(t, ts.URL)
	ev.next("state")
	tr := raised(sensors.CargoTemp, detect.KindLimit, detect.SeverityCritical, t0, 58)
	s.Transition(tr)
	ev.next("alert")

	tests := []struct {
		name string
		ack  detect.Ack
		ok   bool
	}{
		{"other truck", detect.Ack{Truck: "T2", Signal: sensors.CargoTemp, Start: tr.Start, By: "alice"}, false},
		{"other start", detect.Ack{Truck: "T1", Signal: sensors.CargoTemp, Start: tr.Start + 1, By: "alice"}, false},
		{"other signal", detect.Ack{Truck: "T1", Signal: sensors.CoolantTemp, Start: tr.Start, By: "alice"}, false},
		{"invalid signal", detect.Ack{Truck: "T1", Start: tr.Start, By: "alice"}, false},
		{"operator", detect.Ack{Truck: "T1", Signal: sensors.CargoTemp, Start: tr.Start, Time: t0.Add(time.Minute).UnixNano(), By: "alice", Severity: detect.SeverityCritical}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.RemoteAck(tc.ack); got != tc.ok {
				t.Errorf("RemoteAck = %v, want %v", got, tc.ok)
			}
		})
	}
	got := decode[alertEventJSON](t, ev.next("alert").Data)
	if r := got.Alert.RemoteAck; r == nil || r.By != "alice" || r.At != t0.Add(time.Minute).UnixMilli() {
		t.Fatalf("remote ack shown as %+v", r)
	}
	// The operator's ack does not silence the cab: the driver must press.
	if got.Sound != "critical" || got.Alert.DriverAck != nil {
		t.Errorf("after remote ack: sound %s driverAck %+v, want critical and none", got.Sound, got.Alert.DriverAck)
	}
	if st := s.Stats(); st.RemoteAcks != 1 || st.RemoteAcksUnmatched != 4 {
		t.Errorf("stats %+v, want 1 remote ack and 4 unmatched", st)
	}
	if len(sink.all()) != 0 {
		t.Errorf("a remote ack was handed to OnAck")
	}
}

// The page must work with no network: every asset is embedded and nothing
// refers to another host.
func TestAssetsAreSelfContained(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{})
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	err := fs.WalkDir(webFS, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers outside the gateway: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, page := get(t, ts.URL+"/")
	if code != 200 || !strings.Contains(page, `id="ack"`) {
		t.Fatalf("GET /: %d", code)
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(page, -1) {
		if code, _ := get(t, ts.URL+src[1]); code != 200 {
			t.Errorf("GET %s: %d", src[1], code)
		}
	}
}

func TestRun(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0"}, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	ev := openEvents(t, "http://"+s.Addr())
	ev.next("state")
	if code, _ := get(t, "http://"+s.Addr()+"/"); code != 200 {
		t.Errorf("GET /: %d", code)
	}
	cancel() // also ends the open event stream
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestRunListenError(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:1"}, "T1", nil) // privileged or taken
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := New(Config{Listen: "127.0.0.1:0"}, "T1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s2.Run(ctx)
	<-s2.Ready()
	s.cfg.Listen = s2.Addr() // taken for sure
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "cab listen") {
		t.Fatalf("Run on a taken address: %v, want a cab listen error", err)
	}
	cancel()
}

// With a GPIO chip that does not exist the display still runs, and the
// fault shows on the page.
func TestRunGPIOMissing(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", GPIO: GPIOConfig{Chip: "/dev/gpiochip-none", Line: 3}}, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	code, body := get(t, "http://"+s.Addr()+"/api/state")
	st := decode[stateJSON](t, body)
	if code != 200 || !strings.Contains(st.Status.GPIO, "gpiochip-none") {
		t.Errorf("state gpio %q, want the open error", st.Status.GPIO)
	}
	s.Transition(raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)) // must not panic
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestHeartbeat(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Heartbeat: 30 * time.Millisecond})
	ev := openEvents(t, ts.URL)
	ev.next("state")
	if got := ev.next("ping"); got.Data != strconv.FormatInt(t0.UnixMilli(), 10) {
		t.Errorf("ping data %q, want the gateway's time in ms", got.Data)
	}
}

// A page that stops reading is disconnected and counted; the feed
// methods never wait for it.
func TestSlowPage(t *testing.T) {
	long := strings.Repeat("Very long text. ", 500)
	s, ts, _ := newTestServer(t, Config{
		WriteTimeout: 100 * time.Millisecond,
		Texts:        map[string]AlertText{"coolant_temp/limit": {Title: "X", What: long, Do: long}},
	})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: cab\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the page to connect", func() bool { return s.Stats().Clients == 1 })
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)
	for i := range 3000 { // ~48 MB of events; the page reads none. Blocking here hangs the test.
		x := tr
		x.Start += int64(i)
		s.Transition(x)
	}
	waitFor(t, "the stuck page to be dropped", func() bool { st := s.Stats(); return st.Clients == 0 && st.SlowClients == 1 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A Cleared for an alert other than the open one leaves the open one.
func TestClearOtherAlert(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	old := raised(sensors.CoolantTemp, detect.KindDeviation, detect.SeverityWarning, t0.Add(-time.Hour), 99)
	cur := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)
	s.Transition(old)
	s.Transition(cur) // a new excursion replaces the old one on this signal
	s.Transition(with(old, detect.Cleared, detect.SeverityWarning))
	_, body := get(t, ts.URL+"/api/state")
	st := decode[stateJSON](t, body)
	if len(st.Alerts) != 1 || st.Alerts[0].Key != cur.Key() || st.Sound != "critical" {
		t.Fatalf("state %+v, want only the current critical alert", st.Alerts)
	}
}
