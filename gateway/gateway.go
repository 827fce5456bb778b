package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/gateway/cab"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// Gateway is one truck's edge pipeline: sensors -> detect -> buffer ->
// uplink, with the cab display fed from the detect stage. Create it with
// New and start it with Run, once. Its accessors are safe for concurrent
// use.
type Gateway struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	clock *sensors.Clock
	queue *buffer.Queue
	pub   *uplink.Publisher
	cab   *cab.Server // nil when disabled
	can   []*sensors.CANSource
	nmea  []*sensors.NMEASource
	probe []*sensors.ProbeSource

	replay      []*sensors.CandumpReplay
	replayDec   *sensors.CANDecoder // the replays' own, so readings_total tells them apart
	replayFiles []*os.File
	replayDone  sync.WaitGroup
	logClock    detect.DataClock // missing-data checks on the replayed log's time; under mu
	logLast     int64            // time of the last replayed reading; under mu
	logLastWall time.Time        // when it was replayed; under mu

	// mu serialises the detect stage: sources emit from their own
	// goroutines, the detector is single-owner.
	// Nothing under mu waits for I/O: appends and state saves queue and
	// return (buffer.Queue.Enqueue, SaveState), so a slow or hung disk
	// never stops detection, the cab, CAN reading or /metrics.
	mu       sync.Mutex
	det      *detect.Detector
	trans    []detect.Transition // scratch, reused per batch
	advanced []detect.Transition // scratch for Advance on the log's time
	alerts   []detect.Transition // every transition since start, for Alerts
	appendEr uint64              // failed buffer appends
	// observed is set by the first reading since start: until then the
	// detector is not advanced, so the time the gateway was down does
	// not count as missing data of a restored detector.
	observed  bool
	restored  []detect.Transition // open alerts of the restored state, shown on the cab at Run
	stateErrs uint64              // detector states that could not be saved

	cmdErrors atomic.Uint64 // rejected downlink commands

	dtc dtcTable                 // latest DM1 per ECU (dtc.go)
	rec *sensors.CandumpRecorder // nil unless RecordCandump (record.go)
}

// New opens the gateway's queue and builds its stages. Close is done by
// Run when it returns; if Run is never called, call Close.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Each stage scopes its own lines (component, and the uplink the
	// truck): attributes are added once.
	base := log
	log = log.With("truck", cfg.Truck)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("gateway data dir: %w", err)
	}
	det, err := detect.New(cfg.Truck, cfg.Detect)
	if err != nil {
		return nil, fmt.Errorf("gateway detector: %w", err)
	}
	dbc := cfg.DBC
	if dbc == nil {
		dbc = sensors.DefaultDBC
	}
	dec, err := sensors.NewCANDecoder(dbc)
	if err != nil {
		return nil, fmt.Errorf("gateway dbc: %w", err)
	}
	q, err := buffer.Open(cfg.QueuePath(), cfg.Buffer, log)
	if err != nil {
		return nil, fmt.Errorf("gateway queue: %w", err)
	}
	ucfg := cfg.Uplink
	ucfg.Truck = cfg.Truck
	pub, err := uplink.NewPublisher(ucfg, q, base)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("gateway uplink: %w", err)
	}
	// A box without a real-time clock boots in 1970: until the system
	// clock looks set or GNSS confirms it, readings carry ClockUntrusted.
	clk := sensors.NewClock(sensors.ClockConfig{Trusted: !time.Now().Before(clockPlausibleAfter)})
	// Readings are stamped to the millisecond: frame arrival jitter is of
	// that order anyway, and whole milliseconds delta-encode to ~1.7 bytes
	// per reading on the uplink instead of ~5 (uplink bench).
	stamp := func() time.Time { return clk.Now().Truncate(time.Millisecond) }
	g := &Gateway{cfg: cfg, log: log, now: clk.Now, clock: clk, queue: q, pub: pub, det: det}
	g.dtc.ecus = map[uint8]sensors.DM1{}
	g.restoreState()
	if cfg.Cab.Listen != CabOff {
		g.cab, err = cab.New(cfg.Cab, cfg.Truck, log)
		if err != nil {
			q.Close()
			return nil, fmt.Errorf("gateway cab: %w", err)
		}
		g.cab.OnAck(g.driverAck)
		g.cab.SetClock(clk.Now)
	}
	for _, addr := range cfg.CAN {
		g.can = append(g.can, &sensors.CANSource{Addr: addr, Decoder: dec, Now: stamp, Flags: clk.Flags, Logger: log, OnDM1: g.onDM1})
	}
	if err := g.openRecording(); err != nil {
		q.Close()
		return nil, err
	}
	for _, port := range cfg.Probe {
		g.probe = append(g.probe, &sensors.ProbeSource{Port: port, Now: stamp, Flags: clk.Flags, Logger: log})
	}
	if len(cfg.Replay) > 0 {
		if g.replayDec, err = sensors.NewCANDecoder(dbc); err != nil {
			q.Close()
			return nil, fmt.Errorf("gateway dbc: %w", err)
		}
		g.logClock.Interval = cfg.AdvanceInterval
	}
	for _, path := range cfg.Replay {
		f, err := os.Open(path)
		if err != nil {
			q.Close()
			g.closeReplays()
			return nil, fmt.Errorf("gateway replay: %w", err)
		}
		g.replayFiles = append(g.replayFiles, f)
		g.replayDone.Add(1) // Done when Run has read it to the end
		g.replay = append(g.replay, &sensors.CandumpReplay{Log: f, Decoder: g.replayDec, Speed: cfg.ReplaySpeed, Logger: log.With("component", "replay", "file", path), OnDM1: g.onDM1})
	}
	for _, port := range cfg.Serial {
		g.nmea = append(g.nmea, &sensors.NMEASource{Port: port, Now: stamp, Flags: clk.Flags, OnFix: clk.OnFix, Logger: log})
	}
	return g, nil
}

