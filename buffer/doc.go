// Package buffer is the gateway's store-and-forward queue on bbolt: every
// accepted reading, alert transition and acknowledgement is appended here,
// given its per-truck sequence number, and deleted only after the uplink
// says it is safe (the cloud confirmed it durable, see uplink.Config.Confirm).
//
// It must not send anything over the network; it imports only sensors and
// detect, upstream of it.
//
// # Sequence numbers
//
// Append assigns one sequence across all record types, in call order:
// readings, then alerts, then acks. The highest committed number is stored
// with every commit, so numbering continues after a restart even when the
// queue was empty. Records appended but not yet committed when the process
// dies are lost together with their numbers, which are then reused: they
// never left the process (the uplink reads only committed records), so
// (truck, seq) stays unique at the cloud. The numbers that survive are
// gap-free apart from deleted and evicted records. A queue that never
// numbered anything (a new truck, or one whose data directory was wiped)
// starts above the clock in microseconds, so a wiped truck cannot reuse
// numbers the cloud already has; Stats.FirstSeq is its first number.
//
// # Lanes and durability
//
// Alerts and acks go to the Priority lane, readings to the Telemetry lane;
// each lane is read in sequence order and deleted by key range. Readings
// are group-committed every Options.SyncInterval (one bbolt transaction
// with fsync for everything appended since the last commit); an Append
// with alerts or acks commits at once and returns when they are durable.
// Options.OnSync reports "durable up to seq N" after each commit, which
// crash tests use. Enqueue is Append for callers that must never wait for
// the disk (the gateway's detect stage): it queues and returns, and while
// commits hang it keeps at most MaxPendingReadings readings in memory,
// dropping the oldest (counted in Stats.PendingDropped); alerts and acks
// are never dropped there. No lock an Append or Enqueue takes is held
// across a commit's I/O. SaveState stores a named blob (the gateway's
// detector state) with the next commit; LoadState reads it back.
//
// # Disk budget and eviction
//
// Options.MaxBytes bounds the bytes of stored keys and values. When a
// commit would exceed it, the queue frees space in this order, counting
// every record removed (Stats.DroppedReadings, ThinnedReadings,
// DroppedAcks, DroppedAlerts) and logging a warning at most once a minute:
//
//  1. Thin the oldest telemetry blocks not yet thinned: keep only the
//     first reading of each signal per Options.ThinInterval (1 s) of
//     measurement time; 10 Hz wheel speed becomes 1 Hz, 1 Hz signals
//     mostly stay.
//  2. Drop whole telemetry blocks, oldest first.
//  3. Drop the incoming readings of this commit, oldest first.
//  4. Drop acknowledgements, oldest first.
//  5. Drop alert transitions, oldest first: only when alerts alone fill
//     the budget.
//
// Records already published but not yet acknowledged can be evicted; they
// may still reach the cloud, and are counted as dropped anyway.
//
// The budget counts stored bytes, not the file: bbolt grows its file by
// doubling (then in 1 GiB steps) and keeps freed pages for reuse, so the
// file settles at up to about twice MaxBytes (measured: a 16 MiB budget
// held a 32 MiB file through a long overflow). Size MaxBytes to half the
// space the queue may use.
//
// # A full disk
//
// If the disk fills up before the budget does, a commit fails with ENOSPC.
// The queue then deletes its ballast file (Options.Ballast, 1 MiB kept
// beside the database), which gives room for a transaction that drops the
// oldest telemetry blocks (bbolt needs fresh pages even to delete; no
// thinning, which would write new blocks), caps the budget at what the
// file already holds, and retries the commit, which reuses the freed
// pages. Alerts and acknowledgements keep their priority; every dropped
// reading is counted (Stats.DroppedReadings, Stats.DiskFull). Once the
// ballast can be written again (checked every CompactCheck) the full
// budget returns. A commit that still fails loses its readings, counted.
//
// # Reclaiming space and damaged files
//
// bbolt files do not shrink. When the file is larger than
// Options.CompactMinBytes and Options.CompactRatio times the stored bytes
// (typically after a long backlog drained), the queue copies the live
// records into a new file and swaps it in. If the file cannot be opened
// as a database, it is moved aside to path.corrupt-<time>, an error is
// logged, and a fresh queue starts. Its sequence numbers jump above every
// number the damaged file may have used, so they do not collide with
// numbers the cloud has already seen: a side file, path.seq, always holds
// a number above every one assigned (rewritten, with fsync, once per
// 2^20 records), and the fresh queue starts above it, or above the clock
// in microseconds if that is higher.
package buffer
