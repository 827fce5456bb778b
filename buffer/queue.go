package buffer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// Lane is one of the queue's two ordered streams. Each is read and deleted
// independently; the uplink sends Priority before Telemetry.
type Lane uint8

// The lanes.
const (
	// Priority holds alert transitions and acknowledgements, interleaved
	// in sequence order.
	Priority Lane = iota
	// Telemetry holds readings in sequence order.
	Telemetry
	numLanes
)

// String returns "priority" or "telemetry".
func (l Lane) String() string {
	switch l {
	case Priority:
		return "priority"
	case Telemetry:
		return "telemetry"
	}
	return fmt.Sprintf("lane(%d)", uint8(l))
}

var (
	bucketMeta = []byte("meta")
	// bucketState holds the caller's named state blobs (SaveState).
	bucketState = []byte("state")
	bucketLane  = [numLanes][]byte{Priority: []byte("priority"), Telemetry: []byte("telemetry")}
	keySeq0     = []byte("seq")
	keyFirst    = []byte("first") // the first sequence number this file assigns
)

// Chunk is a run of records read from one lane: the records stored under
// keys First..Last. Pass Last+1 to the next Read to continue after it, and
// First, Last to Delete once the broker acknowledged it. The caller owns
// the slices.
type Chunk struct {
	Lane        Lane
	First, Last uint64
	Readings    []sensors.Reading
	Alerts      []detect.Transition
	Acks        []detect.Ack
	// Skipped counts damaged records in the key range that could not be
	// decoded; they are counted in Stats.CorruptRecords and removed by
	// Delete with the rest of the chunk.
	Skipped int
}

// Len returns the number of records in c.
func (c *Chunk) Len() int { return len(c.Readings) + len(c.Alerts) + len(c.Acks) }

// Stats is a snapshot of the queue's state and counters.
type Stats struct {
	Readings    int   // readings stored and not yet deleted
	Alerts      int   // alert transitions stored and not yet deleted
	Acks        int   // acknowledgements stored and not yet deleted
	Pending     int   // records appended but not yet committed
	StoredBytes int64 // bytes of stored keys and values (what MaxBytes bounds)
	FileBytes   int64 // size of the database file
	// Oldest is the measurement time of the oldest stored record (zero
	// when empty); OldestAge is Now minus it.
	Oldest    time.Time
	OldestAge time.Duration
	// FirstSeq is the first sequence number this queue file assigns (1
	// for files made before it was recorded); LastSeq the highest
	// assigned so far. Every number in FirstSeq..LastSeq was assigned.
	FirstSeq  uint64
	LastSeq   uint64 // highest sequence number assigned
	SyncedSeq uint64 // highest sequence number durable on disk
	Commits   uint64 // group commits done

	DroppedReadings uint64 // readings evicted (thinned or whole blocks) for the disk budget
	ThinnedReadings uint64 // the part of DroppedReadings removed by thinning
	DroppedAlerts   uint64 // alert transitions evicted for the disk budget
	DroppedAcks     uint64 // acknowledgements evicted for the disk budget
	CorruptRecords  uint64 // stored records that could not be decoded
	Compactions     uint64 // times the file was rewritten to reclaim space
	// RecoveredFrom names the damaged database file moved aside when the
	// queue was opened, or "".
	RecoveredFrom string
	// PendingDropped counts readings dropped before they were committed
	// because more than Options.MaxPendingReadings waited in memory for a
	// slow or hung disk (Enqueue); they are included in DroppedReadings.
	PendingDropped uint64
	// DiskFull counts commits that found the disk full before the budget
	// was reached: each evicted the oldest telemetry to make room inside
	// the file and was retried.
	DiskFull uint64
}

type pendingRec struct {
	seq uint64
	enc []byte
	t   int64
}

