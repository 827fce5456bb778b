package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// openRecording sets up the bus recording (RecordCandump): one recorder
// for every live bus, each bus under its own interface name (its
// SocketCAN name, or can0, can1, ... by position for tcp:// buses).
func (g *Gateway) openRecording() error {
	if g.cfg.RecordCandump == "" {
		return nil
	}
	rec, err := sensors.NewCandumpRecorder(sensors.CandumpRecorderConfig{
		Path: g.cfg.RecordCandump, MaxBytes: g.cfg.RecordMaxBytes, Keep: g.cfg.RecordKeep,
		Logger: g.log.With("component", "record"),
	})
	if err != nil {
		return fmt.Errorf("gateway record: %w", err)
	}
	g.rec = rec
	for i, s := range g.can {
		s.Record = rec
		if network, address, err := sensors.ParseCANAddr(s.Addr); err == nil && network == "can" {
			s.RecordInterface = address
		} else {
			s.RecordInterface = "can" + strconv.Itoa(i)
		}
	}
	g.log.Info("recording the CAN bus", "file", g.cfg.RecordCandump, "max_bytes", g.cfg.RecordMaxBytes, "keep", g.cfg.RecordKeep)
	return nil
}

// flushRecording writes the recording to disk every second, so a crash
// or power cut loses about a second of it.
func (g *Gateway) flushRecording(ctx context.Context) error {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
			g.rec.Flush() // counted and logged by the recorder
		}
	}
}

func (g *Gateway) closeRecording() {
	if err := g.rec.Close(); err != nil {
		g.log.Error("closing the bus recording", "err", err)
	}
	g.log.Info("bus recording closed", "stats", fmt.Sprintf("%+v", g.rec.Stats()))
}
