package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// recordMapLabels makes every page record the text drawn on the map
// canvas, with its box, in window.mapLabels (observation 6 of issue 18:
// the attribution covered an axis label).
const recordMapLabels = `(() => {
  window.mapLabels = [];
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y) {
    if (this.canvas.id === 'map') window.mapLabels.push({ text: String(text), x, y, w: this.measureText(String(text)).width });
    return fill.apply(this, arguments);
  };
})()`

// TestBrowserMapLabelsAndTruckRange: the map's attribution, scale bar and
// buttons cover no graticule label at any zoom, and a truck heard from
// for ten minutes fills its charts by default instead of a sixth of a
// 1 h window.
func TestBrowserMapLabelsAndTruckRange(t *testing.T) {
	chromium(t)
	e := start(t, 4, area{lat: 51.92, lon: 4.30, spread: 0.3}, nil)
	var ids []string
	for _, tr := range e.fleet.trucks {
		ids = append(ids, tr.id)
	}
	if err := e.fleet.backlog(ids, 10*time.Minute, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	dctx, stopDrive := context.WithCancel(context.Background())
	driving := e.drive(t, dctx)
	defer func() { stopDrive(); <-driving }()

	ctx := newBrowser(t, 1280, 800)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordMapLabels}); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, e.url, "vera")
	poll(t, ctx, "4 trucks on the map", `+document.getElementById('map').dataset.drawn === 4`, 15*time.Second)

	// At each zoom, the graticule labels drawn ("12.5°") against the
	// attribution's box, in canvas coordinates.
	const check = `(() => {
	  const S = window.tankguard, m = S.map, cr = m.canvas.getBoundingClientRect();
	  window.mapLabels = [];
	  m.draw();
	  const boxes = [['attribution', document.getElementById('attrib')], ['zoom buttons', document.querySelector('.mapctl')]].map(([n, el]) => {
	    const r = el.getBoundingClientRect();
	    return [n, r.left - cr.left, r.top - cr.top, r.right - cr.left, r.bottom - cr.top];
	  });
	  const labels = window.mapLabels.filter((l) => l.text.endsWith('°'));
	  const hit = [];
	  for (const l of labels) for (const [n, x0, y0, x1, y1] of boxes)
	    if (l.x < x1 && l.x + l.w > x0 && l.y - 9 < y1 && l.y + 1 > y0) hit.push(l.text + ' under the ' + n);
	  return [labels.length, hit.join(', ')];
	})()`
	for i := range 8 {
		got := eval[[]any](t, ctx, check)
		n, hits := int(got[0].(float64)), got[1].(string)
		if n < 4 {
			t.Fatalf("zoom step %d: only %d graticule labels drawn", i, n)
		}
		if hits != "" {
			t.Errorf("zoom step %d (z %.1f): %s", i, eval[float64](t, ctx, `window.tankguard.map.z`), hits)
		}
		eval[any](t, ctx, `window.tankguard.map.zoomAt(window.tankguard.map.w / 2, window.tankguard.map.h / 2, 0.5)`)
	}

	// The truck page's default range fits the ten minutes of data.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#/truck/"+ids[0])); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the truck's charts", `+document.getElementById('c-coolant').dataset.points > 20`, 15*time.Second)
	time.Sleep(1200 * time.Millisecond) // a redraw with live data
	// Measured on the pixels: the columns where the value line is drawn,
	// against the plot's width (the chart's axis margins are 44 and 10 px).
	for _, c := range []struct {
		id  string
		rgb [3]int
	}{{"c-coolant", [3]int{0x1c, 0x5d, 0x99}}, {"c-cargo", [3]int{0x7a, 0x3e, 0x9d}}, {"c-speed", [3]int{0x2b, 0x7a, 0x78}}} {
		span := eval[float64](t, ctx, fmt.Sprintf(`(() => {
		  const cv = document.getElementById(%q), d = window.devicePixelRatio || 1, W = cv.width, H = cv.height;
		  const px = cv.getContext('2d').getImageData(0, 0, W, H).data, want = %v;
		  let x0 = Infinity, x1 = -Infinity;
		  for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) {
		    const i = (y * W + x) * 4;
		    if (px[i + 3] > 200 && Math.abs(px[i] - want[0]) + Math.abs(px[i + 1] - want[1]) + Math.abs(px[i + 2] - want[2]) < 30) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); break; }
		  }
		  return x1 > x0 ? (x1 - x0) / (W - 54 * d) : 0;
		})()`, c.id, fmt.Sprintf("[%d,%d,%d]", c.rgb[0], c.rgb[1], c.rgb[2])))
		t.Logf("%s: the value line spans %.2f of the plot's width", c.id, span)
		if span < 0.8 {
			t.Errorf("%s: ten minutes of data span %.2f of the chart's width by default, want at least 0.8", c.id, span)
		}
	}
}

