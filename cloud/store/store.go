package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketStage    = []byte("stage")
	bucketDedup    = []byte("dedup")
	bucketDetector = []byte("detector")
	bucketMeta     = []byte("meta")
	keyFlush       = []byte("flush")
	keyInstance    = []byte("instance")
)

// ErrCorrupt reports a database record that cannot be decoded.
var ErrCorrupt = errors.New("store: corrupt record")

// DB is the cloud's database. It is safe for concurrent use.
type DB struct {
	db       *bolt.DB
	instance string
}

// Open opens (creating if needed) the database file at path.
func Open(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("store open %s: %w", path, err)
	}
	var instance string
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketStage, bucketDedup, bucketDetector, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyInstance); v != nil {
			instance = string(v)
			return nil
		}
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		instance = hex.EncodeToString(r[:])
		return meta.Put(keyInstance, []byte(instance))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store open %s: %w", path, err)
	}
	return &DB{db: db, instance: instance}, nil
}

// Instance returns the database's random id, made when the file was
// created: archive object names include it, so that objects of a rebuilt
// database never overwrite older ones.
func (d *DB) Instance() string { return d.instance }

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Bolt returns the underlying database, for packages that keep their own
// buckets in the same file.
func (d *DB) Bolt() *bolt.DB { return d.db }

// Commit is everything one ingest step changes.
type Commit struct {
	// Staged records, appended in order with increasing ids.
	Staged [][]byte
	// Dedup state per truck, replacing the stored one.
	Dedup map[string][]byte
	// Detector state per truck, replacing the stored one.
	Detectors map[string][]byte
	// Extra, if set, runs last inside the same transaction (for packages
	// keeping their own buckets in this file, such as incidents).
	Extra func(tx *bolt.Tx) error
	// StagedIDs is set by Apply: the id given to each of Staged.
	StagedIDs []uint64
}

// Apply writes c in one durable transaction.
func (d *DB) Apply(c *Commit) error {
	c.StagedIDs = c.StagedIDs[:0]
	err := d.db.Update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketStage)
		c.StagedIDs = c.StagedIDs[:0] // a retried transaction starts over
		for _, v := range c.Staged {
			id, err := st.NextSequence()
			if err != nil {
				return err
			}
			if err := st.Put(u64(id), v); err != nil {
				return err
			}
			c.StagedIDs = append(c.StagedIDs, id)
		}
		for _, m := range []struct {
			b []byte
			m map[string][]byte
		}{{bucketDedup, c.Dedup}, {bucketDetector, c.Detectors}} {
			b := tx.Bucket(m.b)
			for k, v := range m.m {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		if c.Extra != nil {
			return c.Extra(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store commit: %w", err)
	}
	return nil
}

// StageTx appends one staged record inside tx, for packages that change
// the database in their own transactions (incidents).
func StageTx(tx *bolt.Tx, v []byte) error {
	st := tx.Bucket(bucketStage)
	id, err := st.NextSequence()
	if err != nil {
		return err
	}
	return st.Put(u64(id), v)
}

// Dedup returns the stored dedup state of truck (nil if none). The
// returned slice is the caller's.
func (d *DB) Dedup(truck string) ([]byte, error) { return d.get(bucketDedup, truck) }

// Detector returns the stored detector state of truck (nil if none).
func (d *DB) Detector(truck string) ([]byte, error) { return d.get(bucketDetector, truck) }

func (d *DB) get(bucket []byte, key string) ([]byte, error) {
	var out []byte
	err := d.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store get %s/%s: %w", bucket, key, err)
	}
	return out, nil
}

// Trucks returns every truck with stored dedup state: every truck the
// cloud has accepted data from.
func (d *DB) Trucks() ([]string, error) {
	var out []string
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDedup).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store trucks: %w", err)
	}
	return out, nil
}

// BeginFlush returns the range of staged ids the next archive flush must
// write. If a flush was begun and not finished (the process crashed), it
// returns that same range, so the flush writes the same objects again;
// otherwise it picks staged records from the oldest up to about maxBytes
// and records the range durably. ok is false when nothing is staged.
func (d *DB) BeginFlush(maxBytes int) (first, last uint64, ok bool, err error) {
	err = d.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyFlush); v != nil {
			if len(v) != 16 {
				return fmt.Errorf("%w: flush marker of %d bytes", ErrCorrupt, len(v))
			}
			first, last, ok = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true
			return nil
		}
		c := tx.Bucket(bucketStage).Cursor()
		size := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id := binary.BigEndian.Uint64(k)
			if !ok {
				first, ok = id, true
			}
			last = id
			size += len(v)
			if size >= maxBytes {
				break
			}
		}
		if !ok {
			return nil
		}
		return meta.Put(keyFlush, append(u64(first), u64(last)...))
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("store begin flush: %w", err)
	}
	return first, last, ok, nil
}

// Staged calls fn for each staged record with id in first..last, in id
// order. v is valid only during the call.
func (d *DB) Staged(first, last uint64, fn func(id uint64, v []byte) error) error {
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketStage).Cursor()
		for k, v := c.Seek(u64(first)); k != nil; k, v = c.Next() {
			id := binary.BigEndian.Uint64(k)
			if id > last {
				break
			}
			if err := fn(id, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store read staged %d-%d: %w", first, last, err)
	}
	return nil
}

// FinishFlush deletes staged records first..last and the flush marker.
func (d *DB) FinishFlush(first, last uint64) error {
	err := d.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketStage).Cursor()
		for k, _ := c.Seek(u64(first)); k != nil && binary.BigEndian.Uint64(k) <= last; k, _ = c.Seek(u64(first)) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyFlush)
	})
	if err != nil {
		return fmt.Errorf("store finish flush %d-%d: %w", first, last, err)
	}
	return nil
}

// StagedStats returns how many records are staged and their total size.
func (d *DB) StagedStats() (n, bytes int, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStage).ForEach(func(_, v []byte) error {
			n++
			bytes += len(v)
			return nil
		})
	})
	return n, bytes, err
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
