package buffer

import (
	"fmt"
	"time"
)

// Options configure a Queue. The zero value of a field means its default
// (see DefaultOptions); Validate reports values that make no sense.
type Options struct {
	// SyncInterval is the group-commit interval: readings appended are
	// durable on disk at most this long after Append returns. Alerts and
	// acknowledgements are committed at once. Default 100 ms.
	SyncInterval time.Duration
	// MaxBytes is the disk budget: the bytes of stored records (keys and
	// values) the queue keeps before it evicts by the policy documented in
	// doc.go. The file itself may grow to about twice this (bbolt keeps
	// freed pages). Default 512 MiB.
	MaxBytes int64
	// BlockReadings is the most readings stored per telemetry block, the
	// unit of storage, reading and deletion. Default 1024.
	BlockReadings int
	// MaxPendingReadings bounds readings held in memory between commits;
	// an Append beyond it commits at once and waits. Default 262144.
	MaxPendingReadings int
	// CompactMinBytes is the smallest file size worth compacting after the
	// backlog drained. Compaction runs when the file is above this and
	// more than CompactRatio times the stored bytes. Default 8 MiB.
	CompactMinBytes int64
	// CompactRatio: see CompactMinBytes. Default 4.
	CompactRatio float64
	// CompactCheck is how often the queue considers compacting (and, after
	// the disk filled up, whether it has room again). Default 1 min.
	CompactCheck time.Duration
	// Ballast is the size of a reserve file kept beside the database
	// (path + ".ballast"). When the disk fills up before MaxBytes is
	// reached, the queue deletes it, which gives the eviction transaction
	// room to run (bbolt needs fresh pages even to delete), evicts the
	// oldest telemetry and carries on inside the file's freed pages until
	// the disk has room again. Default 1 MiB; negative: none.
	Ballast int64
	// ThinInterval is the spacing the eviction policy thins telemetry to:
	// at most one reading per signal per ThinInterval in a thinned block.
	// Default 1 s.
	ThinInterval time.Duration
	// OnSync, if set, is called from the committing goroutine after each
	// durable commit with the highest sequence number now on disk. It
	// must not block and must not call back into the Queue.
	OnSync func(seq uint64)
	// BeforeCommit, if set, is called by the committing goroutine before
	// each commit's write transaction. It is for fault injection: a hook
	// that blocks behaves like a hung disk (commits stop; Append waits,
	// Enqueue does not). Leave nil in production.
	BeforeCommit func()
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
}

// DefaultOptions returns the defaults used for zero fields.
func DefaultOptions() Options {
	return Options{
		SyncInterval:       100 * time.Millisecond,
		MaxBytes:           512 << 20,
		BlockReadings:      1024,
		MaxPendingReadings: 262144,
		CompactMinBytes:    8 << 20,
		CompactRatio:       4,
		CompactCheck:       time.Minute,
		Ballast:            1 << 20,
		ThinInterval:       time.Second,
		Now:                time.Now,
	}
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.SyncInterval == 0 {
		o.SyncInterval = d.SyncInterval
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.BlockReadings == 0 {
		o.BlockReadings = d.BlockReadings
	}
	if o.MaxPendingReadings == 0 {
		o.MaxPendingReadings = d.MaxPendingReadings
	}
	if o.CompactMinBytes == 0 {
		o.CompactMinBytes = d.CompactMinBytes
	}
	if o.CompactRatio == 0 {
		o.CompactRatio = d.CompactRatio
	}
	if o.CompactCheck == 0 {
		o.CompactCheck = d.CompactCheck
	}
	if o.Ballast == 0 {
		o.Ballast = d.Ballast
	}
	if o.ThinInterval == 0 {
		o.ThinInterval = d.ThinInterval
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// Validate reports the first problem with o (after defaults), naming the
// field. It does no I/O.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.SyncInterval < 0:
		return fmt.Errorf("buffer options: sync_interval must be positive, got %v", o.SyncInterval)
	case o.MaxBytes < 64<<10:
		return fmt.Errorf("buffer options: max_bytes must be at least 64 KiB, got %d", o.MaxBytes)
	case o.BlockReadings < 1 || o.BlockReadings > 1<<16:
		return fmt.Errorf("buffer options: block_readings must be in 1..65536, got %d", o.BlockReadings)
	case o.MaxPendingReadings < o.BlockReadings:
		return fmt.Errorf("buffer options: max_pending_readings (%d) must be at least block_readings (%d)", o.MaxPendingReadings, o.BlockReadings)
	case o.CompactMinBytes < 0:
		return fmt.Errorf("buffer options: compact_min_bytes must not be negative, got %d", o.CompactMinBytes)
	case o.CompactRatio < 1:
		return fmt.Errorf("buffer options: compact_ratio must be at least 1, got %v", o.CompactRatio)
	case o.CompactCheck < 0:
		return fmt.Errorf("buffer options: compact_check must be positive, got %v", o.CompactCheck)
	case o.ThinInterval < 0:
		return fmt.Errorf("buffer options: thin_interval must be positive, got %v", o.ThinInterval)
	}
	return nil
}