// Observations 2 and 3 of issue 18, in the console: a driver's
// ACKNOWLEDGE after an operator's was lost, and the acknowledgements
// table gave each the incident's current severity. Here the driver
// acknowledges the warning, the engine goes critical, the operator
// acknowledges in the console and then the driver again: the truck page
// lists all three, each with the severity acknowledged then.
func TestBrowserEveryAcknowledgementShown(t *testing.T) {
	chromium(t)
	e := start(t, 2, area{lat: 51.92, lon: 4.30, spread: 0.1}, nil)
	const truck = "truck-001"
	e.fleet.set(truck, func(t *simTruck) { t.ackAfter = 4 * time.Second })
	now := time.Now()
	if err := e.fleet.backlog([]string{truck}, 5*time.Minute, now, func(t *simTruck, ago time.Duration) {
		t.overheat = ago < 3*time.Minute
	}); err != nil {
		t.Fatal(err)
	}
	var inc incident.Incident
	deadline := time.Now().Add(20 * time.Second)
	acks := func(i incident.Incident) (n int) {
		for _, h := range i.History {
			if h.Type == incident.EventAcknowledged {
				n++
			}
		}
		return n
	}
	for inc.ID == "" || inc.Severity != "critical" || acks(inc) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no critical incident acknowledged by the driver: %+v", inc)
		}
		for _, i := range e.c.List() {
			if i.Truck == truck && i.Signal == "coolant_temp" {
				inc = i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if inc.State != incident.StateOpen {
		t.Fatalf("the driver's warning ack covers the critical: state %s", inc.State)
	}

	ctx := newBrowser(t, 1280, 800)
	signIn(t, ctx, e.url, "otto")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#/truck/"+truck)); err != nil {
		t.Fatal(err)
	}
	sel := fmt.Sprintf(`#t-feed li[data-incident="%s"] button[data-act=ack]`, inc.ID)
	poll(t, ctx, "the incident's Acknowledge button", fmt.Sprintf(`!!document.querySelector('%s')`, sel), 15*time.Second)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the operator's acknowledgement", `document.getElementById('t-acks').textContent.includes('otto')`, 10*time.Second)

	// The driver presses ACKNOWLEDGE on the critical, after the operator.
	var ack detect.Ack
	e.fleet.set(truck, func(t *simTruck) {
		t.seq++
		ack = detect.Ack{Seq: t.seq, Truck: truck, Signal: sensors.CoolantTemp, Start: inc.Sources[incident.SourceEdge].Start.UnixNano(),
			Time: time.Now().UnixNano(), By: "driver", Severity: detect.SeverityCritical}
	})
	if err := e.fleet.publish([]uplink.Batch{{Truck: truck, Acks: []detect.Ack{ack}}}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "three acknowledgements", `document.querySelectorAll('#t-acks tr').length === 3`, 10*time.Second)
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('#t-acks tr')].map((r) => r.textContent)`) // newest first
	want := []struct{ who, sev string }{{"driver (cab)", "critical"}, {"otto (console)", "critical"}, {"driver (cab)", "warning"}}
	for i, w := range want {
		if !strings.Contains(rows[i], w.who) || !strings.HasSuffix(rows[i], ", "+w.sev) {
			t.Errorf("acknowledgement %d: %q, want %s at %s", i, rows[i], w.who, w.sev)
		}
	}
	if got, _ := e.c.Incident(inc.ID); acks(got) != 3 {
		t.Errorf("incident history %+v, want 3 acknowledgements", got.History)
	}
}