// Queue is a durable, ordered, two-lane store-and-forward queue on bbolt.
// It is safe for concurrent use: typically one goroutine appends and the
// uplink reads and deletes.
type Queue struct {
	// diskCap, when positive, is a budget below MaxBytes in force since
	// the disk filled up, until it has room again (guarded by mu).
	diskCap int64

	path string
	opts Options
	log  *slog.Logger

	// dbMu is held for reading by every database transaction and for
	// writing while the file is swapped by compaction.
	dbMu sync.RWMutex
	db   *bolt.DB
	// writeMu serialises write transactions so eviction accounting stays
	// consistent.
	writeMu sync.Mutex

	mu           sync.Mutex
	closed       bool
	lastSeq      uint64
	firstSeq     uint64
	synced       uint64
	pendR        []sensors.Reading
	pendP        []pendingRec
	pendState    map[string][]byte // SaveState values for the next commit
	waiters      []chan error
	changed      chan struct{}
	st           Stats
	oldest       [numLanes]int64 // measurement time of the first record per lane, 0 if empty
	lastEvictLog time.Time
	reserved     uint64 // the side file's number: every seq assigned is below it
	// damaged holds keys of records found undecodable, so re-reading them
	// (the uplink re-reads a partial batch) counts and logs them once.
	damaged  map[[2]uint64]bool
	commitEr error // last commit error, reported to the next Append

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// Open opens or creates the queue's database at path. If the file exists
// but cannot be read as a database, it is renamed to
// path+".corrupt-<time>", an error is logged, and a fresh queue is started
// (Stats.RecoveredFrom says so). log may be nil.
//
// The returned Queue runs a committing goroutine until Close.
func Open(path string, opts Options, log *slog.Logger) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	q := &Queue{
		path:    path,
		opts:    opts,
		log:     log.With("component", "buffer"),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	q.reserved = readReserved(q.seqPath())
	if err := q.openDB(); err != nil {
		return nil, err
	}
	q.ensureBallast()
	q.wg.Add(1)
	go q.run()
	return q, nil
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:        2 * time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
}

// isCorrupt reports whether err from bolt.Open means a damaged file rather
// than an environment problem (permissions, lock held, missing directory).
func isCorrupt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrInvalidMapping) ||
		errors.Is(err, errScanPanic)
}

var errScanPanic = errors.New("database scan panicked")

// openBolt opens the bbolt file at path, turning a panic inside bbolt
// (it panics on some damaged pages) into errScanPanic.
func openBolt(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: open: %v", errScanPanic, r)
		}
	}()
	return bolt.Open(path, 0o600, boltOptions())
}

func (q *Queue) openDB() error {
	db, err := openBolt(q.path)
	if err == nil {
		if err = q.load(db); err != nil {
			db.Close()
		}
	}
	if err == nil && q.lastSeq == 0 {
		// A queue that never numbered anything: a new truck, or one whose
		// data directory was wiped. Start above the clock in microseconds
		// (or the side file's reservation), so a wiped truck does not
		// reuse (truck, seq) pairs the cloud already has.
		err = q.startSeq(db, max(q.reserved, uint64(max(0, q.opts.Now().UnixMicro()))))
		if err != nil {
			db.Close()
		}
	}
	if err == nil {
		q.db = db
		return nil
	}
	if !isCorrupt(err) {
		return fmt.Errorf("buffer open %s: %w", q.path, err)
	}
	aside := fmt.Sprintf("%s.corrupt-%s", q.path, q.opts.Now().UTC().Format("20060102T150405.000000000Z"))
	if rerr := os.Rename(q.path, aside); rerr != nil {
		return fmt.Errorf("buffer open %s: damaged (%v) and cannot move it aside: %w", q.path, err, rerr)
	}
	q.log.Error("BUFFER DATABASE DAMAGED: moved aside, starting an empty queue; its unsent records are not sent",
		"path", q.path, "moved_to", aside, "error", err)
	db, err = openBolt(q.path)
	if err != nil {
		return fmt.Errorf("buffer open %s after moving damaged file aside: %w", q.path, err)
	}
	// The damaged file's sequence numbers are lost. New records must not
	// reuse (truck, seq) pairs the cloud already has (it would drop them
	// as duplicates): continue above the reservation in the side file,
	// or the clock in microseconds if that is higher (or the side file
	// is gone).
	q.st = Stats{RecoveredFrom: aside}
	q.oldest = [numLanes]int64{}
	if err := q.load(db); err != nil {
		db.Close()
		return fmt.Errorf("buffer open %s fresh: %w", q.path, err)
	}
	if err := q.startSeq(db, max(readReserved(q.seqPath()), uint64(max(0, q.opts.Now().UnixMicro())))); err != nil {
		db.Close()
		return fmt.Errorf("buffer open %s fresh: %w", q.path, err)
	}
	q.log.Error("buffer: sequence numbers continue after the damaged file's", "next_seq", q.lastSeq+1)
	q.db = db
	return nil
}

