package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// newTestGateway builds a gateway whose stages are never started: enough
// to drive the detect stage and commands directly.
func newTestGateway(t *testing.T) *Gateway {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Truck = "truck-07"
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

// overheat feeds a warm engine, then a coolant excursion, until the
// detector raises an alert, and returns it.
func overheat(t *testing.T, g *Gateway) detect.Transition {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 600 {
		v := 90.0
		if i >= 120 {
			v = 118
		}
		g.observe([]sensors.Reading{{Signal: sensors.CoolantTemp, Time: t0 + int64(i)*int64(time.Second), Value: v}})
		for _, a := range g.Alerts() {
			if a.Phase == detect.Raised {
				return a
			}
		}
	}
	t.Fatal("no alert raised")
	return detect.Transition{}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		cmd     func(alert detect.Transition) uplink.Command
		wantErr bool
		check   func(t *testing.T, g *Gateway, before uint64)
	}{
		{
			name: "operator ack shows on the cab",
			cmd: func(a detect.Transition) uplink.Command {
				return uplink.Command{V: 1, ID: "c1", Type: uplink.CommandAlertAck, Ack: &uplink.AlertAck{
					Signal: a.Signal.String(), Start: a.Start, Time: a.Time + 1, By: "ops-anna", Severity: a.Severity.String()}}
			},
			check: func(t *testing.T, g *Gateway, _ uint64) {
				if st := g.cab.Stats(); st.RemoteAcks != 1 {
					t.Fatalf("cab remote acks = %d, want 1", st.RemoteAcks)
				}
			},
		},
		{
			name: "ack of an unknown alert is not applied",
			cmd: func(a detect.Transition) uplink.Command {
				return uplink.Command{V: 1, ID: "c2", Type: uplink.CommandAlertAck, Ack: &uplink.AlertAck{
					Signal: a.Signal.String(), Start: a.Start + 1, Time: a.Time, By: "ops", Severity: "warning"}}
			},
			check: func(t *testing.T, g *Gateway, _ uint64) {
				if st := g.cab.Stats(); st.RemoteAcks != 0 || st.RemoteAcksUnmatched != 1 {
					t.Fatalf("cab stats %+v, want 0 applied, 1 unmatched", st)
				}
			},
		},
		{
			name: "config update reloads the detector",
			cmd: func(detect.Transition) uplink.Command {
				return uplink.Command{V: 1, ID: "c3", Type: uplink.CommandConfigUpdate,
					Config: json.RawMessage(`{"detect":{"coolant":{"crit_high":120}}}`)}
			},
			check: func(t *testing.T, g *Gateway, before uint64) {
				if h := g.det.Config().Hash(); h == before {
					t.Fatal("detector configuration unchanged")
				}
				if got := g.det.Config().Coolant.CritHigh; got != 120 {
					t.Fatalf("coolant crit_high = %v, want 120", got)
				}
			},
		},
		{
			name: "invalid config update changes nothing",
			cmd: func(detect.Transition) uplink.Command {
				return uplink.Command{V: 1, ID: "c4", Type: uplink.CommandConfigUpdate,
					Config: json.RawMessage(`{"detect":{"coolant":{"sustain":"-3s"}}}`)}
			},
			wantErr: true,
			check: func(t *testing.T, g *Gateway, before uint64) {
				if h := g.det.Config().Hash(); h != before {
					t.Fatal("detector configuration changed by an invalid update")
				}
			},
		},
		{
			name: "unknown section is rejected",
			cmd: func(detect.Transition) uplink.Command {
				return uplink.Command{V: 1, ID: "c5", Type: uplink.CommandConfigUpdate, Config: json.RawMessage(`{"bogus":1}`)}
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGateway(t)
			alert := overheat(t, g)
			before := g.det.Config().Hash()
			err := g.applyCommand(tt.cmd(alert))
			if (err != nil) != tt.wantErr {
				t.Fatalf("applyCommand error = %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, g, before)
			}
		})
	}
}

func TestObserveStoresReadingsAndAlerts(t *testing.T) {
	g := newTestGateway(t)
	a := overheat(t, g)
	if a.Truck != "truck-07" || a.Signal != sensors.CoolantTemp {
		t.Fatalf("alert %+v", a)
	}
	if err := g.queue.Sync(); err != nil {
		t.Fatal(err)
	}
	st := g.queue.Stats()
	if st.Readings == 0 || st.Alerts == 0 {
		t.Fatalf("queue stats %+v: want readings and the alert stored", st)
	}
}
