package uplink

import "errors"

// MaxPayloadSize is the largest payload the uplink sends and, by default,
// the cloud accepts: the AWS IoT Core message size limit.
const MaxPayloadSize = 128 << 10

// MaxBatchRecords is the most records (readings, alerts and acks) one
// batch may carry.
const MaxBatchRecords = 65536

// Sentinel errors. Match them with errors.Is.
var (
	// ErrNotConnected is reported by State while the broker is unreachable.
	ErrNotConnected = errors.New("uplink: not connected")
	// ErrRecordTooLarge reports a single record that cannot fit in any
	// payload; the publisher counts and drops it rather than block the lane.
	ErrRecordTooLarge = errors.New("uplink: record too large for one payload")
)
