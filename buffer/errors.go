package buffer

import "errors"

// Sentinel errors returned by the queue. Match them with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Queue.
	ErrClosed = errors.New("buffer: queue closed")
	// ErrCorruptRecord reports a stored record that cannot be decoded. The
	// queue counts and skips such records when reading.
	ErrCorruptRecord = errors.New("buffer: corrupt record")
	// ErrBadLane reports an unknown Lane value.
	ErrBadLane = errors.New("buffer: unknown lane")
)
