package cab_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/gateway/cab"
	"github.com/abc4logistics/tankguard/sensors"
)

// How a gateway wires the cab display into its pipeline.
func Example() {
	log := slog.Default()
	display, err := cab.New(cab.Config{Listen: "127.0.0.1:8081"}, "T1", log)
	if err != nil {
		log.Error("cab", "err", err)
		return
	}
	// The driver's button: store the Ack and uplink it.
	display.OnAck(func(a detect.Ack) { log.Info("driver ack", "alert", a.Key(), "severity", a.Severity) })

	ctx, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	go display.Run(ctx) // owned by the gateway's errgroup in real code

	det, _ := detect.New("T1", detect.DefaultConfig())
	batch := []sensors.Reading{{Time: time.Now().UnixNano(), Signal: sensors.CoolantTemp, Value: 88}}
	for _, r := range batch {
		if t, ok := det.Observe(r); ok {
			display.Transition(t) // at once: the latency-critical path
		}
	}
	display.Readings(batch)                                     // latest values, shown a few times a second
	display.Uplink(cab.UplinkState{Online: false, Backlog: 42}) // from the uplink's state
	if b, ok := det.Band(sensors.CoolantTemp); ok && b.Ready {
		display.SetBand(sensors.CoolantTemp, cab.Band{Low: b.Low - b.Margin, High: b.High + b.Margin, Limit: 110})
	}
	// An operator's acknowledgement that came down from the cloud.
	display.RemoteAck(detect.Ack{Truck: "T1", Signal: sensors.CoolantTemp, Start: 1, By: "alice"})
}