// startSeq makes sequence numbers continue above base, if that is above
// the last one assigned, and stores it.
func (q *Queue) startSeq(db *bolt.DB, base uint64) error {
	if base <= q.lastSeq {
		return nil
	}
	q.lastSeq, q.synced, q.firstSeq = base, base, base+1
	err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keySeq0, seqKey(base)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFirst, seqKey(base+1))
	})
	if err != nil {
		return fmt.Errorf("store seq: %w", err)
	}
	return nil
}

// seqReserve is how far ahead the side file reserves sequence numbers.
const seqReserve = 1 << 20

// seqPath names the side file holding a number above every sequence
// number assigned so far. It is only read when the database was damaged.
func (q *Queue) seqPath() string { return q.path + ".seq" }

// readReserved returns the side file's number, 0 if there is none.
func readReserved(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 8 {
		return 0
	}
	return keySeq(b)
}

// writeReserved durably replaces the side file's number with v.
func writeReserved(path string, v uint64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(seqKey(v)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// reserve makes sure the side file covers sequence numbers up to top
// before records numbered up to top are committed (only committed numbers
// can reach the cloud). It is called by the committing goroutine, never
// under q.mu, and fsyncs about once per seqReserve records.
func (q *Queue) reserve(top uint64) {
	q.mu.Lock()
	covered := top < q.reserved
	q.mu.Unlock()
	if covered {
		return
	}
	r := top + seqReserve
	if err := writeReserved(q.seqPath(), r); err != nil {
		q.log.Error("buffer: cannot write the sequence reservation; after a damaged database, numbers may restart from the clock", "path", q.seqPath(), "error", err)
	}
	q.mu.Lock()
	q.reserved = max(q.reserved, r)
	q.mu.Unlock()
}

// load creates the buckets and scans the stored records to rebuild the
// in-memory counters. A panic while walking (bbolt panics on some damaged
// pages) is reported as errScanPanic.
func (q *Queue) load(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errScanPanic, r)
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketState, bucketLane[Priority], bucketLane[Telemetry]} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create buckets: %w", err)
	}
	st := Stats{RecoveredFrom: q.st.RecoveredFrom}
	damaged := map[[2]uint64]bool{}
	var last, first uint64
	var oldest [numLanes]int64
	err = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySeq0); len(v) == 8 {
			last = keySeq(v)
		}
		first = 1
		if v := tx.Bucket(bucketMeta).Get(keyFirst); len(v) == 8 {
			first = keySeq(v)
		}
		c := tx.Bucket(bucketLane[Telemetry]).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			st.StoredBytes += int64(len(k) + len(v))
			h, err := parseBlockHeader(v)
			if err != nil || len(k) != 8 {
				if len(k) == 8 {
					damaged[[2]uint64{uint64(Telemetry), keySeq(k)}] = true
				}
				st.CorruptRecords++
				continue
			}
			if oldest[Telemetry] == 0 {
				oldest[Telemetry] = h.firstTime
			}
			st.Readings += h.count
			last = max(last, keySeq(k)+h.span)
		}
		c = tx.Bucket(bucketLane[Priority]).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			st.StoredBytes += int64(len(k) + len(v))
			if len(k) != 8 || len(v) == 0 {
				if len(k) == 8 {
					damaged[[2]uint64{uint64(Priority), keySeq(k)}] = true
				}
				st.CorruptRecords++
				continue
			}
			switch v[0] {
			case recAlert:
				st.Alerts++
			case recAck:
				st.Acks++
			default:
				damaged[[2]uint64{uint64(Priority), keySeq(k)}] = true
				st.CorruptRecords++
			}
			if oldest[Priority] == 0 {
				oldest[Priority] = priorityTime(keySeq(k), v)
			}
			last = max(last, keySeq(k))
		}
		st.FileBytes = tx.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	q.st = st
	q.damaged = damaged
	q.oldest = oldest
	q.lastSeq, q.synced, q.firstSeq = last, last, first
	return nil
}

