package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestBrowserTruckFaults: a truck's DTC report (its engine's active
// trouble codes) shows on its console page with readable names and the
// lamp, and the section disappears when the codes clear.
func TestBrowserTruckFaults(t *testing.T) {
	chromium(t)
	e := start(t, 1, area{lat: 51.92, lon: 4.30, spread: 0.01}, nil)
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.c.BrokerAddr()).SetClientID("truck-001").SetAutoReconnect(false))
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	send := func(dm1 sensors.DM1) {
		p, err := uplink.EncodeDTCReport(uplink.NewDTCReport("truck-001", time.Now().UnixNano(), []sensors.DM1{dm1}))
		if err != nil {
			t.Fatal(err)
		}
		if tok := cl.Publish(uplink.Topic("truck-001", uplink.KindDTC), 1, true, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	if err := e.fleet.tick(time.Now()); err != nil {
		t.Fatal(err)
	}
	send(sensors.DM1{Lamps: sensors.Lamps{AmberWarning: sensors.LampOn}, DTCs: []sensors.DTC{{SPN: 110, FMI: 0, Occurrences: 2}, {SPN: 100, FMI: 1, Occurrences: 127}}})

	ctx := newBrowser(t, 1280, 800)
	signIn(t, ctx, e.url, "vera")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#/truck/truck-001")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "two fault codes on the truck page", `document.body.dataset.view === 'truck' && !document.getElementById('t-faults').hidden && document.querySelectorAll('#t-faultlist li').length === 2`, 15*time.Second)
	txt := eval[string](t, ctx, `document.getElementById('t-faults').textContent`)
	for _, want := range []string{"engine coolant temperature: above normal (most severe)", "SPN 110 / FMI 0, 2×", "engine oil pressure: below normal (most severe)", "amber warning lamp"} {
		if !strings.Contains(txt, want) {
			t.Errorf("fault section %q lacks %q", txt, want)
		}
	}
	send(sensors.DM1{})
	// The page picks the change up with the truck's next live update.
	if err := e.fleet.tick(time.Now()); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "fault section hidden once cleared", `document.getElementById('t-faults').hidden`, 15*time.Second)
}