// Cab returns the in-cab display, nil when it is disabled.
func (g *Gateway) Cab() *cab.Server { return g.cab }

// Queue returns the store-and-forward queue (for stats).
func (g *Gateway) Queue() *buffer.Queue { return g.queue }

// Uplink returns the uplink's state.
func (g *Gateway) Uplink() uplink.State { return g.pub.State() }

// Alerts returns a copy of every alert transition the gateway's detector
// produced since start.
func (g *Gateway) Alerts() []detect.Transition {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]detect.Transition(nil), g.alerts...)
}

// Run runs every stage until ctx ends or one fails, then closes the queue.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.queue.Close()
	grp, ctx := errgroup.WithContext(ctx)
	for _, s := range g.can {
		grp.Go(func() error { return s.Run(ctx, g.observe) })
	}
	for _, s := range g.nmea {
		grp.Go(func() error { return s.Run(ctx, g.observe) })
	}
	for _, s := range g.probe {
		grp.Go(func() error { return s.Run(ctx, g.observe) })
	}
	defer g.closeReplays()
	for _, r := range g.replay {
		grp.Go(func() error {
			defer g.replayDone.Done()
			if err := r.Run(ctx, g.observeReplay); err != nil {
				return fmt.Errorf("gateway replay: %w", err)
			}
			g.log.Info("replay finished", "stats", fmt.Sprintf("%+v", r.Stats()))
			return nil
		})
	}
	grp.Go(func() error { return g.pub.Run(ctx) })
	if len(g.can) > 0 {
		grp.Go(func() error { return g.expireDTCs(ctx) })
	}
	if g.rec != nil {
		defer g.closeRecording()
		grp.Go(func() error { return g.flushRecording(ctx) })
	}
	grp.Go(func() error { return g.handleCommands(ctx) })
	if g.cab != nil {
		g.mu.Lock()
		for _, t := range g.restored {
			g.cab.Transition(t)
		}
		g.showBandsLocked()
		g.mu.Unlock()
		grp.Go(func() error { return g.cab.Run(ctx) })
		grp.Go(func() error { return g.feedUplinkState(ctx) })
	}
	if g.cfg.AdvanceInterval > 0 && !g.replayOnly() {
		grp.Go(func() error { return g.advance(ctx) })
	}
	if len(g.replay) > 0 && !g.cfg.ReplayFollow {
		grp.Go(func() error { return g.endWithReplays(ctx) })
	}
	if g.cfg.AdvanceInterval > 0 && g.replayOnly() && g.cfg.ReplaySpeed > 0 && g.cfg.ReplaySpeed <= 1 {
		grp.Go(func() error { return g.advancePaced(ctx) })
	}
	if g.cfg.StateInterval > 0 {
		grp.Go(func() error { return g.saveStatePeriodically(ctx) })
	}
	g.log.Info("gateway running", "can", g.cfg.CAN, "serial", g.cfg.Serial, "broker", g.cfg.Uplink.BrokerURL)
	err := grp.Wait()
	if errors.Is(err, errReplaysEnded) {
		err = nil
	}
	if err := g.queue.Sync(); err != nil {
		g.log.Error("gateway final sync", "err", err)
	}
	return err
}

