package cab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// The browser test writes screenshots when CAB_SCREENSHOTS names a
// directory, e.g. CAB_SCREENSHOTS=$PWD/docs (the README shows
// docs/cab-alert.png).
const screenshotsEnv = "CAB_SCREENSHOTS"

// chromium returns the path of Debian's chromium. It skips the test when
// there is none, unless CI is set.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found (apt-get install chromium); CI is set, so this is a failure")
	}
	t.Skip("chromium not found; install Debian's chromium to run the browser test")
	return ""
}

// newBrowser starts a fresh headless chromium with its own profile; extra
// options come last (and win).
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// As the cab kiosk is started: the alarm may sound before a touch.
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 800),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// poll waits until the JavaScript expression is truthy in the page.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(document.body.dataset) + ' ack button: ' + document.getElementById('ack').textContent`))
		t.Fatalf("waiting for %s (%s): %v; body data %s", what, expr, err, state)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	png := must[[]byte](t, "screenshot")(chromedp.Run(ctx, chromedp.CaptureScreenshot()))
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// TestBrowserAlertAndAck loads the cab page in headless Chromium, drives a
// real detector into an engine overheat, sees the alert view take over
// with its alarm, presses acknowledge and checks the Ack that the gateway
// receives.
func TestBrowserAlertAndAck(t *testing.T) {
	ctx := newBrowser(t)
	s, ts, sink := newTestServer(t, Config{PageInterval: 50 * time.Millisecond})
	s.now = time.Now
	now := time.Now()

	det, err := detect.New("T1", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Normal driving, 1 Hz, starting 3 minutes ago.
	at := now.Add(-3 * time.Minute)
	feed := func(coolant float64) (last detect.Transition, any bool) {
		batch := []sensors.Reading{
			{Time: at.UnixNano(), Signal: sensors.CoolantTemp, Value: coolant},
			{Time: at.UnixNano(), Signal: sensors.CargoTemp, Value: 18},
			{Time: at.UnixNano(), Signal: sensors.WheelSpeed, Value: 62},
			{Time: at.UnixNano(), Signal: sensors.GNSSFixQuality, Value: 1},
			{Time: at.UnixNano(), Signal: sensors.GNSSSatellites, Value: 9},
			{Time: at.UnixNano(), Signal: sensors.GNSSLatitude, Value: 52.3702},
			{Time: at.UnixNano(), Signal: sensors.GNSSLongitude, Value: 4.8952},
		}
		at = at.Add(time.Second)
		for _, r := range batch {
			if tr, ok := det.Observe(r); ok {
				s.Transition(tr)
				last, any = tr, true
			}
		}
		s.Readings(batch)
		return last, any
	}
	for range 40 {
		feed(88)
	}
	// As the gateway does once the detector has learned the band.
	s.SetBand(sensors.CoolantTemp, Band{Low: 82, High: 94, Limit: 110})
	s.SetBand(sensors.CargoTemp, Band{Low: 12, High: 24, Limit: 55})
	s.Uplink(UplinkState{Online: false, Backlog: 1234, LastSent: now.Add(-4 * time.Minute)})

	// A 10-inch cab tablet in landscape.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	poll(t, ctx, "the live engine temperature", `document.body.dataset.conn === 'up' && document.querySelector('#tile-coolant .num').textContent === '88'`)
	if got := must[string](t, "uplink badge")(chromedp.Run(ctx, chromedp.Text(chromedp.ID("uplink")))); !strings.Contains(got, "No fleet link") {
		t.Errorf("uplink badge %q, want no fleet link", got)
	}
	if got := must[string](t, "gps badge")(chromedp.Run(ctx, chromedp.Text(chromedp.ID("gps")))); got != "GPS fix · 9 sat" {
		t.Errorf("gps badge %q", got)
	}
	screenshot(t, ctx, "cab-normal.png")

	// The engine overheats until the detector calls it critical.
	var tr detect.Transition
	for range 60 {
		if last, ok := feed(118); ok {
			tr = last
			if tr.Severity == detect.SeverityCritical {
				break
			}
		}
	}
	if tr.Severity != detect.SeverityCritical || tr.Phase == detect.Cleared {
		t.Fatalf("detector gave %+v after 60 s at 118 °C, want an open critical alert", tr)
	}
	poll(t, ctx, "the alert view", `!document.getElementById('alert').classList.contains('hidden') && document.getElementById('alert').classList.contains('critical')`)
	title := must[string](t, "title")(chromedp.Run(ctx, chromedp.Text(chromedp.ID("a-title"))))
	if want := s.cfg.text(tr.Signal, tr.Kind).Title; title != want {
		t.Errorf("alert title %q, want %q", title, want)
	}
	poll(t, ctx, "the critical alarm", `document.body.dataset.sound === 'critical'`)
	if audio := must[string](t, "audio")(chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.audio`))); audio != "running" {
		t.Errorf("audio context %q, want running (the buzzer must be audible)", audio)
	}
	poll(t, ctx, "the duration", `/for 2 min/.test(document.getElementById('a-since').textContent)`)
	screenshot(t, ctx, "cab-alert.png")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("ack"))); err != nil {
		t.Fatalf("press acknowledge: %v", err)
	}
	select {
	case a := <-sink.ch:
		want := detect.Ack{Truck: "T1", Signal: tr.Signal, Start: tr.Start, Time: a.Time, By: "driver", Severity: detect.SeverityCritical, Origin: detect.AckDriver}
		if a != want || a.Time < now.UnixNano() {
			t.Errorf("ack %+v, want %+v at or after %v", a, want, now)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Ack delivered 10 s after the click")
	}
	poll(t, ctx, "the alarm to stop", `document.body.dataset.sound === 'none' && !document.getElementById('a-acked').classList.contains('hidden')`)
	screenshot(t, ctx, "cab-acked.png")

	s.RemoteAck(detect.Ack{Truck: "T1", Signal: tr.Signal, Start: tr.Start, Time: time.Now().UnixNano(), By: "alice", Severity: detect.SeverityCritical})
	poll(t, ctx, "the operator's acknowledgement", `/Acknowledged by alice/.test(document.getElementById('a-remote').textContent)`)

	// Back to normal: the alert clears and the normal view returns.
	for range 120 {
		if last, ok := feed(88); ok && last.Phase == detect.Cleared {
			break
		}
	}
	poll(t, ctx, "the normal view", `document.getElementById('alert').classList.contains('hidden') && document.body.dataset.sound === 'none'`)

	// Nothing was fetched from anywhere but the gateway.
	foreign := must[[]string](t, "resources")(chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))`)))
	if len(foreign) != 0 {
		t.Errorf("page fetched from elsewhere: %v", foreign)
	}
	if n := len(sink.all()); n != 1 {
		t.Errorf("%d acks delivered, want 1", n)
	}
	if n := s.Stats().BadRequests; n != 0 {
		t.Errorf("the page made %d bad requests", n)
	}
	// The page ran without breaking its own Content-Security-Policy.
	if n := must[int](t, "csp")(chromedp.Run(ctx, chromedp.Evaluate[int](`window.cspViolations || 0`))); n != 0 {
		t.Errorf("%d Content-Security-Policy violations", n)
	}
}