func priorityTime(seq uint64, v []byte) int64 {
	var c Chunk
	if decodePriority(&c, seq, v) != nil {
		return 0
	}
	if len(c.Alerts) > 0 {
		return c.Alerts[0].Time
	}
	if len(c.Acks) > 0 {
		return c.Acks[0].Time
	}
	return 0
}

// Append assigns the next per-truck sequence numbers to readings, then
// alerts, then acks (writing Seq in place in the caller's slices) and
// queues them. Readings become durable within Options.SyncInterval; if
// alerts or acks are given, Append commits at once and returns after they
// (and everything appended before) are on disk. Append copies what it
// needs; the caller keeps ownership of the slices.
//
// An error means the records may not be stored; it reports a failed
// commit (the disk) or a closed queue.
func (q *Queue) Append(readings []sensors.Reading, alerts []detect.Transition, acks []detect.Ack) error {
	return q.append(readings, alerts, acks, true, "", nil)
}

// Enqueue is Append without any wait, for callers that must never stall
// on the disk (the gateway's detect stage): it assigns sequence numbers
// and queues the records the same way, starts a commit at once when
// alerts or acks are given, and returns. The records are durable after
// the next commit (Stats.SyncedSeq, Options.OnSync); the uplink reads
// only committed records. When more than Options.MaxPendingReadings
// readings wait in memory (the disk is slow or hung), the oldest pending
// readings are dropped and counted (Stats.PendingDropped, included in
// DroppedReadings); alerts and acks are never dropped here. The error
// reports a closed queue or an earlier failed commit. Safe for concurrent
// use; it takes no lock that a commit holds across I/O.
func (q *Queue) Enqueue(readings []sensors.Reading, alerts []detect.Transition, acks []detect.Ack) error {
	return q.append(readings, alerts, acks, false, "", nil)
}

// EnqueueWithState is Enqueue plus SaveState(name, state) in one step:
// the records and the state are committed in the same transaction, so
// after a crash the state stored never predates a transition stored (a
// restored detector does not raise again what it already raised), nor
// follows one that was lost.
func (q *Queue) EnqueueWithState(readings []sensors.Reading, alerts []detect.Transition, acks []detect.Ack, name string, state []byte) error {
	return q.append(readings, alerts, acks, false, name, state)
}

func (q *Queue) append(readings []sensors.Reading, alerts []detect.Transition, acks []detect.Ack, block bool, name string, state []byte) error {
	if len(readings)+len(alerts)+len(acks) == 0 && state == nil {
		return nil
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("buffer append: %w", ErrClosed)
	}
	if state != nil {
		if q.pendState == nil {
			q.pendState = map[string][]byte{}
		}
		q.pendState[name] = state
	}
	if err := q.commitEr; err != nil {
		q.commitEr = nil
		q.mu.Unlock()
		return fmt.Errorf("buffer append: previous commit failed: %w", err)
	}
	for i := range readings {
		q.lastSeq++
		readings[i].Seq = q.lastSeq
	}
	q.pendR = append(q.pendR, readings...)
	for i := range alerts {
		q.lastSeq++
		alerts[i].Seq = q.lastSeq
		q.pendP = append(q.pendP, pendingRec{seq: q.lastSeq, enc: encodeAlert(nil, &alerts[i]), t: alerts[i].Time})
	}
	for i := range acks {
		q.lastSeq++
		acks[i].Seq = q.lastSeq
		q.pendP = append(q.pendP, pendingRec{seq: q.lastSeq, enc: encodeAck(nil, &acks[i]), t: acks[i].Time})
	}
	wait := len(alerts)+len(acks) > 0 || len(q.pendR) >= q.opts.MaxPendingReadings
	if !block {
		// Never wait: start the commit of alerts and acks at once, and
		// keep memory bounded by dropping the oldest pending readings
		// when the disk cannot keep up.
		if over := len(q.pendR) - q.opts.MaxPendingReadings; over > 0 {
			q.pendR = append(q.pendR[:0], q.pendR[over:]...)
			q.st.DroppedReadings += uint64(over)
			q.st.PendingDropped += uint64(over)
		}
		q.mu.Unlock()
		if wait {
			q.poke()
		}
		return nil
	}
	var ch chan error
	if wait {
		ch = make(chan error, 1)
		q.waiters = append(q.waiters, ch)
	}
	q.mu.Unlock()
	if !wait {
		return nil
	}
	q.poke()
	if err := <-ch; err != nil {
		return fmt.Errorf("buffer append: %w", err)
	}
	return nil
}