// ReplaysDone returns a channel closed when every candump replay has
// been read to its end (at once when there are none). The gateway keeps
// running: the uplink still drains.
func (g *Gateway) ReplaysDone() <-chan struct{} {
	ch := make(chan struct{})
	go func() { g.replayDone.Wait(); close(ch) }()
	return ch
}

// replayOnly reports whether replays are the only sources: then the
// detector runs on the log's time. Beside live sources it runs on the
// gateway's clock, as live readings need.
func (g *Gateway) replayOnly() bool {
	return len(g.replay) > 0 && len(g.can)+len(g.nmea)+len(g.probe) == 0
}

// errReplaysEnded stops Run's stages once the replays have ended.
var errReplaysEnded = errors.New("replays ended")

// endWithReplays waits for the replays to end and for the uplink to send
// what is queued (at most ReplayDrain), then stops Run.
func (g *Gateway) endWithReplays(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-g.ReplaysDone():
	}
	deadline := time.NewTimer(g.cfg.ReplayDrain)
	defer deadline.Stop()
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		st := g.pub.State()
		if st.BacklogReadings+st.BacklogPriority == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			g.log.Info("replays ended; records not yet uplinked stay queued", "readings", st.BacklogReadings, "priority", st.BacklogPriority)
			return errReplaysEnded
		case <-tk.C:
		}
	}
	g.log.Info("replays ended; everything uplinked")
	return errReplaysEnded
}

func (g *Gateway) closeReplays() {
	for _, f := range g.replayFiles {
		f.Close()
	}
	g.replayFiles = nil
}

// observe is the detect stage: every batch a source emits passes here. The
// cab sees alert transitions before anything is written to disk, because
// the driver must not wait for an fsync.
func (g *Gateway) observe(batch []sensors.Reading) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.observed = g.observed || len(batch) > 0
	g.trans = g.trans[:0]
	for i := range batch {
		if t, ok := g.det.Observe(batch[i]); ok {
			g.transition(t)
		}
	}
	g.appendLocked(batch, g.trans, nil)
	if g.cab != nil {
		g.cab.Readings(batch)
	}
}

// observeReplay is the detect stage for replayed readings: before each
// one, the detector is advanced on the log's time (every
// AdvanceInterval of it), as the gateway's clock would have advanced it
// live, so gaps in the log raise missing-data alerts and its end raises
// none.
func (g *Gateway) observeReplay(batch []sensors.Reading) {
	if g.cfg.AdvanceInterval > 0 && g.replayOnly() {
		g.mu.Lock()
		g.trans = g.trans[:0]
		for i := range batch {
			g.advanceLogLocked(batch[i].Time)
			if t, ok := g.det.Observe(batch[i]); ok {
				g.transition(t)
			}
			g.logLast = max(g.logLast, batch[i].Time)
		}
		g.logLastWall = time.Now()
		g.appendLocked(batch, g.trans, nil)
		if g.cab != nil {
			g.cab.Readings(batch)
		}
		g.showBandsLocked()
		g.mu.Unlock()
		return
	}
	g.observe(batch)
}

// advanceLogLocked runs the missing-data checks due on the log's time
// before t. g.mu is held.
func (g *Gateway) advanceLogLocked(t int64) {
	for now, ok := g.logClock.Next(t); ok; now, ok = g.logClock.Next(t) {
		g.advanced = g.det.Advance(now, g.advanced[:0])
		for _, tr := range g.advanced {
			g.transition(tr)
		}
	}
}

