package buffer

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/sensors"
)

// eviction tallies what a delete or an eviction removed.
type eviction struct {
	readings, thinned, alerts, acks uint64
	bytes                           int64
	// incoming telemetry bytes still to drop, and what was dropped.
	dropIncoming     int64
	incomingBlocks   int
	incomingReadings uint64
	touched          [numLanes]bool
	oldest           [numLanes]int64
}

// count adds the record (k, v) of lane to the tally.
func (e *eviction) count(lane Lane, k, v []byte, _ bool) {
	e.bytes += int64(len(k) + len(v))
	e.touched[lane] = true
	if lane == Telemetry {
		if h, err := parseBlockHeader(v); err == nil {
			e.readings += uint64(h.count)
		}
		return
	}
	if len(v) > 0 {
		switch v[0] {
		case recAlert:
			e.alerts++
		case recAck:
			e.acks++
		}
	}
}

func (e *eviction) any() bool {
	return e.readings+e.alerts+e.acks+e.incomingReadings > 0
}

// evict frees at least over bytes of stored records inside tx, by the
// policy in doc.go: thin the oldest telemetry, then drop the oldest
// telemetry blocks, then (recorded in dropIncoming) the incoming readings
// of this commit, then the oldest acknowledgements, then the oldest alerts.
func (q *Queue) evict(tx *bolt.Tx, over, incomingTel int64, thinFirst bool) (eviction, error) {
	var e eviction
	tel := tx.Bucket(bucketLane[Telemetry])

	// 1. Thin: oldest unthinned blocks first. (Not on a full disk: a
	// thinned block is a new page to write.)
	var scratch, enc []byte
	var rs []sensors.Reading
	c := tel.Cursor()
	for k, v := c.First(); thinFirst && k != nil && e.bytes < over; k, v = c.Next() {
		h, err := parseBlockHeader(v)
		if err != nil || h.flags&blockThinned != 0 {
			continue
		}
		key := keySeq(k)
		rs, scratch, err = decodeBlock(rs[:0], scratch, key, v)
		if err != nil {
			continue
		}
		kept := thin(rs, q.opts.ThinInterval)
		enc, scratch = encodeBlock(enc[:0], scratch, key, kept, blockThinned)
		freed := int64(len(v) - len(enc))
		// Put copies nothing; give it its own slice.
		nv := append([]byte(nil), enc...)
		kc := append([]byte(nil), k...)
		if err := tel.Put(kc, nv); err != nil {
			return e, fmt.Errorf("thin block %d: %w", key, err)
		}
		// Re-seek: Put may move the cursor's page.
		c.Seek(kc)
		dropped := uint64(len(rs) - len(kept))
		e.readings += dropped
		e.thinned += dropped
		e.bytes += freed
		e.touched[Telemetry] = true
	}

	// 2. Drop the oldest telemetry blocks.
	for e.bytes < over {
		k, v := tel.Cursor().First()
		if k == nil {
			break
		}
		e.count(Telemetry, k, v, true)
		if err := tel.Delete(k); err != nil {
			return e, fmt.Errorf("evict block %d: %w", keySeq(k), err)
		}
	}

	// 3. The incoming readings themselves.
	if rest := over - e.bytes; rest > 0 && incomingTel > 0 {
		e.dropIncoming = min(rest, incomingTel)
		e.bytes += e.dropIncoming // accounted by write, not stored
	}

	// 4. Acknowledgements, then 5. alerts, oldest first.
	pri := tx.Bucket(bucketLane[Priority])
	for _, want := range []byte{recAck, recAlert} {
		c := pri.Cursor()
		for k, v := c.First(); k != nil && e.bytes < over; {
			if len(v) > 0 && v[0] != want {
				k, v = c.Next()
				continue
			}
			e.count(Priority, k, v, true)
			kc := append([]byte(nil), k...)
			if err := c.Delete(); err != nil {
				return e, fmt.Errorf("evict record %d: %w", keySeq(kc), err)
			}
			k, v = c.Seek(kc)
		}
	}
	for l := range numLanes {
		if e.touched[l] {
			e.oldest[l] = firstTime(tx, l)
		}
	}
	return e, nil
}

// thin keeps the first reading of each signal in each interval-long
// window of measurement time, in order. It reuses rs's array.
func thin(rs []sensors.Reading, interval time.Duration) []sensors.Reading {
	var last [256]int64
	var seen [256]bool
	iv := int64(interval)
	kept := rs[:0]
	for _, r := range rs {
		w := r.Time
		if iv > 0 {
			w = r.Time / iv
			if r.Time < 0 && r.Time%iv != 0 {
				w--
			}
		}
		if seen[r.Signal] && last[r.Signal] == w {
			continue
		}
		seen[r.Signal], last[r.Signal] = true, w
		kept = append(kept, r)
	}
	return kept
}

// applyEviction folds e into the counters. q.mu must be held.
func (q *Queue) applyEviction(e *eviction) {
	if !e.any() {
		return
	}
	q.st.Readings -= int(e.readings)
	q.st.Alerts -= int(e.alerts)
	q.st.Acks -= int(e.acks)
	q.st.StoredBytes -= e.bytes - e.dropIncoming
	q.st.DroppedReadings += e.readings + e.incomingReadings
	q.st.ThinnedReadings += e.thinned
	q.st.DroppedAlerts += e.alerts
	q.st.DroppedAcks += e.acks
	for l := range numLanes {
		if e.touched[l] {
			q.oldest[l] = e.oldest[l]
		}
	}
	now := q.opts.Now()
	if now.Sub(q.lastEvictLog) >= time.Minute {
		q.lastEvictLog = now
		q.log.Warn("buffer full: evicting by priority (telemetry thinned/dropped first, alerts last)",
			"max_bytes", q.opts.MaxBytes,
			"dropped_readings_total", q.st.DroppedReadings, "thinned_readings_total", q.st.ThinnedReadings,
			"dropped_acks_total", q.st.DroppedAcks, "dropped_alerts_total", q.st.DroppedAlerts)
	}
}
