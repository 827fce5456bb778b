package uplink

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// NOTE: placeholder JSON codec for the walking skeleton; issue 4 replaces
// it with the compact versioned binary+zstd format. Encode and Decode keep
// their signatures.

// Batch is what one MQTT message carries: readings, alert transitions and
// alert acknowledgements of one truck, each with its per-truck Seq.
type Batch struct {
	Truck    string
	Readings []sensors.Reading
	Alerts   []detect.Transition
	Acks     []detect.Ack
}

// Limits bound what Decode accepts from the outside world.
type Limits struct {
	MaxPayload int // bytes on the wire
	MaxRecords int // readings plus alerts
}

// DefaultLimits are the limits the cloud uses unless configured otherwise.
func DefaultLimits() Limits { return Limits{MaxPayload: 128 << 10, MaxRecords: 100_000} }

// ErrTooLarge reports a payload over the configured limits.
var ErrTooLarge = errors.New("uplink: payload too large")

// Encode returns the wire form of b.
func Encode(b Batch) ([]byte, error) {
	p, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("uplink encode: %w", err)
	}
	return p, nil
}

// Decode parses a payload from the wire, enforcing lim.
func Decode(payload []byte, lim Limits) (Batch, error) {
	var b Batch
	if len(payload) > lim.MaxPayload {
		return b, fmt.Errorf("uplink decode: %d bytes: %w", len(payload), ErrTooLarge)
	}
	if err := json.Unmarshal(payload, &b); err != nil {
		return Batch{}, fmt.Errorf("uplink decode: %w", err)
	}
	if len(b.Readings)+len(b.Alerts)+len(b.Acks) > lim.MaxRecords {
		return Batch{}, fmt.Errorf("uplink decode: %d records: %w", len(b.Readings)+len(b.Alerts), ErrTooLarge)
	}
	return b, nil
}
