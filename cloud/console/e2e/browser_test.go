package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/abc4logistics/tankguard/cloud"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/uplink"
)

// screenshotsEnv names a directory; the screenshot test writes
// console-map.png and console-truck.png there (CONSOLE_SCREENSHOTS=$PWD/docs).
const screenshotsEnv = "CONSOLE_SCREENSHOTS"

// chromium returns the path of Debian's chromium; it skips the test when
// there is none, unless CI is set.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found (apt-get install chromium); CI is set, so this is a failure")
	}
	t.Skip("chromium not found; install Debian's chromium to run the browser tests")
	return ""
}

// newBrowser starts a fresh headless chromium with its own profile.
func newBrowser(t testing.TB, w, h int) context.Context {
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
		chromedp.WindowSize(w, h),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// poll waits until the JavaScript expression is truthy in the page,
// across page loads.
func poll(t testing.TB, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(min(time.Until(deadline), 2*time.Second))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' ' + JSON.stringify(document.body.dataset) + ' ' + (document.getElementById('flash')||{}).textContent`))
			t.Fatalf("waiting for %s (%s): %v; page %s", what, expr, err, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hashPW(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// env is a running cloud with its synthetic fleet.
type env struct {
	c     *cloud.Cloud
	fleet *fleet
	url   string
	stop  func()
}

// start runs a cloud with users vera (viewer) and otto (operator),
// passwords "<name>-password", and a fleet of n trucks in area a. mod may
// change the config.
func start(t testing.TB, n int, a area, mod func(*cloud.Config)) *env {
	t.Helper()
	cfg := cloud.Config{
		DataDir: t.TempDir(), BrokerListen: "127.0.0.1:0", BrokerPlainTCP: true, HTTPListen: "127.0.0.1:0", FlushInterval: time.Second,
		Console: console.Config{Users: []auth.User{
			{Name: "vera", Role: auth.RoleViewer, PasswordHash: hashPW(t, "vera-password")},
			{Name: "otto", Role: auth.RoleOperator, PasswordHash: hashPW(t, "otto-password")},
		}},
	}
	cfg.Detect = detect.DefaultConfig()
	cfg.Detect.Coolant.Sustain = 3 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("E2E_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, err := cloud.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("cloud ended: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("cloud not ready")
	}
	f, err := newFleet(c.BrokerAddr(), n, a, 42)
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	e := &env{c: c, fleet: f, url: "http://" + c.HTTPAddr()}
	e.stop = func() {
		f.close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cloud run: %v", err)
		}
	}
	t.Cleanup(func() { e.stop() })
	return e
}

// drive ticks the fleet every second in real time until ctx ends.
func (e *env) drive(t testing.TB, ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if err := e.fleet.tick(time.Now()); err != nil && ctx.Err() == nil {
				t.Errorf("fleet tick: %v", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// signIn fills the sign-in form and waits for the live console.
func signIn(t testing.TB, ctx context.Context, base, user string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the sign-in page", `location.pathname === '/login' && !!document.getElementById('name')`, 10*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("name"), user),
		chromedp.SendKeys(chromedp.ID("password"), user+"-password"),
		chromedp.Click(chromedp.ID("signin")),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the live console", `location.pathname === '/' && document.body.dataset.conn === 'up' && window.tankguard.me && window.tankguard.me.user === '`+user+`'`, 15*time.Second)
}

// TestBrowserConsole signs in, watches the simulated trucks move on the
// map, sees an injected overheat appear as an incident within 2 s of the
// cloud opening it, acknowledges it as an operator (the truck gets the
// alert_ack command) and checks that a viewer cannot acknowledge.
func TestBrowserConsole(t *testing.T) {
	chromium(t)
	hook := webhook(t)
	e := start(t, 20, area{lat: 51.92, lon: 4.30, spread: 0.08}, func(c *cloud.Config) {
		c.Notify.Webhooks = []cloud.WebhookConfig{{URL: hook, Secret: "s"}}
	})
	dctx, stopDrive := context.WithCancel(context.Background())
	driving := e.drive(t, dctx)
	defer func() { stopDrive(); <-driving }()

	ctx := newBrowser(t, 1400, 900)
	signIn(t, ctx, e.url, "otto")
	poll(t, ctx, "20 trucks on the map", `window.tankguard.trucks.size === 20 && +document.getElementById('map').dataset.drawn === 20`, 15*time.Second)

	// Trucks move: the map position of truck-001 changes, and the canvas
	// shows a status colour there.
	pos := func() [2]float64 {
		return eval[[2]float64](t, ctx, `(() => { const S = window.tankguard, t = S.trucks.get('truck-001'); return S.map.toScreen(...S.map.project(t.lat, t.lon)); })()`)
	}
	p := pos()
	eval[any](t, ctx, fmt.Sprintf(`window.tankguard.map.zoomAt(%f, %f, 3)`, p[0], p[1])) // zoom in 8x on it
	time.Sleep(300 * time.Millisecond)
	p0 := pos()
	time.Sleep(3 * time.Second)
	p1 := pos()
	moved := (p1[0]-p0[0])*(p1[0]-p0[0]) + (p1[1]-p0[1])*(p1[1]-p0[1])
	if moved < 1 {
		t.Fatalf("truck-001 did not move on the map: %v -> %v", p0, p1)
	}
	rgb := eval[[]int](t, ctx, fmt.Sprintf(`(() => { const c = document.getElementById('map'), d = window.devicePixelRatio || 1;
		return Array.from(c.getContext('2d').getImageData(Math.round(%f*d), Math.round(%f*d), 1, 1).data).slice(0, 3); })()`, p1[0], p1[1]))
	if fmt.Sprint(rgb) != "[46 158 68]" { // the normal colour, #2e9e44
		t.Errorf("map pixel at truck-001 is %v, want the normal green", rgb)
	}
	t.Logf("truck-001 moved %.1f px on the map in 3 s", math.Sqrt(moved))

	// The truck's cab would get the operator's acknowledgement on its
	// command topic: listen there.
	cmds := make(chan uplink.Command, 4)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.c.BrokerAddr()).SetClientID("e2e-cab-007"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(50)
	sub.Subscribe(uplink.Topic("truck-007", uplink.KindCommand), 1, func(_ mqtt.Client, m mqtt.Message) {
		var c uplink.Command
		if json.Unmarshal(m.Payload(), &c) == nil {
			cmds <- c
		}
	}).Wait()

	// Inject an engine overheat on truck-007: straight past the critical
	// limit, so the incident does not rise from warning after the ack
	// (a worse severity re-opens an acknowledged incident).
	e.fleet.set("truck-007", func(t *simTruck) { t.overheat, t.coolant = true, 119 })
	var inc incident.Incident
	deadline := time.Now().Add(60 * time.Second)
	for inc.ID == "" {
		if time.Now().After(deadline) {
			t.Fatal("the cloud opened no incident for truck-007's overheat")
		}
		for _, i := range e.c.List() {
			if i.Truck == "truck-007" && i.Signal == "coolant_temp" && i.Sources[incident.SourceCloud] != nil {
				inc = i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	sel := fmt.Sprintf(`#feed li[data-incident="%s"]`, inc.ID)
	poll(t, ctx, "the incident in the feed", fmt.Sprintf(`!!document.querySelector('%s button[data-act=ack]')`, sel), 10*time.Second)
	shown := eval[float64](t, ctx, fmt.Sprintf(`window.tankguard.shownAt[%q]`, inc.ID))
	lag := time.UnixMilli(int64(shown)).Sub(inc.OpenedAt)
	t.Logf("incident %s opened by the cloud at %s, shown in the console %v later", inc.ID, inc.OpenedAt.Format("15:04:05.000"), lag)
	if lag > 2*time.Second {
		t.Errorf("the incident appeared %v after the cloud opened it, want within 2 s", lag)
	}
	if got := eval[string](t, ctx, `document.getElementById('n-critical').textContent + '/' + document.getElementById('n-warning').textContent`); got == "0/0" {
		t.Errorf("status counts show no critical or warning truck")
	}

	// The operator acknowledges it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel+" button[data-act=ack]"), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the acknowledgement in the feed", fmt.Sprintf(`(document.querySelector('%s .l2')||{}).textContent.includes('acknowledged by otto')`, sel), 10*time.Second)
	// Its notification log: the webhook took the notifications (a burst
	// within the group wait goes out as one).
	poll(t, ctx, "the notification log", fmt.Sprintf(`(() => { const i = window.tankguard.incidents.get(%q); return i && (i.notifications || []).some(d => d.result === 'ok' && d.channel.startsWith('webhook')); })()`, inc.ID), 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel+" details summary"))); err != nil {
		t.Fatal(err)
	}
	if txt := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('%s details').textContent`, sel)); !strings.Contains(txt, "webhook http://127.0.0.1") || !strings.Contains(txt, "ok") {
		t.Errorf("notification log in the feed: %q", txt)
	}
	got, err := e.c.Incident(inc.ID)
	if err != nil || got.AckedBy != "otto" || got.AckedAt == nil || got.State != incident.StateAcknowledged {
		t.Fatalf("after ack: %+v %v", got, err)
	}
	select {
	case c := <-cmds:
		if c.Type != uplink.CommandAlertAck || c.Ack == nil || c.Ack.By != "otto" || c.Ack.Signal != "coolant_temp" {
			t.Fatalf("command to the truck: %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the truck got no alert_ack command")
	}

	// A viewer sees the incident but has no buttons, and the API refuses
	// the action with 403 even with a valid CSRF token.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the sign-in page after sign-out", `location.pathname === '/login'`, 10*time.Second)
	signIn(t, ctx, e.url, "vera")
	e.fleet.set("truck-012", func(t *simTruck) { t.overheat, t.coolant = true, 119 })
	poll(t, ctx, "truck-012's incident for the viewer", `[...document.querySelectorAll('#feed li[data-incident]')].some(li => li.textContent.includes('truck-012'))`, 60*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('#feed button[data-act]').length`); n != 0 {
		t.Errorf("the viewer sees %d action buttons", n)
	}
	var open string
	for _, i := range e.c.List() {
		if i.Truck == "truck-012" && i.State == incident.StateOpen {
			open = i.ID
		}
	}
	code := eval[int](t, ctx, fmt.Sprintf(`fetch('/api/incidents/%s/ack', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': window.tankguard.me.csrf}, body: '{}'}).then(r => r.status)`, open))
	if code != 403 {
		t.Errorf("viewer ack: HTTP %d, want 403", code)
	}
	if i, _ := e.c.Incident(open); i.State != incident.StateOpen {
		t.Errorf("the viewer changed incident %s: %s", open, i.State)
	}

	// The truck page: charts with data and the incident with its history.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#/truck/truck-007")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "truck-007's page", `document.body.dataset.view === 'truck' && +document.getElementById('c-coolant').dataset.points > 3 && document.querySelector('#t-feed li[data-incident]')`, 15*time.Second)
	if txt := eval[string](t, ctx, `document.getElementById('t-acks').textContent`); !strings.Contains(txt, "otto") {
		t.Errorf("truck page acknowledgements %q, want otto's; incidents: %s", txt, eval[string](t, ctx, `JSON.stringify([...window.tankguard.incidents.values()].filter(i => i.truck === 'truck-007'))`))
	}
}

