package gateway

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/sensors"
)

// gather collects m through a pedantic registry (which also checks that
// Describe and Collect agree) and returns every sample keyed by its
// name{label=value,...} in label-name order.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = value(mt)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// TestMetricsFromRunningGateway runs a gateway against a loopback CAN bus
// that sends good and bad frames, with its broker unreachable, and checks
// what the metrics say about inputs, rejects, the queue and the uplink.
func TestMetricsFromRunningGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody answers on
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	cfg := DefaultConfig()
	cfg.Truck = "truck-42"
	cfg.DataDir = t.TempDir()
	cfg.CAN = []string{"tcp://" + ln.Addr().String()}
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://" + deadAddr
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(g)
	ctx, cancel := context.WithCancel(context.Background())
	var grp errgroup.Group
	grp.Go(func() error { return g.Run(ctx) })
	defer func() {
		cancel()
		if err := grp.Wait(); err != nil {
			t.Error(err)
		}
	}()

	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	coolant, err := dec.NewFrame(65262, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.EncodeSignal(&coolant.Data, sensors.CoolantTemp, 88); err != nil {
		t.Fatal(err)
	}
	unknown := can.Frame{ID: 0x18FEAA00, Length: 8, IsExtended: true} // PGN 65194: not in the DBC
	standard := can.Frame{ID: 0x123, Length: 8}                       // 11-bit id
	tx := socketcan.NewTransmitter(conn)
	for _, f := range []can.Frame{coolant, coolant, coolant, unknown, unknown, standard} {
		if err := tx.TransmitFrame(ctx, f); err != nil {
			t.Fatal(err)
		}
	}

	const (
		readings = "tankguard_gateway_readings_total{source=can,truck=truck-42}"
		frames   = "tankguard_gateway_can_frames_total{truck=truck-42}"
		failed   = "tankguard_gateway_uplink_connects_total{result=failed,truck=truck-42}"
		stored   = "tankguard_gateway_queue_records{kind=reading,truck=truck-42}"
	)
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = gather(t, m)
		if got[frames] == 6 && got[failed] >= 1 && got[stored] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not settle: frames %v, connect failures %v, stored %v", got[frames], got[failed], got[stored])
		}
		time.Sleep(20 * time.Millisecond)
	}
	tests := []struct {
		name, key string
		want      float64
	}{
		{"good frames become readings", readings, 3},
		{"no NMEA source, no NMEA readings", "tankguard_gateway_readings_total{source=nmea,truck=truck-42}", 0},
		{"unknown PGN counted", "tankguard_gateway_rejected_total{cause=can_unknown_pgn,truck=truck-42}", 2},
		{"11-bit frame counted", "tankguard_gateway_rejected_total{cause=can_not_extended,truck=truck-42}", 1},
		{"bus connected once", "tankguard_gateway_source_events_total{event=can_connect,truck=truck-42}", 1},
		{"offline uplink", "tankguard_gateway_uplink_online{truck=truck-42}", 0},
		{"nothing acknowledged", "tankguard_gateway_uplink_records_total{truck=truck-42}", 0},
		{"nothing lost on append", "tankguard_gateway_buffer_append_errors_total{truck=truck-42}", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := got[tc.key]
			if !ok {
				t.Fatalf("%s missing", tc.key)
			}
			if v != tc.want {
				t.Errorf("%s = %v, want %v", tc.key, v, tc.want)
			}
		})
	}
	if age := got["tankguard_gateway_queue_oldest_unsent_age_seconds{truck=truck-42}"]; age <= 0 || age > 60 {
		t.Errorf("oldest unsent age %v s, want a small positive age", age)
	}
	if _, ok := got["tankguard_gateway_cab_clients{truck=truck-42}"]; ok {
		t.Error("cab metrics present with the cab off")
	}

	// The handler serves the same in the text format, with runtime metrics.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	for _, want := range []string{
		`tankguard_gateway_readings_total{source="can",truck="truck-42"} 3`,
		`# TYPE tankguard_gateway_rejected_total counter`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMetricsAlertsAndManyGateways checks the alert counter and that two
// gateways in one process share one collector without clashing.
func TestMetricsAlertsAndManyGateways(t *testing.T) {
	a, b := newTestGateway(t), newTestGatewayNamed(t, "truck-08")
	overheat(t, a)
	m := NewMetrics(a)
	m.Add(b)
	got := gather(t, m)
	if v := got["tankguard_gateway_alerts_total{phase=raised,severity=warning,truck=truck-07}"] +
		got["tankguard_gateway_alerts_total{phase=raised,severity=critical,truck=truck-07}"]; v < 1 {
		t.Errorf("truck-07 raised alerts = %v, want >= 1; have %v", v, keysWith(got, "alerts_total"))
	}
	for k := range got {
		if strings.Contains(k, "alerts_total") && strings.Contains(k, "truck-08") {
			t.Errorf("truck-08 raised nothing, yet %s", k)
		}
	}
	if _, ok := got["tankguard_gateway_cab_clients{truck=truck-08}"]; !ok {
		t.Error("truck-08's cab metrics missing")
	}
}

func newTestGatewayNamed(t *testing.T, truck string) *Gateway {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Truck = truck
	cfg.DataDir = t.TempDir()
	cfg.CAN = []string{"tcp://127.0.0.1:1"}
	cfg.Cab.Listen = "127.0.0.1:0"
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.queue.Close() })
	return g
}

func keysWith(m map[string]float64, sub string) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, sub) {
			out = append(out, k)
		}
	}
	return out
}
