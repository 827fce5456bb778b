package cloud

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

func notifications(t *testing.T, r *recorder) []incident.Notification {
	t.Helper()
	var out []incident.Notification
	for _, req := range r.requests() {
		var n incident.Notification
		if err := json.Unmarshal(req.body, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestBurstIsOneNotification: an excursion that is raised, worsens and
// clears within the group wait reaches the webhook as one notification
// listing all three changes. Its event is "opened": it is the incident's
// first message, and a receiver filtering on opened must get it
// (observation 4 of issue 18: it said "changed").
func TestBurstIsOneNotification(t *testing.T) {
	hook := newRecorder(t, 200, "")
	c := startCloud(t, t.TempDir(), func(c *Config) {
		c.Notify.Webhooks = []WebhookConfig{{URL: hook.URL, Secret: "k"}}
		c.Notify.GroupWait = 300 * time.Millisecond
	})
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-time.Hour).UTC()
	tr := func(seq uint64, ph detect.Phase, sev detect.Severity, at time.Duration) detect.Transition {
		return detect.Transition{Seq: seq, Truck: "G1", Signal: sensors.CargoTemp, Kind: detect.KindDeviation, Severity: sev,
			Phase: ph, Start: t0.UnixNano(), Time: t0.Add(at).UnixNano(), Value: 30}
	}
	for _, x := range []detect.Transition{
		tr(1, detect.Raised, detect.SeverityWarning, 10*time.Second),
		tr(2, detect.Changed, detect.SeverityCritical, 20*time.Second),
		tr(3, detect.Cleared, detect.SeverityCritical, 30*time.Second),
	} {
		publishBatch(t, cl, uplink.KindAlerts, uplink.Batch{Truck: "G1", Alerts: []detect.Transition{x}})
	}
	waitFor(t, "notification", func() bool { return len(hook.requests()) >= 1 })
	time.Sleep(500 * time.Millisecond) // nothing else may follow
	ns := notifications(t, hook)
	if len(ns) != 1 {
		t.Fatalf("%d notifications, want 1: %+v", len(ns), ns)
	}
	if want := []string{"opened", "changed", "resolved"}; !slices.Equal(ns[0].Events, want) || ns[0].Event != "opened" || ns[0].Incident.State != "resolved" {
		t.Fatalf("notification events %v (event %s, state %s), want %v", ns[0].Events, ns[0].Event, ns[0].Incident.State, want)
	}
}

// TestTruckOfflineIncident: a truck silent past silence plus grace gets
// one offline incident, resolved when its data returns; a shorter gap
// pages nobody.
func TestTruckOfflineIncident(t *testing.T) {
	hook := newRecorder(t, 200, "")
	c := startCloud(t, t.TempDir(), func(c *Config) {
		c.Notify.Webhooks = []WebhookConfig{{URL: hook.URL, Secret: "k"}}
		c.Notify.Tick = 20 * time.Millisecond
		c.Notify.GroupWait = 1
		// Wide enough that a loaded machine's scheduling jitter does not
		// turn a 400 ms gap into an offline truck.
		c.Incidents.OfflineSilence = 500 * time.Millisecond
		c.Incidents.OfflineGrace = 1500 * time.Millisecond
	})
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().UTC()
	seq := uint64(0)
	send := func() {
		seq++
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "O1", Readings: series(sensors.WheelSpeed, seq, seq, t0, func(int) float64 { return 50 })})
	}
	// Gaps of 400 ms: past the silence, within the grace: no incident.
	for range 4 {
		send()
		time.Sleep(400 * time.Millisecond)
	}
	if n := len(hook.requests()); n != 0 {
		t.Fatalf("%d notifications during short gaps", n)
	}
	waitFor(t, "offline incident", func() bool { return len(hook.requests()) == 1 })
	n := notifications(t, hook)[0]
	if n.Event != "opened" || n.Incident.Kind != incident.KindOffline || n.Incident.Truck != "O1" {
		t.Fatalf("notification %+v", n)
	}
	send()
	waitFor(t, "resolved", func() bool { return len(hook.requests()) == 2 })
	if n := notifications(t, hook)[1]; n.Event != "resolved" || n.Incident.ID != notifications(t, hook)[0].Incident.ID {
		t.Fatalf("second notification %+v", n)
	}
}