// The page reconnects by itself when the gateway restarts, and shows what
// happened meanwhile.
func TestBrowserReconnects(t *testing.T) {
	ctx := newBrowser(t)
	s, err := New(Config{Listen: "127.0.0.1:0"}, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	<-s.Ready()
	addr := s.Addr()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	poll(t, ctx, "connected", `document.body.dataset.conn === 'up'`)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the lost connection", `document.body.dataset.conn === 'down'`)

	// A new gateway process on the same address, with an alert open.
	s2, err := New(Config{Listen: addr}, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Transition(raised(sensors.CargoTemp, detect.KindLimit, detect.SeverityCritical, time.Now(), 61))
	runCtx2, stop2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- s2.Run(runCtx2) }()
	defer func() { stop2(); <-done2 }()
	poll(t, ctx, "the alert after reconnecting", `document.body.dataset.conn === 'up' && document.getElementById('a-title').textContent === 'CARGO TANK TOO HOT'`)
}

// A warning acknowledged by the driver sounds again when it becomes
// critical, and the page asks for a new acknowledgement.
func TestBrowserEscalation(t *testing.T) {
	ctx := newBrowser(t)
	s, ts, sink := newTestServer(t, Config{})
	s.now = time.Now
	s.Readings([]sensors.Reading{{Signal: sensors.CargoTemp, Value: 31}, {Signal: sensors.CoolantTemp, Value: 86}})
	s.Uplink(UplinkState{Online: true, Backlog: 12})
	tr := raised(sensors.CargoTemp, detect.KindDeviation, detect.SeverityWarning, time.Now().Add(-47*time.Second), 31)
	tr.Baseline = 19
	s.Transition(tr)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	poll(t, ctx, "the warning", `document.body.dataset.sound === 'warning' && document.getElementById('alert').classList.contains('warning')`)
	screenshot(t, ctx, "cab-warning.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("ack"))); err != nil {
		t.Fatalf("press acknowledge: %v", err)
	}
	poll(t, ctx, "silence after the ack", `document.body.dataset.sound === 'none'`)

	worse := with(tr, detect.Changed, detect.SeverityCritical)
	worse.Kind, worse.Value = detect.KindLimit, 57
	s.Transition(worse)
	poll(t, ctx, "the alarm again", `document.body.dataset.sound === 'critical' && !document.getElementById('ack').classList.contains('hidden')`)
	if got := must[string](t, "title")(chromedp.Run(ctx, chromedp.Text(chromedp.ID("a-title")))); got != "CARGO TANK TOO HOT" {
		t.Errorf("title after escalation %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("ack"))); err != nil {
		t.Fatalf("press acknowledge: %v", err)
	}
	poll(t, ctx, "silence after the second ack", `document.body.dataset.sound === 'none'`)

	// On a small 7-inch cab screen the button still fits, below all text.
	s.Transition(raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, time.Now(), 121))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 480)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the button on a small screen", `(() => {
		const b = document.getElementById('ack').getBoundingClientRect();
		const body = document.getElementById('a-body');
		return document.body.dataset.sound === 'critical' && b.height >= 64 && b.bottom <= innerHeight &&
			body.scrollHeight <= body.clientHeight + 1;
	})()`)
	screenshot(t, ctx, "cab-small.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("ack"))); err != nil {
		t.Fatalf("press acknowledge: %v", err)
	}
	poll(t, ctx, "silence after the third ack", `document.body.dataset.sound === 'none'`)
	acks := sink.all()
	if len(acks) != 3 || acks[0].Severity != detect.SeverityWarning || acks[1].Severity != detect.SeverityCritical ||
		acks[2].Signal != sensors.CoolantTemp {
		t.Errorf("acks %+v, want cargo warning, cargo critical, coolant critical", acks)
	}
}
