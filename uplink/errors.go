package uplink

import (
	"errors"
	"fmt"
)

// MaxPayloadSize is the largest payload the uplink sends and, by default,
// the cloud accepts: the AWS IoT Core message size limit.
const MaxPayloadSize = 128 << 10

// MaxBatchRecords is the most records (readings, alerts and acks) one
// batch may carry.
const MaxBatchRecords = 65536

// Sentinel errors. Match them with errors.Is.
var (
	// ErrTooLarge reports a payload, decompressed body or record count over
	// the limits (Decode), or a command over MaxCommandSize.
	ErrTooLarge = errors.New("uplink: payload too large")
	// ErrVersion reports a payload of a format version this build does
	// not know.
	ErrVersion = errors.New("uplink: unsupported batch version")
	// ErrFormat reports bytes that are not a well-formed batch.
	ErrFormat = errors.New("uplink: malformed batch")
	// ErrInvalidBatch reports a well-formed batch whose content breaks the
	// rules (truck id, sequence order, unknown enum values, string sizes).
	ErrInvalidBatch = errors.New("uplink: invalid batch")
	// ErrBadCommand reports a command payload that is malformed or invalid.
	ErrBadCommand = errors.New("uplink: bad command")
	// ErrUnsendable reports a single record that the wire format refuses
	// (for example an unknown signal) or that cannot fit in one payload;
	// the publisher logs, counts (State.Dropped) and drops it rather than
	// block its lane.
	ErrUnsendable = errors.New("uplink: record cannot be sent")
)

// DecodeError is the error Decode returns: which field was wrong, where,
// and which of the sentinels above it is.
type DecodeError struct {
	Field  string // what was being decoded, e.g. "record count"
	Offset int    // byte offset in the payload or decompressed body
	Detail string
	Err    error // ErrTooLarge, ErrVersion, ErrFormat or ErrInvalidBatch
}

// Error names the field, offset, detail and sentinel.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("uplink decode: %s at byte %d: %s: %v", e.Field, e.Offset, e.Detail, e.Err)
}

// Unwrap returns the sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(field string, off int, kind error, format string, args ...any) error {
	return &DecodeError{Field: field, Offset: off, Detail: fmt.Sprintf(format, args...), Err: kind}
}
