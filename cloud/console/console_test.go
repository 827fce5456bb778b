package console

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestConsole(t *testing.T) {
	c := New(slog.New(slog.DiscardHandler), Options{Tick: 10 * time.Millisecond, Stats: func() any { return map[string]int{"readings": 3} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
		close(events)
	}()
	time.Sleep(20 * time.Millisecond) // let the stream subscribe

	now := time.Now()
	t0 := now.Add(-time.Minute).UnixNano()
	c.Readings("T1", []sensors.Reading{
		{Seq: 2, Time: t0 + 2e9, Value: 95, Signal: sensors.CoolantTemp},
		{Seq: 1, Time: t0 + 1e9, Value: 50, Signal: sensors.CoolantTemp}, // older: must not win
		{Seq: 3, Time: t0 + 2e9, Value: 52.5, Signal: sensors.GNSSLatitude},
	}, now)
	c.Alert("edge", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: t0, Time: t0})
	c.Alert("cloud", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: t0, Time: t0})

	seen := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for !(seen["alert"] && seen["trucks"]) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			seen[ev] = true
		case <-timeout:
			t.Fatalf("events seen %v", seen)
		}
	}

	var trucks []Truck
	get(t, srv.URL+"/api/trucks", &trucks)
	if len(trucks) != 1 || *trucks[0].Coolant != 95 || *trucks[0].Lat != 52.5 || trucks[0].Severity != "critical" ||
		trucks[0].OpenAlerts["edge"] != 1 || trucks[0].OpenAlerts["cloud"] != 1 {
		t.Fatalf("trucks %+v", trucks)
	}
	c.Alert("edge", detect.Transition{Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Cleared, Start: t0, Time: t0 + 5e9})
	trucks = nil
	get(t, srv.URL+"/api/trucks", &trucks)
	if trucks[0].OpenAlerts["edge"] != 0 || trucks[0].OpenAlerts["cloud"] != 1 {
		t.Fatalf("after clear: %+v", trucks[0].OpenAlerts)
	}
	var alerts []Alert
	get(t, srv.URL+"/api/alerts", &alerts)
	if len(alerts) != 3 || alerts[2].Phase != "cleared" {
		t.Fatalf("alerts %+v", alerts)
	}
	var stats map[string]int
	get(t, srv.URL+"/api/stats", &stats)
	if stats["readings"] != 3 {
		t.Fatalf("stats %v", stats)
	}
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		r, err := http.Get(srv.URL + p)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, err, r.Status)
		}
		r.Body.Close()
	}
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
