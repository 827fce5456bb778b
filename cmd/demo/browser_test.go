package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/sensors"
)

// chromium returns the path of Debian's chromium, skipping the test when it
// is missing unless CI is set.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found (apt-get install chromium); required under CI")
	}
	t.Skip("chromium not found")
	return ""
}

// newBrowser starts a fresh headless chromium with its own profile, as the
// cab's kiosk browser is started.
func newBrowser(t *testing.T, ctx context.Context) context.Context {
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
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return bctx
}

// TestCabAlertAckReachesCloud is the driver's path end to end: the cab page
// of a running gateway, in headless Chromium, shows the alert view when the
// simulated engine overheats; the driver presses acknowledge; the
// acknowledgement is stored, uplinked and archived by the cloud. Before
// that, an operator acknowledges the incident in the cloud, and the cab
// page shows who did.
func TestCabAlertAckReachesCloud(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bctx := newBrowser(t, ctx)
	sys := startSystem(t, ctx, "", 35*time.Second)
	cab := sys.gateway.Cab()
	select {
	case <-cab.Ready():
	case <-ctx.Done():
		t.Fatal("cab display never listened")
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+cab.Addr()+"/")); err != nil {
		t.Fatalf("load the cab page: %v", err)
	}
	// Live readings arrive before the fault.
	if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](
		`document.body.dataset.conn === 'up' && /^\d+$/.test(document.querySelector('#tile-coolant .num').textContent)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("no live engine temperature on the cab page: %v", err)
	}
	edge := sys.waitEdgeAlert(t, ctx, sensors.CoolantTemp)
	if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](
		`!document.getElementById('alert').classList.contains('hidden')`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("alert view not shown after the gateway raised %+v: %v", edge, err)
	}
	// The fleet team's side: the operator acknowledges the incident; the
	// cloud sends the acknowledgement down to the truck's cab.
	var incID string
	waitFor(t, ctx, 30*time.Second, "the cloud opens an incident for the overheat", func() bool {
		for _, inc := range sys.cloud.List() {
			if inc.Truck == sys.truck.ID && inc.Signal == sensors.CoolantTemp.String() {
				incID = inc.ID
				return true
			}
		}
		return false
	})
	if _, err := sys.cloud.Acknowledge(incID, "otto"); err != nil {
		t.Fatalf("operator acknowledge: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](
		`/Acknowledged by otto/.test(document.getElementById('a-remote').textContent)`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the cab page does not show the operator's acknowledgement: %v", err)
	}
	if sound, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.dataset.sound`)); err != nil || sound == "none" {
		t.Fatalf("the cab went silent on the operator's acknowledgement (sound %q, %v): the driver must still acknowledge", sound, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("ack"))); err != nil {
		t.Fatalf("press acknowledge: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](
		`document.body.dataset.sound === 'none'`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("alarm still sounding after acknowledge: %v", err)
	}
	waitFor(t, ctx, 30*time.Second, "the driver's acknowledgement is archived by the cloud", func() bool {
		acks, err := archive.ReadAcks(sys.cloud.ArchiveDir())
		if err != nil {
			return false
		}
		for _, a := range acks {
			if a.Truck == sys.truck.ID && a.Signal == sensors.CoolantTemp.String() && a.By == "driver" && a.StartNS == edge.Start {
				return true
			}
		}
		return false
	})
}
