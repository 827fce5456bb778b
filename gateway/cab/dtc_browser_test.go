package cab

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/abc4logistics/tankguard/sensors"
)

// TestBrowserFaultCodes shows the engine's active trouble codes on the cab
// page in headless Chromium: hidden while there are none, listed with
// readable names while the ECU reports them, hidden again when cleared.
func TestBrowserFaultCodes(t *testing.T) {
	ctx := newBrowser(t)
	s, ts, _ := newTestServer(t, Config{PageInterval: 50 * time.Millisecond})
	s.now = time.Now
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(ts.URL)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	poll(t, ctx, "the page connected", `document.body.dataset.conn === 'up'`)
	if hidden := must[bool](t, "faults hidden")(chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('tile-faults').classList.contains('hidden')`))); !hidden {
		t.Fatal("fault section shown with no codes")
	}
	s.SetDTCs([]sensors.DM1{{Source: 0, Lamps: sensors.Lamps{AmberWarning: sensors.LampOn}, DTCs: []sensors.DTC{
		{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 127}}}})
	poll(t, ctx, "two fault codes", `document.querySelectorAll('#faults li').length === 2 && !document.getElementById('tile-faults').classList.contains('hidden')`)
	text := must[string](t, "fault text")(chromedp.Run(ctx, chromedp.Text(chromedp.ID("faults"))))
	for _, want := range []string{"engine coolant temperature: above normal (most severe) (SPN 110 / FMI 0, 3×)", "engine oil pressure: below normal (most severe) (SPN 100 / FMI 1)"} {
		if !strings.Contains(text, want) {
			t.Errorf("fault list %q lacks %q", text, want)
		}
	}
	if st := must[string](t, "lamp")(chromedp.Run(ctx, chromedp.Text(`#tile-faults .state`))); st != "warning lamp" {
		t.Errorf("lamp state %q, want warning lamp", st)
	}
	screenshot(t, ctx, "cab-faults.png")
	s.SetDTCs([]sensors.DM1{{Source: 0}})
	poll(t, ctx, "fault section hidden again", `document.getElementById('tile-faults').classList.contains('hidden')`)
}
