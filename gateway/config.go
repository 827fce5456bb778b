package gateway

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/gateway/cab"
	"github.com/abc4logistics/tankguard/uplink"
)

// Config configures one truck's gateway. Zero fields take the defaults
// named on each field; Validate reports the first field that makes no
// sense.
type Config struct {
	// Truck is the truck id (see uplink.ValidTruckID). Required.
	Truck string `json:"truck"`
	// DataDir holds the store-and-forward queue (queue.db). Required.
	DataDir string `json:"data_dir"`
	// CAN lists the CAN buses to read: SocketCAN interface names ("can0")
	// or "tcp://127.0.0.1:PORT" for SocketCAN frames over loopback TCP.
	CAN []string `json:"can,omitempty"`
	// Serial lists NMEA 0183 serial ports (GNSS receivers).
	Serial []string `json:"serial,omitempty"`
	// Probe lists serial cargo-tank temperature probes (the $PTGCT line
	// protocol in sensors/PROTOCOLS.md), an alternative to the CAN PGN.
	Probe []string `json:"probe,omitempty"`
	// Replay lists can-utils candump log files to feed through the CAN
	// decoder instead of (or besides) live buses: recordings from real
	// trucks, or firmware-sim's -candump output. Readings keep the log's
	// timestamps.
	Replay []string `json:"replay,omitempty"`
	// ReplaySpeed paces replays: 0 as fast as possible, 1 real time.
	ReplaySpeed float64 `json:"replay_speed,omitempty"`
	// DBC is the DBC file's text; nil means the repository's
	// sensors.DefaultDBC.
	DBC []byte `json:"-"`
	// AdvanceInterval is how often the detector checks for missing data
	// against the gateway's clock. Default 1 s.
	AdvanceInterval time.Duration `json:"advance_interval,omitempty"`
	// StateInterval is how often the detector's state is saved in the
	// queue's database besides with every alert transition, so a restart
	// resumes with what was learned and with open alerts open. Default
	// 1 s (a state 10 s old, restored, made the detector raise an
	// overheat's limit alert a second time); 0 saves only at transitions.
	StateInterval time.Duration `json:"state_interval,omitempty"`
	// Detect configures the detector.
	Detect detect.Config `json:"detect"`
	// Buffer configures the store-and-forward queue.
	Buffer buffer.Options `json:"-"`
	// Uplink configures the MQTT uplink; its Truck is set from Truck.
	Uplink uplink.Config `json:"-"`
	// Cab configures the in-cab display. Cab.Listen "off" disables it.
	Cab cab.Config `json:"-"`
}

// DefaultConfig returns a Config with every default filled in, except
// Truck, DataDir and the sensor addresses.
func DefaultConfig() Config {
	return Config{
		AdvanceInterval: time.Second,
		StateInterval:   time.Second,
		Detect:          detect.DefaultConfig(),
		Buffer:          buffer.DefaultOptions(),
		Uplink:          defaultUplink(),
		Cab:             cab.DefaultConfig(),
	}
}

// clockPlausibleAfter: a system clock before this is taken as unset.
var clockPlausibleAfter = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// CabOff is the Cab.Listen value that disables the in-cab display.
const CabOff = "off"

// QueuePath is where the store-and-forward queue of a gateway lives.
func (c Config) QueuePath() string { return filepath.Join(c.DataDir, "queue.db") }

// Validate reports the first problem with c, naming the field. It does no
// I/O.
func (c Config) Validate() error {
	switch {
	case !uplink.ValidTruckID(c.Truck):
		return fmt.Errorf("gateway config: truck %q: want 1-64 letters, digits, '-' or '_'", c.Truck)
	case c.DataDir == "":
		return errors.New("gateway config: data_dir is required")
	case len(c.CAN) == 0 && len(c.Serial) == 0 && len(c.Probe) == 0 && len(c.Replay) == 0:
		return errors.New("gateway config: no sensors: give at least one can bus, serial port, probe or replay file")
	case c.ReplaySpeed < 0:
		return fmt.Errorf("gateway config: replay_speed %v is negative", c.ReplaySpeed)
	case c.StateInterval < 0:
		return fmt.Errorf("gateway config: state_interval %v is negative", c.StateInterval)
	case c.AdvanceInterval < 0:
		return fmt.Errorf("gateway config: advance_interval %v is negative", c.AdvanceInterval)
	}
	for i, a := range c.CAN {
		if a == "" {
			return fmt.Errorf("gateway config: can[%d] is empty", i)
		}
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"serial", c.Serial}, {"probe", c.Probe}, {"replay", c.Replay}} {
		for i, p := range l.list {
			if p == "" {
				return fmt.Errorf("gateway config: %s[%d] is empty", l.name, i)
			}
		}
	}
	if err := c.Detect.Validate(); err != nil {
		return fmt.Errorf("gateway config: detect: %w", err)
	}
	if err := c.Buffer.Validate(); err != nil {
		return fmt.Errorf("gateway config: buffer: %w", err)
	}
	u := c.Uplink
	u.Truck = c.Truck
	if err := u.Validate(); err != nil {
		return fmt.Errorf("gateway config: uplink: %w", err)
	}
	if c.Cab.Listen != CabOff {
		if err := c.Cab.Validate(); err != nil {
			return fmt.Errorf("gateway config: cab: %w", err)
		}
	}
	return nil
}

// DefaultBroker is the broker a gateway uplinks to unless told otherwise:
// the cloud's embedded broker on the same machine, as in `make demo`.
const DefaultBroker = "tcp://127.0.0.1:1883"

func defaultUplink() uplink.Config {
	u := uplink.DefaultConfig()
	u.BrokerURL = DefaultBroker
	// Delete only what the cloud confirmed durable, whatever the broker.
	u.Confirm = true
	return u
}
