package firmwaresim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/sensors"
)

// Source addresses the simulated ECUs send from. Gateways must accept any.
const (
	saEngine    = 0x00
	saBrakes    = 0x0B
	saNav       = 0x1C
	saTankProbe = 0xA0
)

// Manifest lists the simulated trucks and where to reach them. It is the
// contract with the gateway launcher.
type Manifest struct {
	Trucks []ManifestTruck `json:"trucks"`
}

// ManifestTruck is one truck of a Manifest.
type ManifestTruck struct {
	// ID is the truck id, e.g. "truck-01".
	ID string `json:"id"`
	// CAN is the bus address for sensors.CANSource.Addr:
	// "tcp://127.0.0.1:PORT", or a SocketCAN interface name.
	CAN string `json:"can"`
	// Serial is the pseudo-terminal carrying NMEA, e.g. "/dev/pts/3";
	// empty with Config.NoSerial.
	Serial string `json:"serial,omitempty"`
	// Probe is the pseudo-terminal of the serial cargo-tank probe
	// (sensors.ProbeSource), present when the scenario sets
	// cargo_probe "serial"; the cargo temperature is then not on CAN.
	Probe string `json:"probe,omitempty"`
}

// canMsg is one periodic message a truck sends.
type canMsg struct {
	info  sensors.CANMessageInfo
	sa    uint8
	every int64 // in ticks
}

// Sim is a running simulator. Create it with New and start it with Run.
type Sim struct {
	cfg  Config
	dec  *sensors.CANDecoder
	msgs []canMsg // the original model's bus
	// truckMsgs is the realistic model's bus.
	truckMsgs []canMsg
	truth     *truthWriter
	dump      *lineFile
	// faultsOut receives the fault ground truth (Config.FaultsPath).
	faultsOut *lineFile
	// skipped counts ticks dropped beyond maxCatchUp (scheduler goroutine).
	skipped uint64
	// offline is set by Simulate: no transports, every value counts as
	// taken.
	offline bool

	mu       sync.Mutex
	trucks   []*truck
	manifest Manifest
}

// New checks cfg and prepares a simulator. It does no I/O.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		return nil, fmt.Errorf("firmware-sim: %w", err)
	}
	s := &Sim{cfg: cfg, dec: dec}
	if err := cfg.Scenario.ValidateTrucks(cfg.IDPrefix, cfg.Trucks); err != nil {
		return nil, err
	}
	s.msgs = busMessages(dec, modelled, cfg.Tick)
	s.truckMsgs = busMessages(dec, modelledTruck, cfg.Tick)
	return s, nil
}

// busMessages lists the DBC messages carrying a modelled signal, with only
// those signals: the rest of a message stays "not available" (0xFF).
func busMessages(dec *sensors.CANDecoder, modelled map[sensors.Signal]bool, tick time.Duration) []canMsg {
	sas := map[sensors.Signal]uint8{
		sensors.CoolantTemp: saEngine, sensors.WheelSpeed: saBrakes,
		sensors.VPLatitude: saNav, sensors.CargoTemp: saTankProbe,
		sensors.EngineSpeed: saEngine, sensors.AmbientTemp: saEngine,
	}
	var msgs []canMsg
	for _, m := range dec.Messages() {
		m.Signals = slices.DeleteFunc(slices.Clone(m.Signals), func(sig sensors.Signal) bool { return !modelled[sig] })
		if len(m.Signals) == 0 {
			continue
		}
		cycle := m.Cycle
		if cycle <= 0 {
			cycle = time.Second
		}
		every := max(1, int64(cycle/tick))
		msgs = append(msgs, canMsg{info: m, sa: sas[m.Signals[0]], every: every})
	}
	return msgs
}

// modelled are the bus signals the original truck physics produces; an
// old scenario's bus carries exactly these.
var modelled = map[sensors.Signal]bool{
	sensors.CoolantTemp: true, sensors.CargoTemp: true, sensors.WheelSpeed: true,
	sensors.VPLatitude: true, sensors.VPLongitude: true,
}

// modelledTruck are those of the realistic model (TruckScenario.Model
// "truck"): also engine speed, oil, fuel and ambient temperature.
var modelledTruck = map[sensors.Signal]bool{
	sensors.CoolantTemp: true, sensors.CargoTemp: true, sensors.WheelSpeed: true,
	sensors.VPLatitude: true, sensors.VPLongitude: true,
	sensors.EngineSpeed: true, sensors.OilTemp: true, sensors.FuelTemp: true, sensors.AmbientTemp: true,
}

// Run simulates until ctx is cancelled, then closes every listener, client
// and terminal, flushes the truth file and returns nil (or the first I/O
// error that stopped it).
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Manifest returns the manifest once Run has made every truck ready (empty
// before).
func (s *Sim) Manifest() Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.manifest
}