// SaveState stores v under name with the next commit, replacing what an
// earlier SaveState of name stored, and starts that commit; it never
// waits (see Enqueue). The gateway keeps its detector's state here, so
// that it is written in the same transactions as the records. A newer
// SaveState of name before the commit replaces the pending one. The
// queue keeps v; the caller must not change it afterwards.
func (q *Queue) SaveState(name string, v []byte) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("buffer save state: %w", ErrClosed)
	}
	if q.pendState == nil {
		q.pendState = map[string][]byte{}
	}
	q.pendState[name] = v
	q.mu.Unlock()
	q.poke()
	return nil
}

// LoadState returns the value last committed under name by SaveState, or
// nil if there is none. The caller owns the returned slice.
func (q *Queue) LoadState(name string) ([]byte, error) {
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return nil, fmt.Errorf("buffer load state: %w", ErrClosed)
	}
	var out []byte
	err := q.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketState); b != nil {
			if v := b.Get([]byte(name)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer load state %q: %w", name, err)
	}
	return out, nil
}

// Sync commits everything appended so far and returns when it is durable.
func (q *Queue) Sync() error {
	ch := make(chan error, 1)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("buffer sync: %w", ErrClosed)
	}
	q.waiters = append(q.waiters, ch)
	q.mu.Unlock()
	q.poke()
	if err := <-ch; err != nil {
		return fmt.Errorf("buffer sync: %w", err)
	}
	return nil
}

func (q *Queue) poke() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Changed returns a channel that is closed at the next commit or delete,
// for readers waiting for new records.
func (q *Queue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}

