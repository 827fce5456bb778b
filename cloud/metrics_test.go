package cloud

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestMetrics feeds the cloud good, duplicate and bad data and an edge
// alert, then scrapes /metrics on the console's listener.
func TestMetrics(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-time.Minute)
	flat := func(int) float64 { return 60 }
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "T9", Readings: series(sensors.CoolantTemp, 1, 5, t0, flat)})
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "T9", Readings: series(sensors.CoolantTemp, 4, 7, t0.Add(3*time.Second), flat)})
	publish(t, cl, uplink.Topic("T9", uplink.KindTelemetry), []byte("not a batch"))
	publishBatch(t, cl, uplink.KindAlerts, uplink.Batch{Truck: "T9", Alerts: []detect.Transition{{
		Seq: 8, Truck: "T9", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
		Phase: detect.Raised, Start: t0.UnixNano(), Time: t0.Add(8 * time.Second).UnixNano(), Value: 121,
	}}})
	waitFor(t, "ingest", func() bool {
		s := c.Stats()
		return s.Readings == 7 && s.BadPayloads == 1 && s.EdgeAlerts == 1 && len(c.List()) == 1
	})

	// Like every cloud endpoint, /metrics needs a session or an API token.
	anon, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without credentials: %s, want 401", anon.Status)
	}
	resp, err := http.DefaultClient.Do(authed("GET", "http://"+c.HTTPAddr()+"/metrics", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	text := string(body)
	tests := []struct{ name, line string }{
		{"data messages", `tankguard_cloud_messages_total{lane="data"} 4`},
		{"new readings", `tankguard_cloud_readings_total 7`},
		{"duplicates rejected", `tankguard_cloud_rejected_total{cause="duplicate_reading"} 2`},
		{"bad payload rejected", `tankguard_cloud_rejected_total{cause="bad_payload"} 1`},
		{"edge alert", `tankguard_cloud_alerts_total{source="edge"} 1`},
		{"open critical incident", `tankguard_cloud_incidents{severity="critical",state="open"} 1`},
		{"no notification channel, nothing sent", `tankguard_cloud_notifications_total{result="sent"} 0`},
		{"nothing refused by the broker", `tankguard_cloud_broker_refused_total{cause="publish"} 0`},
		{"runtime metrics", `go_goroutines `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(text, tc.line) {
				t.Errorf("/metrics lacks %q", tc.line)
			}
		})
	}
	// The console still serves everything else on the same listener.
	resp, err = http.Get("http://" + c.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("console page: %s", resp.Status)
	}
}