// TestScreenshots writes docs/console-map.png and docs/console-truck.png
// when CONSOLE_SCREENSHOTS names a directory: 120 trucks across the
// Benelux and western Germany, one with two hours of history including a
// past overheat that its driver acknowledged.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		t.Skip("set " + screenshotsEnv + "=$PWD/docs to write the console screenshots")
	}
	chromium(t)
	hook := webhook(t)
	e := start(t, 150, area{lat: 51.2, lon: 7.6, spread: 3.0, wide: 3.4}, func(c *cloud.Config) {
		c.Incidents.OfflineSilence = 15 * time.Second
		c.Notify.Webhooks = []cloud.WebhookConfig{{URL: hook, Secret: "s"}}
	})
	now := time.Now().Truncate(time.Second)
	featured := "truck-004"
	e.fleet.set(featured, func(t *simTruck) { t.ackAfter = 25 * time.Second })
	var ids []string
	for _, t := range e.fleet.trucks {
		ids = append(ids, t.id)
	}
	// Two hours for the featured truck (an overheat 40 minutes ago), ten
	// minutes for the others.
	if err := e.fleet.backlog([]string{featured}, 2*time.Hour, now, func(t *simTruck, ago time.Duration) {
		t.overheat = ago < 42*time.Minute && ago > 37*time.Minute
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.fleet.backlog(ids[4:], 10*time.Minute, now, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"truck-031", "truck-077", "truck-101"} {
		if err := e.fleet.setOffline(id); err != nil {
			t.Fatal(err)
		}
	}
	e.fleet.set("truck-052", func(t *simTruck) { t.cargoHot = true })
	e.fleet.set("truck-018", func(t *simTruck) { t.overheat = true })
	e.fleet.set("truck-090", func(t *simTruck) { t.overheat = true })
	dctx, stopDrive := context.WithCancel(context.Background())
	driving := e.drive(t, dctx)
	defer func() { stopDrive(); <-driving }()

	ctx := newBrowser(t, 1600, 900)
	signIn(t, ctx, e.url, "otto")
	poll(t, ctx, "two critical trucks", `+document.getElementById('n-critical').textContent >= 2 && +document.getElementById('n-warning').textContent >= 1`, 90*time.Second)
	time.Sleep(2 * time.Second)
	// Acknowledge one of them, so the feed shows both states.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#feed li.open.critical button[data-act=ack]`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	// Hover over truck-090 for its tooltip.
	xy := eval[[2]float64](t, ctx, `(() => { const S = window.tankguard, t = S.trucks.get('truck-090'), r = document.getElementById('map').getBoundingClientRect();
		const p = S.map.toScreen(...S.map.project(t.lat, t.lon)); return [r.left + p[0], r.top + p[1]]; })()`)
	if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, xy[0], xy[1])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	shot(t, ctx, filepath.Join(dir, "console-map.png"))

	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#/truck/"+featured)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the truck page with history", `+document.getElementById('c-coolant').dataset.points > 100`, 20*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ranges button[data-range="3600"]`)),
		chromedp.Click(chromedp.CSS(`#t-feed details summary`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	shot(t, ctx, filepath.Join(dir, "console-truck.png"))
}

// webhook returns the URL of a receiver that answers every notification 200.
func webhook(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func shot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// BenchmarkConsole1000Trucks loads the console with 1,000 live trucks
// (each publishing once a second) and reports the time from navigation to
// the first map frame with trucks, the JS heap after 20 s of live
// updates, and frames rendered per second with their mean and worst
// render time in those 20 s.
func BenchmarkConsole1000Trucks(b *testing.B) {
	chromium(b)
	e := start(b, 1000, area{lat: 50.5, lon: 9.0, spread: 8}, nil)
	dctx, stopDrive := context.WithCancel(context.Background())
	driving := e.drive(b, dctx)
	defer func() { stopDrive(); <-driving }()
	ctx := newBrowser(b, 1600, 900)
	signIn(b, ctx, e.url, "vera")
	if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{}); err != nil {
		b.Fatal(err)
	}
	var firstMS, heapMB, fps, worstMS, meanMS float64
	for b.Loop() {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/")); err != nil {
			b.Fatal(err)
		}
		poll(b, ctx, "1000 trucks drawn", `+document.getElementById('map').dataset.drawn === 1000`, 60*time.Second)
		// From navigation start to the first map frame with trucks.
		firstMS += eval[float64](b, ctx, `window.tankguard.marks.firstDraw`)
		r0 := eval[float64](b, ctx, `(() => { const S = window.tankguard; S.maxRenderMs = 0; S.renderMs = 0; return S.rendered; })()`)
		time.Sleep(20 * time.Second)
		r1 := eval[float64](b, ctx, `window.tankguard.rendered`)
		fps += (r1 - r0) / 20
		worstMS = max(worstMS, eval[float64](b, ctx, `window.tankguard.maxRenderMs`))
		meanMS += eval[float64](b, ctx, `window.tankguard.renderMs`) / (r1 - r0)
		m, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range m.Metrics {
			if x.Name == "JSHeapUsedSize" {
				heapMB += x.Value / (1 << 20)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(firstMS/n, "console_1000_first_render_ms:ms")
	b.ReportMetric(heapMB/n, "console_1000_js_heap:MB")
	b.ReportMetric(fps/n, "console_1000_frames_per_s:frames/s")
	b.ReportMetric(meanMS/n, "console_1000_frame_mean_ms:ms")
	b.ReportMetric(worstMS, "console_1000_frame_worst_ms:ms")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "go_heap_MB") // cloud and synthetic fleet
}

// TestBrowserTiles configures a tile server (a local one here): the map
// fetches tiles from it, allowed by the page's Content-Security-Policy,
// and draws them under the trucks.
func TestBrowserTiles(t *testing.T) {
	chromium(t)
	var img bytes.Buffer
	tile := image.NewRGBA(image.Rect(0, 0, 256, 256))
	draw.Draw(tile, tile.Bounds(), &image.Uniform{color.RGBA{0xab, 0xcd, 0xef, 0xff}}, image.Point{}, draw.Src)
	if err := png.Encode(&img, tile); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(img.Bytes())
	}))
	defer tiles.Close()
	e := start(t, 5, area{lat: 48.85, lon: 2.35, spread: 0.2}, func(c *cloud.Config) {
		c.Console.TileURL = tiles.URL + "/{z}/{x}/{y}.png"
		c.Console.TileAttribution = "test tiles"
	})
	if err := e.fleet.tick(time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t, 1000, 700)
	signIn(t, ctx, e.url, "vera")
	poll(t, ctx, "5 trucks on the map", `+document.getElementById('map').dataset.drawn === 5`, 15*time.Second)
	poll(t, ctx, "tiles drawn", `+document.getElementById('map').dataset.tiles > 0`, 10*time.Second)
	// Drawing another origin's image taints the canvas: proof the tiles
	// went onto it (reading its pixels back is refused).
	if err := eval[string](t, ctx, `(() => { try { document.getElementById('map').toDataURL(); return 'clean'; } catch (e) { return e.name; } })()`); err != "SecurityError" {
		t.Errorf("map canvas: %s, want tainted by the tiles", err)
	}
	if served.Load() == 0 {
		t.Fatal("no tile requested")
	}
	if got := eval[string](t, ctx, `document.getElementById('attrib').textContent`); got != "test tiles" {
		t.Errorf("attribution %q", got)
	}
}
