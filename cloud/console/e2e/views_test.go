package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
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
