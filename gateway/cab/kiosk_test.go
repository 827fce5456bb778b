package cab

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// kioskSizes are the cab screens the page is checked at.
var kioskSizes = [][2]int64{{800, 480}, {1024, 600}, {1280, 800}}

// ackCovered returns, for the ACKNOWLEDGE button, what covers it: the
// element on top at its corners, edges and centre where that is not the
// button, and "off screen" or "sound bar overlaps" problems. "" if none.
const ackCovered = `(() => {
  const b = document.getElementById('ack'), r = b.getBoundingClientRect(), out = [];
  if (r.height < 64) out.push('button only ' + r.height + ' px high');
  if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) out.push('button off screen ' + JSON.stringify(r));
  const bar = document.getElementById('sound-off').getBoundingClientRect();
  if (bar.height === 0) out.push('sound bar not shown');
  if (bar.left < r.right && bar.right > r.left && bar.top < r.bottom && bar.bottom > r.top) out.push('sound bar ' + JSON.stringify(bar) + ' overlaps the button ' + JSON.stringify(r));
  for (const fx of [0.02, 0.5, 0.98]) for (const fy of [0.04, 0.5, 0.96]) {
    const x = r.left + fx * r.width, y = r.top + fy * r.height, el = document.elementFromPoint(x, y);
    if (el !== b && !b.contains(el)) out.push('at ' + Math.round(x) + ',' + Math.round(y) + ' ' + (el ? (el.id || el.tagName) : 'nothing'));
  }
  return out.join('; ');
})()`

// blockedAudio makes the page's AudioContext stay suspended, as a browser
// that allows sound only after a touch keeps it.
const blockedAudio = `(() => {
  const AC = window.AudioContext;
  window.AudioContext = class extends AC {
    constructor(...a) { super(...a); this.suspend(); }
    resume() { return Promise.resolve(); }
  };
})()`

