package buffer

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// compactTxSize is how many bytes Compact copies per transaction.
const compactTxSize = 4 << 20

// maybeCompact compacts when the file is larger than CompactMinBytes and
// more than CompactRatio times the stored bytes.
func (q *Queue) maybeCompact() error {
	st := q.Stats()
	if st.FileBytes <= q.opts.CompactMinBytes || float64(st.FileBytes) <= q.opts.CompactRatio*float64(st.StoredBytes) {
		return nil
	}
	return q.Compact()
}

// Compact copies the stored records into a new file and replaces the
// database with it, returning the free pages a drained backlog left behind
// to the file system. Appends continue in memory meanwhile; reads and
// deletes wait. The queue calls it by itself (see Options.CompactRatio);
// it is exported for tests and tools.
func (q *Queue) Compact() error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	if q.db == nil {
		return fmt.Errorf("buffer compact: %w", ErrClosed)
	}
	before := fileSize(q.path)
	tmp := q.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := openBolt(tmp)
	if err != nil {
		return fmt.Errorf("buffer compact: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, q.db, compactTxSize); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("buffer compact: copy: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("buffer compact: close copy: %w", err)
	}
	if err := q.db.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("buffer compact: close: %w", err)
	}
	q.db = nil
	renameErr := os.Rename(tmp, q.path)
	if renameErr == nil {
		syncDir(filepath.Dir(q.path))
	} else {
		os.Remove(tmp)
	}
	db, err := openBolt(q.path)
	if err != nil {
		// The queue cannot continue without its file; later calls fail.
		return fmt.Errorf("buffer compact: reopen: %w", err)
	}
	q.db = db
	if renameErr != nil {
		return fmt.Errorf("buffer compact: replace: %w", renameErr)
	}
	q.mu.Lock()
	q.st.Compactions++
	q.mu.Unlock()
	q.log.Info("buffer compacted", "bytes_before", before, "bytes_after", fileSize(q.path))
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