func (q *Queue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// run is the committing goroutine.
func (q *Queue) run() {
	defer q.wg.Done()
	tick := time.NewTicker(q.opts.SyncInterval)
	defer tick.Stop()
	compact := time.NewTicker(q.opts.CompactCheck)
	defer compact.Stop()
	for {
		select {
		case <-q.done:
			q.commitPending()
			return
		case <-q.kick:
		case <-tick.C:
		case <-compact.C:
			q.checkDiskRoom()
			if err := q.maybeCompact(); err != nil {
				q.log.Error("buffer compaction failed", "error", err)
			}
			continue
		}
		q.commitPending()
	}
}

// commitPending writes everything pending in one transaction and wakes
// the waiters.
func (q *Queue) commitPending() {
	q.mu.Lock()
	rs, ps, ws, states := q.pendR, q.pendP, q.waiters, q.pendState
	q.pendR, q.pendP, q.waiters, q.pendState = nil, nil, nil, nil
	top := q.lastSeq
	q.mu.Unlock()
	if len(rs)+len(ps)+len(states) == 0 {
		for _, w := range ws {
			w <- nil
		}
		return
	}
	if q.opts.BeforeCommit != nil {
		q.opts.BeforeCommit()
	}
	q.reserve(top)
	err := q.write(rs, ps, states, top)
	if err == nil {
		q.log.Debug("buffer synced", "seq", top, "readings", len(rs), "priority", len(ps))
		if q.opts.OnSync != nil {
			q.opts.OnSync(top)
		}
	}
	q.mu.Lock()
	if err == nil {
		q.synced = top
		q.st.Commits++
	} else if len(ws) == 0 {
		q.commitEr = err
	}
	q.notifyLocked()
	q.mu.Unlock()
	if err != nil {
		q.mu.Lock()
		q.st.DroppedReadings += uint64(len(rs)) // counted: every lost reading is visible
		q.mu.Unlock()
		q.log.Error("buffer commit failed; records lost", "readings", len(rs), "priority", len(ps), "error", err)
	}
	for _, w := range ws {
		w <- err
	}
}

// write stores rs and ps in one durable transaction, evicting first if the
// disk budget would be exceeded.
func (q *Queue) write(rs []sensors.Reading, ps []pendingRec, states map[string][]byte, top uint64) error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return ErrClosed
	}

	// Encode outside the transaction.
	type kv struct {
		k, v  []byte
		count int
		t     int64
	}
	blocks := make([]kv, 0, len(rs)/q.opts.BlockReadings+1)
	var arena, scratch []byte
	var newBytes, newTel int64
	for i := 0; i < len(rs); i += q.opts.BlockReadings {
		part := rs[i:min(len(rs), i+q.opts.BlockReadings)]
		start := len(arena)
		arena, scratch = encodeBlock(arena, scratch, part[0].Seq, part, 0)
		v := arena[start:len(arena):len(arena)]
		blocks = append(blocks, kv{k: seqKey(part[0].Seq), v: v, count: len(part), t: part[0].Time})
		newBytes += int64(8 + len(v))
		newTel += int64(8 + len(v))
	}
	for _, p := range ps {
		newBytes += int64(8 + len(p.enc))
	}
	var ev eviction
	var dropped int64
	commit := func(tx *bolt.Tx) error {
		tel, pri := tx.Bucket(bucketLane[Telemetry]), tx.Bucket(bucketLane[Priority])
		tel.FillPercent, pri.FillPercent = 1.0, 1.0
		q.mu.Lock()
		stored, budget := q.st.StoredBytes, q.opts.MaxBytes
		if q.diskCap > 0 && q.diskCap < budget {
			budget = q.diskCap
		}
		q.mu.Unlock()
		if over := stored + newBytes - budget; over > 0 {
			var err error
			ev, err = q.evict(tx, over, newTel, true)
			if err != nil {
				return err
			}
		}
		for _, b := range blocks {
			if dropped < ev.dropIncoming {
				// The budget cannot hold the incoming readings even with
				// the telemetry backlog gone: drop the oldest incoming blocks.
				dropped += int64(len(b.k) + len(b.v))
				ev.incomingBlocks++
				ev.incomingReadings += uint64(b.count)
				continue
			}
			if err := tel.Put(b.k, b.v); err != nil {
				return fmt.Errorf("put block %d: %w", keySeq(b.k), err)
			}
		}
		for _, p := range ps {
			if err := pri.Put(seqKey(p.seq), p.enc); err != nil {
				return fmt.Errorf("put record %d: %w", p.seq, err)
			}
		}
		for name, v := range states {
			if err := tx.Bucket(bucketState).Put([]byte(name), v); err != nil {
				return fmt.Errorf("put state %q: %w", name, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySeq0, seqKey(top))
	}
	err := q.db.Update(commit)
	if errors.Is(err, syscall.ENOSPC) {
		// The disk filled up before the budget did: make room inside the
		// file, then try once more.
		if ferr := q.freeForFullDisk(newBytes); ferr != nil {
			return fmt.Errorf("commit: %w (making room: %v)", err, ferr)
		}
		ev, dropped = eviction{}, 0
		err = q.db.Update(commit)
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.applyEviction(&ev)
	for _, b := range blocks[ev.incomingBlocks:] {
		q.st.Readings += b.count
		q.st.StoredBytes += int64(len(b.k) + len(b.v))
		if q.oldest[Telemetry] == 0 {
			q.oldest[Telemetry] = b.t
		}
	}
	for _, p := range ps {
		if p.enc[0] == recAlert {
			q.st.Alerts++
		} else {
			q.st.Acks++
		}
		q.st.StoredBytes += int64(8 + len(p.enc))
		if q.oldest[Priority] == 0 {
			q.oldest[Priority] = p.t
		}
	}
	return nil
}

// freeForFullDisk deletes the ballast, caps the budget at what the file
// can hold without growing (it settles at about 2.5 times the stored
// bytes), and evicts the oldest telemetry down to it in a transaction of
// its own, whose freed pages the retried commit reuses. q.writeMu and
// q.dbMu (read) are held.
func (q *Queue) freeForFullDisk(need int64) error {
	if q.opts.Ballast > 0 {
		os.Remove(q.ballastPath())
	}
	var file int64
	if st, err := os.Stat(q.path); err == nil {
		file = st.Size()
	}
	q.mu.Lock()
	q.st.DiskFull++
	q.diskCap = max(file*2/5, 64<<10)
	over := max(need, q.st.StoredBytes+need-q.diskCap)
	q.mu.Unlock()
	q.log.Error("buffer: disk full before the budget; dropping the oldest telemetry to make room", "file_bytes", file, "budget_bytes", q.diskCap)
	var ev eviction
	err := q.db.Update(func(tx *bolt.Tx) error {
		var err error
		ev, err = q.evict(tx, over, 0, false)
		return err
	})
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.applyEviction(&ev)
	q.mu.Unlock()
	return nil
}

// checkDiskRoom lifts the full-disk budget cap once the disk has room
// again, that is once the ballast could be rebuilt.
func (q *Queue) checkDiskRoom() {
	q.mu.Lock()
	capped := q.diskCap > 0
	q.mu.Unlock()
	if !capped {
		return
	}
	if q.opts.Ballast > 0 && !q.ensureBallast() {
		return
	}
	q.mu.Lock()
	q.diskCap = 0
	q.mu.Unlock()
	q.log.Info("buffer: the disk has room again; full budget restored")
}

func (q *Queue) ballastPath() string { return q.path + ".ballast" }

// ensureBallast creates the reserve file if it is missing and reports
// whether it is there.
func (q *Queue) ensureBallast() bool {
	if q.opts.Ballast <= 0 {
		return false
	}
	p := q.ballastPath()
	if st, err := os.Stat(p); err == nil && st.Size() >= q.opts.Ballast {
		return true
	}
	// Written, not truncated: a sparse file would reserve nothing.
	if err := os.WriteFile(p, make([]byte, q.opts.Ballast), 0o600); err != nil {
		os.Remove(p)
		q.log.Warn("buffer: cannot reserve disk space (ballast)", "path", p, "error", err)
		return false
	}
	return true
}

// Read returns the records of lane stored under keys >= from, in
// sequence order: for Telemetry whole blocks until at least max readings
// (so possibly up to Options.BlockReadings-1 more), for Priority at most
// max records. An empty Chunk (Len 0, Skipped 0) means nothing is stored
// at or after from. Read does not remove anything.
func (q *Queue) Read(lane Lane, from uint64, max int) (Chunk, error) {
	c := Chunk{Lane: lane}
	if lane >= numLanes {
		return c, fmt.Errorf("buffer read: %w", ErrBadLane)
	}
	if max < 1 {
		max = 1
	}
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return c, fmt.Errorf("buffer read: %w", ErrClosed)
	}
	if lane == Telemetry {
		// Whole blocks: at most one block beyond max, and never more than
		// is stored. The uplink re-reads its waiting partial batch on every
		// commit: pre-sizing for max (~557 KB) each time made a 1,000-truck
		// gateway host allocate hundreds of MB per second.
		q.mu.Lock()
		stored := q.st.Readings
		q.mu.Unlock()
		c.Readings = make([]sensors.Reading, 0, min(max, stored)+q.opts.BlockReadings)
	}
	var corrupt int
	err := q.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketLane[lane]).Cursor()
		var scratch []byte
		for k, v := cur.Seek(seqKey(from)); k != nil; k, v = cur.Next() {
			if c.Len() >= max {
				break
			}
			seq := keySeq(k)
			if c.First == 0 {
				c.First = seq
			}
			c.Last = seq
			var err error
			if lane == Telemetry {
				c.Readings, scratch, err = decodeBlock(c.Readings, scratch, seq, v)
				if err == nil && len(c.Readings) > 0 {
					c.Last = c.Readings[len(c.Readings)-1].Seq
				}
			} else {
				err = decodePriority(&c, seq, v)
			}
			if err != nil {
				corrupt++
				if q.firstDamage(lane, seq) {
					q.log.Error("buffer: skipping damaged record", "lane", lane, "key", seq, "error", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Chunk{Lane: lane}, fmt.Errorf("buffer read %s: %w", lane, err)
	}
	c.Skipped = corrupt
	return c, nil
}

// firstDamage records that the record under key in lane is damaged and
// reports whether this is the first time it was seen, counting it then.
func (q *Queue) firstDamage(lane Lane, key uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := [2]uint64{uint64(lane), key}
	if q.damaged[k] {
		return false
	}
	if q.damaged == nil {
		q.damaged = map[[2]uint64]bool{}
	}
	q.damaged[k] = true
	q.st.CorruptRecords++
	return true
}

// Delete removes the records of lane stored under keys first..last, as
// given by a Chunk, durably. Keys already gone are ignored, so deleting
// twice is harmless.
func (q *Queue) Delete(lane Lane, first, last uint64) error {
	if lane >= numLanes {
		return fmt.Errorf("buffer delete: %w", ErrBadLane)
	}
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return fmt.Errorf("buffer delete: %w", ErrClosed)
	}
	var d eviction
	var oldest int64
	err := q.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLane[lane]).Cursor()
		fk := seqKey(first)
		for k, v := c.Seek(fk); k != nil && keySeq(k) <= last; k, v = c.Seek(fk) {
			d.count(lane, k, v, false)
			if err := c.Delete(); err != nil {
				return err
			}
		}
		oldest = firstTime(tx, lane)
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer delete %s %d..%d: %w", lane, first, last, err)
	}
	q.mu.Lock()
	q.st.Readings -= int(d.readings)
	q.st.Alerts -= int(d.alerts)
	q.st.Acks -= int(d.acks)
	q.st.StoredBytes -= d.bytes
	q.oldest[lane] = oldest
	for k := range q.damaged {
		if k[0] == uint64(lane) && k[1] >= first && k[1] <= last {
			delete(q.damaged, k)
		}
	}
	q.notifyLocked()
	q.mu.Unlock()
	return nil
}