// advancePaced runs the log-time checks while a replay paced at real time
// or slower (0 < ReplaySpeed <= 1) waits between readings, so a gap in
// the log raises missing when the log's time passes its grace period, as
// live, not only when the next reading comes. The log's time is estimated
// from the last reading replayed and the wall time since; at these speeds
// a replay would have to fall a whole grace period behind its schedule
// for the estimate to run past a reading still to come. (Faster replays
// check on each reading's arrival only.) It stops with the replays.
func (g *Gateway) advancePaced(ctx context.Context) error {
	tk := time.NewTicker(time.Duration(float64(g.cfg.AdvanceInterval) / g.cfg.ReplaySpeed))
	defer tk.Stop()
	done := g.ReplaysDone()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-tk.C:
		}
		g.mu.Lock()
		if !g.logLastWall.IsZero() {
			g.trans = g.trans[:0]
			now := g.logLast + int64(float64(time.Since(g.logLastWall))*g.cfg.ReplaySpeed)
			g.advanceLogLocked(now)
			g.appendLocked(nil, g.trans, nil)
			g.showBandsLocked()
		}
		g.mu.Unlock()
	}
}

// transition hands one alert transition to the cab and stages it for the
// queue. g.mu is held.
func (g *Gateway) transition(t detect.Transition) {
	if g.cab != nil {
		g.cab.Transition(t)
	}
	g.trans = append(g.trans, t)
	g.alerts = append(g.alerts, t)
	g.log.Warn("alert", "phase", t.Phase, "signal", t.Signal, "kind", t.Kind, "severity", t.Severity, "value", t.Value, "baseline", t.Baseline)
}

// appendLocked queues records for the store-and-forward queue and
// returns without waiting for the disk (buffer.Queue.Enqueue): the driver's
// display must not stop because the disk did. With alert transitions the
// detector's state goes in the same commit (EnqueueWithState), so a
// restart never restores a state from before a transition it stored. A
// failure (a closed queue, or an earlier commit that failed) is logged and
// counted. g.mu is held.
func (g *Gateway) appendLocked(r []sensors.Reading, t []detect.Transition, a []detect.Ack) {
	if len(r) == 0 && len(t) == 0 && len(a) == 0 {
		return
	}
	var err error
	if len(t) > 0 {
		var state []byte
		if state, err = g.det.MarshalBinary(); err != nil {
			g.stateErrs++
			g.log.Error("detector state not saved", "err", err)
		}
		err = g.queue.EnqueueWithState(r, t, a, stateKey, state)
	} else {
		err = g.queue.Enqueue(r, t, a)
	}
	if err != nil {
		g.appendEr++
		g.log.Error("buffer append failed; records lost", "readings", len(r), "alerts", len(t), "acks", len(a), "err", err)
	}
}

// advance lets the detector notice signals that went silent.
func (g *Gateway) advance(ctx context.Context) error {
	tk := time.NewTicker(g.cfg.AdvanceInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		g.mu.Lock()
		g.trans = g.trans[:0]
		if g.observed {
			out := g.det.Advance(g.now().UnixNano(), nil)
			for _, t := range out {
				g.transition(t)
			}
		}
		g.appendLocked(nil, g.trans, nil)
		g.showBandsLocked()
		g.mu.Unlock()
	}
}

// detectedSignals are the signals the detector watches.
var detectedSignals = []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp}

// showBandsLocked draws the detector's learned normal band and limits on
// the cab display. g.mu is held.
func (g *Gateway) showBandsLocked() {
	if g.cab == nil {
		return
	}
	for _, sig := range detectedSignals {
		b, ok := g.det.Band(sig)
		if !ok || !b.Ready {
			continue
		}
		dc := g.det.Config()
		sc := dc.Coolant
		if sig == sensors.CargoTemp {
			sc = dc.Cargo
		}
		limit := sc.CritHigh
		if limit != limit { // NaN: no limit configured
			limit = 0
		}
		g.cab.SetBand(sig, cab.Band{Low: b.Low - b.Margin, High: b.High + b.Margin, Limit: limit})
	}
}

// driverAck stores and uplinks the driver's acknowledgement.
func (g *Gateway) driverAck(a detect.Ack) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.appendLocked(nil, nil, []detect.Ack{a})
	g.log.Info("driver acknowledged alert", "signal", a.Signal, "severity", a.Severity)
}

// feedUplinkState shows the uplink's state on the cab display.
func (g *Gateway) feedUplinkState(ctx context.Context) error {
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	for {
		st := g.pub.State()
		g.cab.Uplink(cab.UplinkState{Online: st.Online, Backlog: st.BacklogReadings + st.BacklogPriority})
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}
