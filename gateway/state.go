package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/abc4logistics/tankguard/detect"
)

// stateKey names the detector's state in the queue's database.
const stateKey = "detector"

// restoreState loads the detector state the last run saved, so an alert
// open before a restart stays open (the cab shows it again at once, and
// the cloud gets its cleared when the condition ends). A state that
// cannot be restored (damaged, another truck, an older state version) is
// logged and the detector relearns; it never stops the gateway. Called
// by New, before anything runs.
func (g *Gateway) restoreState() {
	b, err := g.queue.LoadState(stateKey)
	if err != nil {
		g.log.Warn("detector state not loaded; relearning", "err", err)
		return
	}
	if b == nil {
		return
	}
	det, err := detect.New(g.cfg.Truck, g.cfg.Detect)
	if err != nil {
		return // cannot happen: New built one from the same config
	}
	if err := det.UnmarshalBinary(b); err != nil {
		g.log.Warn("detector state not restored; relearning", "bytes", len(b), "err", err)
		return
	}
	if det.Truck() != g.cfg.Truck {
		g.log.Warn("detector state not restored; relearning", "err", fmt.Errorf("state is of truck %q", det.Truck()))
		return
	}
	// The detector ignores readings older than its last one: a state from
	// a clock that ran ahead of today's (or today's clock is not set yet,
	// a box without a real-time clock) would blind it.
	now := g.now().UnixNano()
	if g.clock.Flags(now) != 0 {
		g.log.Warn("detector state not restored; relearning", "err", "the clock is not confirmed yet")
		return
	}
	for _, sig := range detectedSignals {
		if b, _ := det.Band(sig); b.LastTime > now+int64(time.Minute) {
			g.log.Warn("detector state not restored; relearning", "err", fmt.Errorf("%s last seen at %s, after now", sig, time.Unix(0, b.LastTime).UTC()))
			return
		}
	}
	if det.Config().Hash() != g.cfg.Detect.Hash() {
		// The configuration in force wins; what was learned carries over.
		if err := det.SetConfig(g.cfg.Detect); err != nil {
			g.log.Warn("detector state not restored; relearning", "err", err)
			return
		}
	}
	g.det = det
	for _, sig := range detectedSignals {
		b, ok := det.Band(sig)
		if !ok || !b.Open {
			continue
		}
		t := detect.Transition{
			Truck: g.cfg.Truck, Signal: sig, Kind: b.Kind, Severity: b.Severity, Phase: detect.Raised,
			Start: b.Start, Time: b.LastTime, Value: b.Mean, Baseline: b.Mean, ConfigHash: g.cfg.Detect.Hash(),
		}
		g.restored = append(g.restored, t)
		g.log.Warn("alert still open after restart", "signal", sig, "kind", b.Kind, "severity", b.Severity, "start", time.Unix(0, b.Start).UTC())
	}
	g.log.Info("detector state restored", "open_alerts", len(g.restored))
}

// saveStateLocked queues the detector's state for the next commit; it
// never waits for the disk. g.mu is held.
func (g *Gateway) saveStateLocked() {
	b, err := g.det.MarshalBinary()
	if err == nil {
		err = g.queue.SaveState(stateKey, b)
	}
	if err != nil {
		g.stateErrs++
		g.log.Error("detector state not saved", "err", err)
	}
}

// saveStatePeriodically saves the detector's state every StateInterval,
// so a restart resumes with what was learned (transitions save it too).
func (g *Gateway) saveStatePeriodically(ctx context.Context) error {
	tk := time.NewTicker(g.cfg.StateInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			g.mu.Lock()
			g.saveStateLocked()
			g.mu.Unlock()
			return nil
		case <-tk.C:
		}
		g.mu.Lock()
		g.saveStateLocked()
		g.mu.Unlock()
	}
}