// Observation 5 of issue 18: the "Tap anywhere to turn on the alarm
// sound" bar covered the bottom of ACKNOWLEDGE at every size tried. On a
// kiosk whose browser blocks sound until a touch, the bar and the button
// are both fully visible at each cab screen size, and nothing lies on the
// button. CAB_SCREENSHOTS gets cab-kiosk-WxH.png.
func TestBrowserKioskSoundBarClearOfAck(t *testing.T) {
	// As a kiosk whose browser blocks sound until a touch (headless
	// chromium plays regardless, so its AudioContext is held suspended).
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: blockedAudio}); err != nil {
		t.Fatal(err)
	}
	s, ts, _ := newTestServer(t, Config{})
	s.now = time.Now
	s.Readings([]sensors.Reading{{Signal: sensors.CoolantTemp, Value: 121}, {Signal: sensors.CargoTemp, Value: 19}})
	s.Uplink(UplinkState{Online: true})
	s.Transition(raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, time.Now().Add(-20*time.Second), 121))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(kioskSizes[0][0], kioskSizes[0][1]), chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	for _, sz := range kioskSizes {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(sz[0], sz[1])); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, fmt.Sprintf("the critical alert with the sound bar at %dx%d", sz[0], sz[1]), fmt.Sprintf(`innerWidth === %d && document.body.dataset.sound === 'critical' &&
			document.body.dataset.audio !== 'running' && !document.getElementById('sound-off').classList.contains('hidden') &&
			!document.getElementById('alert').classList.contains('hidden')`, sz[0]))
		time.Sleep(100 * time.Millisecond) // the fit after the resize
		screenshot(t, ctx, fmt.Sprintf("cab-kiosk-%dx%d.png", sz[0], sz[1]))
		if got := must[string](t, "ack rectangle")(chromedp.Run(ctx, chromedp.Evaluate[string](ackCovered))); got != "" {
			t.Errorf("%dx%d: ACKNOWLEDGE covered: %s", sz[0], sz[1], got)
		}
		// The text above still fits (it shrinks rather than hide).
		if ok := must[bool](t, "fit")(chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = document.getElementById('a-body'); return b.scrollHeight <= b.clientHeight + 1; })()`))); !ok {
			t.Errorf("%dx%d: the alert text overflows", sz[0], sz[1])
		}
	}
}

// Observation 5 of issue 18, the words: the uplink badge said "N
// waiting"; before the band was learned a made-up one was drawn as if
// learned; above the critical limit the banner said "WARNING - check
// soon" while the text said to pull over.
func TestBrowserDriverWording(t *testing.T) {
	ctx := newBrowser(t)
	s, ts, _ := newTestServer(t, Config{PageInterval: 50 * time.Millisecond})
	s.now = time.Now
	read := func(coolant float64) {
		s.Readings([]sensors.Reading{{Signal: sensors.CoolantTemp, Value: coolant}, {Signal: sensors.CargoTemp, Value: 19}})
	}
	read(88)
	s.Uplink(UplinkState{Online: true, Backlog: 1234, LastSent: time.Now()})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1024, 600), chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	text := func(id string) string {
		t.Helper()
		return must[string](t, id)(chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, id))))
	}
	poll(t, ctx, "the engine temperature", `document.querySelector('#tile-coolant .num').textContent === '88'`)

	// Not learned yet: no range drawn, and the page says so.
	if got := text("#tile-coolant .bandtext"); !strings.Contains(got, "learning the normal range") || strings.Contains(got, "normal 70") {
		t.Errorf("band text before learning %q, want it to say the range is being learned", got)
	}
	if hidden := must[bool](t, "band")(chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = document.querySelector('#tile-coolant .band'); return getComputedStyle(b).visibility === 'hidden' || getComputedStyle(b).display === 'none'; })()`))); !hidden {
		t.Error("a normal band is drawn before one was learned")
	}
	s.SetBand(sensors.CoolantTemp, Band{Low: 80, High: 96, Limit: 110})
	poll(t, ctx, "the learned band", `document.querySelector('#tile-coolant .bandtext').textContent === 'normal 80 to 96 °C · limit 110 °C' && getComputedStyle(document.querySelector('#tile-coolant .band')).visibility === 'visible' && getComputedStyle(document.querySelector('#tile-coolant .band')).display !== 'none'`)

	// The link, in words: no record counts.
	for _, u := range []UplinkState{{Online: true, Backlog: 1234}, {Online: false, Backlog: 56789}} {
		s.Uplink(u)
		poll(t, ctx, "the uplink badge", fmt.Sprintf(`document.getElementById('uplink').classList.contains(%q)`, map[bool]string{true: "ok", false: "warn"}[u.Online]))
		got := text("#uplink")
		if strings.Contains(got, "waiting") || strings.ContainsAny(got, "0123456789") {
			t.Errorf("uplink badge %q (online %v): a driver reads no record counts", got, u.Online)
		}
		if !u.Online && !strings.Contains(got, "when back in coverage") {
			t.Errorf("offline badge %q, want to say the data goes when back in coverage", got)
		}
	}
	// The longest badge fits the header of the smallest cab screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 480)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the header within 800 px", `innerWidth === 800 && document.getElementById('top').scrollWidth <= innerWidth && document.getElementById('uplink').getBoundingClientRect().right <= innerWidth`)
	screenshot(t, ctx, "cab-offline-800x480.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1024, 600)); err != nil {
		t.Fatal(err)
	}

	// A warning at the warning limit, the reading already above the
	// critical limit: the banner and the text both say critical.
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityWarning, time.Now().Add(-5*time.Second), 112)
	read(112)
	s.Transition(tr)
	poll(t, ctx, "the alert", `!document.getElementById('alert').classList.contains('hidden')`)
	poll(t, ctx, "the critical banner above the limit", `document.getElementById('a-level').textContent === 'STOP SAFELY NOW' && document.getElementById('alert').classList.contains('critical')`)
	if got := text("#a-do"); !strings.Contains(got, "Pull over") {
		t.Errorf("above the critical limit the text says %q, want to pull over", got)
	}
	// Back under the critical limit, above the warning one: both say warning.
	read(106)
	poll(t, ctx, "the warning banner under the limit", `document.getElementById('a-level').textContent === 'WARNING — CHECK SOON' && document.getElementById('alert').classList.contains('warning')`)
	if got := text("#a-do"); strings.Contains(got, "Pull over") || strings.Contains(strings.ToLower(got), "stop as soon") {
		t.Errorf("under the critical limit the warning's text says %q", got)
	}
	screenshot(t, ctx, "cab-near-limit.png")
}
