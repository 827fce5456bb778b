package firmwaresim

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults, in one place.
const (
	DefaultTrucks   = 1
	DefaultIDPrefix = "truck-"
	DefaultTick     = 100 * time.Millisecond
	// DefaultWriteTimeout bounds one write to a CAN client; a client that
	// cannot take a tick's frames within it is disconnected (it would
	// otherwise stall every other truck).
	DefaultWriteTimeout = 200 * time.Millisecond
)

// Config configures a simulator run. Fill it, then call New or Run.
type Config struct {
	// Trucks is how many trucks to simulate (K). Default 1.
	Trucks int
	// IDPrefix prefixes truck numbers: "truck-" gives truck-01, truck-02,
	// ... (at least two digits, more when K needs them). Default "truck-".
	IDPrefix string
	// CAN selects the bus transport. Empty: one loopback TCP listener per
	// truck on 127.0.0.1:0, serving SocketCAN frames (einride socketcan wire
	// format) to every connected client. Otherwise a comma-separated list
	// of SocketCAN interfaces, one per truck (e.g. "vcan0,vcan1").
	CAN string
	// NoSerial disables the per-truck NMEA pseudo-terminal.
	NoSerial bool
	// Scenario is the fault timeline and per-truck settings.
	Scenario Scenario
	// Seed makes physics and faults deterministic; 0 means Scenario.Seed,
	// and if that is 0 too, 1.
	Seed int64
	// TruthPath, when set, receives a CSV of every value emitted while a
	// client was connected: truck,signal,time_unix_ns,value.
	TruthPath string
	// CandumpPath, when set, receives a can-utils candump log (candump -l
	// format) of every frame a client took; the interface field is the
	// truck id (or its SocketCAN interface). sensors.CandumpReplay reads it.
	CandumpPath string
	// FaultsPath, when set, receives the fault ground truth: one CSV line
	// per scheduled fault, written when its truck starts:
	// truck,kind,signal,start_unix_ns,end_unix_ns,hazard (end empty when
	// the fault lasts until the end; hazard true when it must raise an
	// alert).
	FaultsPath string
	// ManifestPath, when set, receives the manifest JSON once every truck
	// is ready (written to a temporary file, then renamed).
	ManifestPath string
	// OnReady, when set, is called once with the manifest when every truck
	// is ready.
	OnReady func(Manifest)
	// Tick is the base emission period (wheel speed); slower messages are
	// sent every 10 ticks. Default 100 ms. Physics always advances by the
	// nominal period, so results depend on the seed, not on timer jitter.
	Tick time.Duration
	// WriteTimeout bounds one write to a CAN client. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Now is the simulator's clock. Default time.Now.
	Now func() time.Time
	// Logger receives lifecycle events; nil means silent.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Trucks == 0 {
		c.Trucks = DefaultTrucks
	}
	if c.IDPrefix == "" {
		c.IDPrefix = DefaultIDPrefix
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Seed == 0 {
		c.Seed = c.Scenario.Seed
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate reports the first problem with c. It does no I/O.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Trucks < 1 || c.Trucks > 10000 {
		return fmt.Errorf("firmware-sim config: trucks must be 1..10000, got %d", c.Trucks)
	}
	if c.Tick < time.Millisecond {
		return fmt.Errorf("firmware-sim config: tick must be at least 1ms, got %v", c.Tick)
	}
	if c.CAN != "" {
		ifs := strings.Split(c.CAN, ",")
		if len(ifs) != c.Trucks {
			return fmt.Errorf("firmware-sim config: %d SocketCAN interfaces for %d trucks; name one per truck", len(ifs), c.Trucks)
		}
		for _, name := range ifs {
			if name == "" || strings.ContainsAny(name, ":/ ") {
				return fmt.Errorf("firmware-sim config: bad SocketCAN interface name %q", name)
			}
		}
	}
	if err := c.Scenario.Validate(); err != nil {
		return err
	}
	return nil
}

// TruckID returns the id of truck i (0-based) among n.
func TruckID(prefix string, i, n int) string {
	width := max(2, len(fmt.Sprint(n)))
	return fmt.Sprintf("%s%0*d", prefix, width, i+1)
}

// errStopped is returned by internal writers after Close.
var errStopped = errors.New("firmware-sim stopped")
