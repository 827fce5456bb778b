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
	// ReplayFollow keeps the gateway running once every replay has been
	// read to its end; otherwise Run returns then (after ReplayDrain).
	// When replays are the only sources, missing-data checks run on the
	// log's time (every AdvanceInterval of it, before each replayed
	// reading; several replays share one clock, the latest time
	// replayed), not on the gateway's clock, so a gap in the log raises
	// `missing` and the end of the log raises nothing (at ReplaySpeed
	// 0 < speed <= 1 also while the replay waits out a gap). Beside live
	// sources they run on the gateway's clock, as live readings need.
	ReplayFollow bool `json:"replay_follow,omitempty"`
	// ReplayDrain is how long Run, once the replays have ended, waits for
	// the uplink to send what is queued before it returns; what is left
	// stays in the queue for the next run. Default 15 s; 0 returns at once.
	ReplayDrain time.Duration `json:"replay_drain,omitempty"`
	// RecordCandump, when set, records every frame of the live CAN buses
	// to this file in can-utils candump -L format (what Replay reads),
	// rotated at RecordMaxBytes to RecordCandump.1 .. .RecordKeep.
	RecordCandump string `json:"record_candump,omitempty"`
	// RecordMaxBytes is the size at which the recording is rotated.
	// Default 64 MiB (sensors.DefaultRecordMaxBytes); at least 4096.
	RecordMaxBytes int64 `json:"record_max_bytes,omitempty"`
	// RecordKeep is how many rotated recordings are kept, so the bus
	// recording takes at most (RecordKeep+1) × RecordMaxBytes of disk.
	// Default 3; negative keeps none.
	RecordKeep int `json:"record_keep,omitempty"`
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
		ReplayDrain:     15 * time.Second,
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
	case c.ReplayDrain < 0:
		return fmt.Errorf("gateway config: replay_drain %v is negative", c.ReplayDrain)
	case c.StateInterval < 0:
		return fmt.Errorf("gateway config: state_interval %v is negative", c.StateInterval)
	case c.AdvanceInterval < 0:
		return fmt.Errorf("gateway config: advance_interval %v is negative", c.AdvanceInterval)
	case c.RecordMaxBytes != 0 && c.RecordMaxBytes < 4096:
		return fmt.Errorf("gateway config: record_max_bytes %d: want at least 4096", c.RecordMaxBytes)
	case c.RecordCandump != "" && len(c.CAN) == 0:
		return errors.New("gateway config: record_candump needs a live can bus to record")
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
