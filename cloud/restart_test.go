package cloud

import (
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestDetectorStateSurvivesRestart raises a cloud alert, restarts the
// cloud, and sends normal readings: the restored detector clears the
// alert it had open (a fresh one would still be learning and say nothing).
func TestDetectorStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	all := alertThenStop(t, dir, "R1")
	c2 := startCloud(t, dir, nil)
	cl2 := dial(t, c2.BrokerAddr(), "sim-2")
	publishBatch(t, cl2, uplink.KindTelemetry, uplink.Batch{Truck: "R1", Readings: all[90:]})
	waitFor(t, "cloud clears after restart", func() bool { return c2.Stats().CloudAlerts == 1 })
	if err := c2.stop(); err != nil {
		t.Fatal(err)
	}
	alerts, err := archive.ReadAlerts(c2.ArchiveDir())
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, a := range alerts {
		if a.Source == archive.SourceCloud && a.Truck == "R1" {
			phases = append(phases, a.Phase)
		}
	}
	if len(phases) != 2 || phases[0] != "raised" || phases[1] != "cleared" {
		t.Fatalf("cloud alert phases %v, want [raised cleared]", phases)
	}
}

// TestDetectorStateDroppedOnConfigChange: after a restart with another
// detector configuration the stored state is not restored (it would bring
// the old configuration back): the new detector starts learning.
func TestDetectorStateDroppedOnConfigChange(t *testing.T) {
	dir := t.TempDir()
	all := alertThenStop(t, dir, "R2")
	c2 := startCloud(t, dir, func(c *Config) {
		c.Detect = detect.DefaultConfig()
		c.Detect.Coolant.WarnHigh, c.Detect.Coolant.CritHigh = 125, 130
	})
	cl2 := dial(t, c2.BrokerAddr(), "sim-2")
	publishBatch(t, cl2, uplink.KindTelemetry, uplink.Batch{Truck: "R2", Readings: all[90:]})
	waitFor(t, "readings after restart", func() bool { return c2.Stats().Readings == 30 })
	if err := c2.stop(); err != nil {
		t.Fatal(err)
	}
	if n := c2.Stats().CloudAlerts; n != 0 {
		t.Fatalf("%d cloud alerts after the config change; the old state was restored", n)
	}
}

// alertThenStop starts a cloud in dir, sends truck 90 s of coolant readings
// at 1 Hz that rise from 88 to 118 °C after 60 s, waits for the cloud's
// alert and stops the cloud. It returns all 120 s of readings; the last 30
// (back at 88 °C) are not sent.
func alertThenStop(t *testing.T, dir, truck string) []sensors.Reading {
	t.Helper()
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	all := series(sensors.CoolantTemp, 1, 120, t0, func(i int) float64 {
		if i >= 60 && i < 90 {
			return 118
		}
		return 88
	})
	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "sim-1")
	for i := 0; i < 90; i += 30 {
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: truck, Readings: all[i : i+30]})
	}
	waitFor(t, "cloud alert", func() bool { return c.Stats().CloudAlerts == 1 })
	cl.Disconnect(100)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	return all
}
