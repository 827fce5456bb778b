package uplink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// CommandType names what a downlink command asks the gateway to do.
type CommandType string

// Command types.
const (
	// CommandAlertAck: an operator acknowledged an open alert in the fleet
	// console; the cab should stop sounding it.
	CommandAlertAck CommandType = "alert_ack"
	// CommandConfigUpdate: new configuration for the gateway (for example
	// detector thresholds). Config carries it; the gateway validates it.
	CommandConfigUpdate CommandType = "config_update"
)

// Command limits.
const (
	// MaxCommandSize is the largest command payload accepted.
	MaxCommandSize = 64 << 10
	// CommandVersion is the command format version.
	CommandVersion = 1
	maxCommandID   = 64
)

// AlertAck is the body of a CommandAlertAck: which alert (Signal, Start as
// in detect.Transition.Key), who acknowledged it, when, and the severity
// they saw.
type AlertAck struct {
	Signal   string `json:"signal"`   // sensors.Signal name, e.g. "coolant_temp"
	Start    int64  `json:"start"`    // the alert's Start, Unix ns
	Time     int64  `json:"time"`     // when acknowledged, Unix ns
	By       string `json:"by"`       // operator user name, 1-128 bytes
	Severity string `json:"severity"` // detect.Severity name, e.g. "critical"
}

// Command is one message on the cmd topic (cloud -> gateway), JSON encoded:
//
//	{"v":1,"id":"c-123","type":"alert_ack","ack":{"signal":"coolant_temp","start":1,"time":2,"by":"ops","severity":"critical"}}
//	{"v":1,"id":"c-124","type":"config_update","config":{...}}
//
// Exactly the body matching Type is present. ID is unique per command;
// the gateway ignores a repeated ID (MQTT QoS 1 may deliver twice).
type Command struct {
	V    int         `json:"v"`
	ID   string      `json:"id"`
	Type CommandType `json:"type"`
	Ack  *AlertAck   `json:"ack,omitempty"`
	// Config is the new configuration, a JSON object whose schema belongs
	// to the gateway; uplink only checks that it is an object.
	Config json.RawMessage `json:"config,omitempty"`
}

// DetectAck returns the alert acknowledgement as a detect.Ack of truck
// (Seq 0: the gateway's buffer assigns it when it stores the ack).
func (c Command) DetectAck(truck string) (detect.Ack, error) {
	if c.Type != CommandAlertAck || c.Ack == nil {
		return detect.Ack{}, fmt.Errorf("command %s is not an alert ack: %w", c.ID, ErrBadCommand)
	}
	sig, err := sensors.ParseSignal(c.Ack.Signal)
	if err != nil {
		return detect.Ack{}, fmt.Errorf("command %s: %v: %w", c.ID, err, ErrBadCommand)
	}
	sev, ok := parseSeverity(c.Ack.Severity)
	if !ok {
		return detect.Ack{}, fmt.Errorf("command %s: unknown severity %q: %w", c.ID, c.Ack.Severity, ErrBadCommand)
	}
	// The cmd topic carries only fleet users' acknowledgements (the
	// broker lets only the cloud publish there), whatever By says.
	return detect.Ack{Truck: truck, Signal: sig, Start: c.Ack.Start, Time: c.Ack.Time, By: c.Ack.By, Severity: sev, Origin: detect.AckFleet}, nil
}

func parseSeverity(s string) (detect.Severity, bool) {
	for v := detect.Severity(0); validSeverity(v); v++ {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// Validate reports the first problem with c, naming the field.
func (c Command) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("command %q: %s: %w", c.ID, fmt.Sprintf(format, args...), ErrBadCommand)
	}
	switch {
	case c.V != CommandVersion:
		return bad("version %d, want %d", c.V, CommandVersion)
	case c.ID == "" || len(c.ID) > maxCommandID || !utf8.ValidString(c.ID):
		return bad("id must be 1-%d bytes of UTF-8", maxCommandID)
	}
	switch c.Type {
	case CommandAlertAck:
		if c.Ack == nil || c.Config != nil {
			return bad("alert_ack needs ack and no config")
		}
		if c.Ack.By == "" || !validBy(c.Ack.By) {
			return bad("ack.by must be 1-%d bytes of UTF-8", maxString)
		}
		if _, err := c.DetectAck("x"); err != nil {
			return err
		}
	case CommandConfigUpdate:
		if c.Ack != nil || len(c.Config) == 0 {
			return bad("config_update needs config and no ack")
		}
		if t := bytes.TrimLeft(c.Config, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(c.Config) {
			return bad("config must be a JSON object")
		}
	default:
		return bad("unknown type %q", c.Type)
	}
	return nil
}

// EncodeCommand returns the wire form of c, for the cloud.
func EncodeCommand(c Command) ([]byte, error) {
	if c.V == 0 {
		c.V = CommandVersion
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("uplink encode command: %w", err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("uplink encode command: %w", err)
	}
	if len(p) > MaxCommandSize {
		return nil, fmt.Errorf("uplink encode command: %d bytes: %w", len(p), ErrTooLarge)
	}
	return p, nil
}

// DecodeCommand parses and validates a command payload: at most
// MaxCommandSize bytes, one JSON object, no unknown fields, no trailing
// data. Errors wrap ErrBadCommand or ErrTooLarge.
func DecodeCommand(payload []byte) (Command, error) {
	var c Command
	if len(payload) > MaxCommandSize {
		return c, fmt.Errorf("uplink decode command: %d bytes > %d: %w", len(payload), MaxCommandSize, ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("uplink decode command: %v: %w", err, ErrBadCommand)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Command{}, fmt.Errorf("uplink decode command: data after the object: %w", ErrBadCommand)
	}
	if err := c.Validate(); err != nil {
		return Command{}, fmt.Errorf("uplink decode command: %w", err)
	}
	return c, nil
}