// firstTime returns the measurement time of the first record in lane.
func firstTime(tx *bolt.Tx, lane Lane) int64 {
	k, v := tx.Bucket(bucketLane[lane]).Cursor().First()
	if k == nil {
		return 0
	}
	if lane == Telemetry {
		h, err := parseBlockHeader(v)
		if err != nil {
			return 0
		}
		return h.firstTime
	}
	return priorityTime(keySeq(k), v)
}

// Stats returns a snapshot of the queue's counters. Safe for concurrent use.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	st := q.st
	st.FirstSeq, st.LastSeq, st.SyncedSeq = q.firstSeq, q.lastSeq, q.synced
	st.Pending = len(q.pendR) + len(q.pendP)
	oldest := q.oldest
	q.mu.Unlock()
	var o int64
	for _, t := range oldest {
		if t != 0 && (o == 0 || t < o) {
			o = t
		}
	}
	if o != 0 {
		st.Oldest = time.Unix(0, o)
		st.OldestAge = q.opts.Now().Sub(st.Oldest)
	}
	if fi, err := os.Stat(q.path); err == nil {
		st.FileBytes = fi.Size()
	}
	return st
}

// Path returns the database file's path.
func (q *Queue) Path() string { return q.path }

// Close commits what is pending, stops the committing goroutine and closes
// the database. Appends after Close fail with ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.done)
	q.wg.Wait()
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	err := q.db.Close()
	q.db = nil
	if err != nil {
		return fmt.Errorf("buffer close: %w", err)
	}
	return nil
}
