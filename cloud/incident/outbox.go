package incident

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Pending is a notification waiting in the outbox.
type Pending struct {
	Seq uint64
	Notification
}

// DeadLetter records a notification a channel never accepted.
type DeadLetter struct {
	Notification Notification `json:"notification"`
	Channel      string       `json:"channel"`
	Attempts     int          `json:"attempts"`
	Error        string       `json:"error"`
	At           time.Time    `json:"at"`
}

// Outbox returns the pending notifications, oldest first.
func (m *Manager) Outbox() ([]Pending, error) {
	var out []Pending
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var p Pending
			if err := json.Unmarshal(v, &p.Notification); err != nil {
				return fmt.Errorf("outbox %x: %w", k, err)
			}
			p.Seq = binary.BigEndian.Uint64(k)
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("incident outbox: %w", err)
	}
	return out, nil
}

// Delivered removes the outbox entries seqs (all of one incident), adds
// ds to that incident's notification log and records dead letters, in one
// transaction.
func (m *Manager) Delivered(incidentID string, seqs []uint64, ds []Delivery, dead []DeadLetter) error {
	err := m.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		for _, s := range seqs {
			if err := ob.Delete(binary.BigEndian.AppendUint64(nil, s)); err != nil {
				return err
			}
		}
		db := tx.Bucket(bucketDeadLetter)
		for _, d := range dead {
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			seq, err := db.NextSequence()
			if err != nil {
				return err
			}
			if err := db.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
				return err
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		inc := m.byID[incidentID]
		if inc == nil {
			return nil // forgotten from memory; the log entry is dropped, the dead letters kept
		}
		c := m.begin(tx, time.Now())
		inc.Notifications = append(inc.Notifications, ds...)
		c.touch(inc)
		return c.finish()
	})
	if err != nil {
		return fmt.Errorf("incident delivered %s: %w", incidentID, err)
	}
	return nil
}

// DeadLetters returns every dead-lettered notification, oldest first.
func (m *Manager) DeadLetters() ([]DeadLetter, error) {
	var out []DeadLetter
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadLetter).ForEach(func(_, v []byte) error {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}