// Run opens every truck's bus and terminal, publishes the manifest, and
// emits until ctx is cancelled. Call it once.
func (s *Sim) Run(ctx context.Context) (err error) {
	cfg := s.cfg
	log := cfg.Logger.With("component", "firmware-sim")
	if err := s.openOutputs(); err != nil {
		return err
	}
	defer func() {
		for _, t := range s.trucks {
			t.close()
		}
		s.writeHazardWindows()
		if cerr := s.closeOutputs(); err == nil {
			err = cerr
		}
	}()
	var ifs []string
	if cfg.CAN != "" {
		ifs = strings.Split(cfg.CAN, ",")
	}
	var man Manifest
	for i := 0; i < cfg.Trucks; i++ {
		t := s.newTruck(i, cfg.Now())
		id, ts := t.id, t.scen
		s.trucks = append(s.trucks, t)
		if ifs != nil {
			conn, err := socketcan.DialContext(ctx, "can", ifs[i])
			if err != nil {
				return fmt.Errorf("firmware-sim %s: open SocketCAN %s: %w", id, ifs[i], err)
			}
			t.bus, t.canAddr, t.iface = conn, ifs[i], ifs[i]
			t.started = true
		} else {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("firmware-sim %s: listen: %w", id, err)
			}
			t.ln, t.canAddr = ln, "tcp://"+ln.Addr().String()
		}
		mt := ManifestTruck{ID: id, CAN: t.canAddr}
		if !cfg.NoSerial {
			if t.gps, err = openPTY(); err != nil {
				return fmt.Errorf("firmware-sim %s: GNSS port: %w", id, err)
			}
			mt.Serial = t.gps.path
		}
		if ts.CargoProbe == "serial" {
			if t.probe, err = openPTY(); err != nil {
				return fmt.Errorf("firmware-sim %s: probe port: %w", id, err)
			}
			mt.Probe = t.probe.path
		}
		man.Trucks = append(man.Trucks, mt)
	}
	s.mu.Lock()
	s.manifest = man
	s.mu.Unlock()
	if cfg.ManifestPath != "" {
		if err := writeManifest(cfg.ManifestPath, man); err != nil {
			return err
		}
	}
	log.Info("trucks ready", "trucks", len(man.Trucks))
	if cfg.OnReady != nil {
		cfg.OnReady(man)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, t := range s.trucks {
		if t.ln != nil {
			g.Go(func() error { t.accept(gctx, cfg.Now, log); return nil })
		}
	}
	stop := context.AfterFunc(gctx, func() {
		for _, t := range s.trucks {
			if t.ln != nil {
				t.ln.Close()
			}
		}
	})
	defer stop()
	g.Go(func() error {
		err := s.loop(gctx)
		s.drainSerial(time.Second)
		return err
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("stopped")
	return err
}

// openOutputs creates the truth, candump and faults files the
// configuration names.
func (s *Sim) openOutputs() (err error) {
	cfg := s.cfg
	if cfg.TruthPath != "" {
		if s.truth, err = createTruth(cfg.TruthPath); err != nil {
			return err
		}
	}
	if cfg.CandumpPath != "" {
		if s.dump, err = createLineFile(cfg.CandumpPath, "candump"); err != nil {
			s.truth.close()
			return err
		}
	}
	if cfg.FaultsPath != "" {
		if s.faultsOut, err = createLineFile(cfg.FaultsPath, "faults"); err != nil {
			s.truth.close()
			s.dump.close()
			return err
		}
		s.faultsOut.write([]byte(FaultsHeader + "\n"))
	}
	return nil
}

// closeOutputs flushes and closes what openOutputs created and returns the
// first write error.
func (s *Sim) closeOutputs() (err error) {
	if cerr := s.faultsOut.close(); cerr != nil {
		err = fmt.Errorf("write faults file: %w", cerr)
	}
	if cerr := s.truth.close(); err == nil {
		err = cerr
	}
	if cerr := s.dump.close(); err == nil && cerr != nil {
		err = fmt.Errorf("write candump file: %w", cerr)
	}
	return err
}

// newTruck sets up truck i (0-based) with its physics starting at now; it
// opens nothing.
func (s *Sim) newTruck(i int, now time.Time) *truck {
	cfg := s.cfg
	id := TruckID(cfg.IDPrefix, i, cfg.Trucks)
	ts := cfg.Scenario.For(id)
	warm := ts.Warm != nil && *ts.Warm
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
	return &truck{
		id: id, idx: i, iface: candumpInterface(id, i), scen: ts,
		probeSerial: ts.CargoProbe == "serial",
		phys:        newTruckPhysics(rng, i, warm, cfg.Scenario.physicsStart(now), ts),
		faults:      newFaultStates(ts.Faults),
		nmea:        sensors.NewNMEAParser(), probeParser: sensors.NewProbeParser(),
	}
}

func writeManifest(path string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// maxCatchUp bounds how many missed ticks the scheduler replays at once
// after it was starved of CPU (or the machine was suspended).
const maxCatchUp = 10

// loop is the single scheduler: every tick it advances and emits every
// started truck. No goroutine per truck or signal. When the process was
// not scheduled in time it runs the missed ticks (up to maxCatchUp), so
// trucks keep their real rates on a loaded machine.
func (s *Sim) loop(ctx context.Context) error {
	tick := s.cfg.Tick
	next := time.Now().Add(tick)
	tm := time.NewTimer(tick)
	defer tm.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tm.C:
		}
		wall := time.Now()
		due := int(wall.Sub(next)/tick) + 1
		if due > maxCatchUp {
			s.skipped += uint64(due - maxCatchUp)
			next = next.Add(time.Duration(due-maxCatchUp) * tick)
			due = maxCatchUp
		}
		for ; due > 0; due-- {
			now := s.cfg.Now()
			for _, t := range s.trucks {
				s.step(t, now)
			}
			next = next.Add(tick)
		}
		tm.Reset(time.Until(next))
		if wall.Sub(lastFlush) >= time.Second {
			lastFlush = wall
			if err := s.truth.flush(); err != nil {
				return fmt.Errorf("firmware-sim: %w", err)
			}
			if err := s.dump.flush(); err != nil {
				return fmt.Errorf("firmware-sim: write candump: %w", err)
			}
		}
	}
}

// step advances truck t by one tick and emits what is due.
func (s *Sim) step(t *truck, now time.Time) {
	if !t.isStarted() {
		return
	}
	tick := s.cfg.Tick
	k := t.tick
	t.tick++
	elapsed := time.Duration(k) * tick
	if k == 0 {
		s.writeFaultWindows(t, now)
	}
	t.applyPhysicalFaults(elapsed)
	t.phys.step(tick)
	e := t.effectsAt(elapsed)
	ns := now.UnixNano()
	phase := k + int64(t.idx)

	t.frames = t.frames[:0]
	msgs, ecuQuiet := s.msgs, false
	if tm := t.phys.truck; tm != nil {
		msgs = s.truckMsgs
		// Ignition off: the engine ECU and the brakes go quiet; the
		// cargo probe and navigation are powered with the gateway.
		ecuQuiet = !tm.ecuAwake(t.phys.elapsed)
		t.hazards.observe(t, now.UnixNano(), elapsed)
	}
	for _, m := range msgs {
		if phase%m.every != 0 || e.canSilent {
			continue
		}
		if ecuQuiet && (m.sa == saEngine || m.sa == saBrakes) {
			continue
		}
		if t.probeSerial && slices.Contains(m.info.Signals, sensors.CargoTemp) {
			continue // the cargo temperature goes over the serial probe
		}
		f, err := s.dec.NewFrame(m.info.PGN, m.sa)
		if err != nil {
			continue
		}
		send := true
		for _, sig := range m.info.Signals {
			v := t.sensorValue(sig, elapsed, &e)
			switch e.dropout[sig] {
			case "missing":
				send = false
			case "error":
				raw, _ := s.dec.J1939ErrorRaw(sig)
				_ = s.dec.EncodeRaw(&f.Data, sig, raw)
			case "not_available":
				raw, _ := s.dec.J1939NotAvailableRaw(sig)
				_ = s.dec.EncodeRaw(&f.Data, sig, raw)
			default:
				_ = s.dec.EncodeSignal(&f.Data, sig, v)
			}
		}
		if send {
			t.frames = append(t.frames, f)
		}
	}
	if len(t.frames) > 0 && e.canGarbage > 0 {
		t.frames = t.corruptFrames(t.frames, e.canGarbage)
	}
	if len(t.frames) > 0 {
		t.readings = t.readings[:0]
		for _, f := range t.frames {
			t.readings = s.dec.Decode(f, ns, t.readings)
		}
		if s.offline || t.sendCAN(t.frames, s.cfg.WriteTimeout) {
			s.record(t, t.readings)
			if s.dump != nil {
				b := t.dumpBuf[:0]
				for _, f := range t.frames {
					b = sensors.AppendCandumpLine(b, sensors.CandumpRecord{Time: ns, Interface: t.iface, Frame: f})
				}
				t.dumpBuf = b
				s.dump.write(b)
			}
		}
	}
	perSecond := max(1, int64(time.Second/tick))
	if t.gps != nil && phase%perSecond == 0 {
		lines := t.nmeaLines(now.Add(e.clockOffset), &e)
		if t.gps.send(lines) {
			t.readings = t.readings[:0]
			for _, l := range strings.SplitAfter(string(lines), "\n") {
				if l != "" {
					t.readings, _ = t.nmea.Parse(l, ns, t.readings)
				}
			}
			s.record(t, t.readings)
		}
	}
	if t.probeSerial && phase%perSecond == 0 && e.dropout[sensors.CargoTemp] != "missing" {
		line := t.probeLine(t.sensorValue(sensors.CargoTemp, elapsed, &e), e.dropout[sensors.CargoTemp])
		if s.offline || t.probe.send(line) {
			t.readings, _ = t.probeParser.Parse(string(line), ns, t.readings[:0])
			s.record(t, t.readings)
		}
	}
}

// truck is one simulated vehicle. Fields below mu are shared with the
// accept goroutine; the rest belong to the scheduler.
type truck struct {
	id      string
	idx     int
	canAddr string
	iface   string // interface name in the candump log
	scen    TruckScenario
	phys    *physics

	ln  net.Listener
	bus net.Conn // SocketCAN mode

	mu      sync.Mutex
	clients []net.Conn
	started bool

	gps   *ptyPort // NMEA receiver
	probe *ptyPort // serial cargo-tank probe (cargo_probe "serial")
	// probeSerial: the cargo temperature goes over the serial probe, not CAN.
	probeSerial bool
	faults      []faultState
	live        []int // faults sensorValue applies this tick (effectsAt)
	// hazards tracks when a realistic truck's hazard is physically
	// present (hazard_present windows of the faults file).
	hazards hazardTracker

	tick        int64
	frames      []can.Frame
	wire        []byte
	readings    []sensors.Reading
	nmea        *sensors.NMEAParser
	probeParser *sensors.ProbeParser
	probeBuf    []byte
	line        []byte
	dumpBuf     []byte
	out         []sensors.Reading // offline: what this tick emitted
}

// candumpInterface names truck i in candump logs: its id when that is a
// valid interface name (at most 15 characters, no blanks), else "canI".
func candumpInterface(id string, i int) string {
	if len(id) <= 15 && !strings.ContainsAny(id, " \t\n()#") {
		return id
	}
	return fmt.Sprintf("can%d", i)
}

func (t *truck) isStarted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

// accept serves CAN clients until the listener closes. The first client
// starts the truck.
func (t *truck) accept(ctx context.Context, now func() time.Time, log interface {
	Info(string, ...any)
}) {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		t.mu.Lock()
		if ctx.Err() != nil {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.clients = append(t.clients, c)
		first := !t.started
		t.started = true
		t.mu.Unlock()
		if first {
			log.Info("truck started", "truck", t.id, "at", now().UTC())
		}
	}
}

// sendCAN writes frames to every client (or the SocketCAN bus) and reports
// whether at least one took them. A client that fails is dropped.
func (t *truck) sendCAN(frames []can.Frame, timeout time.Duration) bool {
	t.wire = t.wire[:0]
	for _, f := range frames {
		var sf socketcan.Frame
		sf.EncodeFrame(f)
		var b [16]byte
		sf.MarshalBinary(b[:])
		t.wire = append(t.wire, b[:]...)
	}
	if t.bus != nil {
		// A raw CAN socket takes one frame per write.
		for off := 0; off < len(t.wire); off += 16 {
			if _, err := t.bus.Write(t.wire[off : off+16]); err != nil {
				return false
			}
		}
		return true
	}
	t.mu.Lock()
	clients := t.clients
	t.mu.Unlock()
	ok := false
	var failed []net.Conn
	for _, c := range clients {
		_ = c.SetWriteDeadline(time.Now().Add(timeout)) // wall clock, not the sim's
		if _, err := c.Write(t.wire); err != nil {
			failed = append(failed, c)
			continue
		}
		ok = true
	}
	if failed != nil {
		t.mu.Lock()
		kept := t.clients[:0:0]
		for _, c := range t.clients {
			drop := false
			for _, f := range failed {
				drop = drop || f == c
			}
			if drop {
				c.Close()
			} else {
				kept = append(kept, c)
			}
		}
		t.clients = kept
		t.mu.Unlock()
	}
	return ok
}

func (t *truck) close() {
	if t.ln != nil {
		t.ln.Close()
	}
	t.mu.Lock()
	for _, c := range t.clients {
		c.Close()
	}
	t.clients = nil
	t.mu.Unlock()
	if t.bus != nil {
		t.bus.Close()
	}
	if t.gps != nil {
		t.gps.close()
	}
	if t.probe != nil {
		t.probe.close()
	}
}
