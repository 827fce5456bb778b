package archive

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Stats says what one Write stored.
type Stats struct {
	Objects int
	Bytes   int64
	Rows    int
}

// Write stores the rows of b, one object per dataset and event-time hour,
// named ObjectKey(partition, stem). Rows are sorted
// (by truck, signal, seq) so that equal input gives byte-identical objects.
// It may reorder b's slices. Write is safe for concurrent use if st is.
func Write(ctx context.Context, st Store, stem string, b *Batch) (Stats, error) {
	var s Stats
	slices.SortFunc(b.Alerts, func(x, y Alert) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.TimeNS, y.TimeNS), cmp.Compare(x.Source, y.Source), cmp.Compare(x.Signal, y.Signal), cmp.Compare(x.Seq, y.Seq))
	})
	slices.SortFunc(b.Acks, func(x, y Ack) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.Seq, y.Seq), cmp.Compare(x.TimeNS, y.TimeNS))
	})
	if err := writeReadings(ctx, st, &s, stem, b.Readings); err != nil {
		return s, err
	}
	if err := writeDataset(ctx, st, &s, DatasetAlerts, stem, b.Alerts, func(r Alert) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	if err := writeDataset(ctx, st, &s, DatasetAcks, stem, b.Acks, func(r Ack) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	slices.SortStableFunc(b.Incidents, func(x, y Incident) int {
		return cmp.Or(cmp.Compare(x.ID, y.ID), cmp.Compare(x.ChangedNS, y.ChangedNS))
	})
	if err := writeDataset(ctx, st, &s, DatasetIncidents, stem, b.Incidents, func(r Incident) int64 { return r.ChangedNS }); err != nil {
		return s, err
	}
	slices.SortStableFunc(b.DTCs, func(x, y DTC) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.TimeNS, y.TimeNS))
	})
	if err := writeDataset(ctx, st, &s, DatasetDTCs, stem, b.DTCs, func(r DTC) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	slices.SortFunc(b.Quarantined, func(x, y Quarantined) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.Seq, y.Seq))
	})
	if err := writeDataset(ctx, st, &s, DatasetQuarantine, stem, b.Quarantined, func(r Quarantined) int64 { return r.ReceivedNS }); err != nil {
		return s, err
	}
	return s, nil
}

const hourNS = int64(time.Hour)

// writeReadings is writeDataset for readings, which are many: it groups
// rows by (hour, truck, signal) with one map lookup per row and sorts only
// the group keys, and within a group only by seq when needed (staged
// records usually arrive in seq order).
func writeReadings(ctx context.Context, st Store, s *Stats, stem string, rows []Reading) error {
	// Group keys use small ints: hashing two strings per row twice was a
	// tenth of the archiver's time. Consecutive rows mostly share a truck.
	type groupKey struct {
		hour          int64
		truck, signal int32
	}
	var names []string // truck names, then signal names, by index
	ids := map[string]int32{}
	intern := func(s string) int32 {
		id, ok := ids[s]
		if !ok {
			id = int32(len(names))
			ids[s] = id
			names = append(names, s)
		}
		return id
	}
	// One map lookup per row gives its dense group id; counting and
	// placing then use slices.
	gids := map[groupKey]int32{}
	var keys []groupKey
	rowGroup := make([]int32, len(rows))
	var count []int
	prevTruck, prevID := "", int32(-1)
	for i := range rows {
		if rows[i].Truck != prevTruck || prevID < 0 {
			prevTruck, prevID = rows[i].Truck, intern("t:"+rows[i].Truck)
		}
		k := groupKey{floorDiv(rows[i].TimeNS, hourNS), prevID, intern(rows[i].Signal)}
		g, ok := gids[k]
		if !ok {
			g = int32(len(keys))
			gids[k] = g
			keys = append(keys, k)
			count = append(count, 0)
		}
		rowGroup[i] = g
		count[g]++
	}
	// Order the groups by (hour, truck, signal) and lay them out
	// contiguously in one array.
	order := make([]int32, len(keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := keys[a], keys[b]
		return cmp.Or(cmp.Compare(x.hour, y.hour), cmp.Compare(names[x.truck], names[y.truck]), cmp.Compare(names[x.signal], names[y.signal]))
	})
	next := make([]int, len(keys))
	bounds := make([]int, len(keys)+1)
	for i, g := range order {
		next[g] = bounds[i]
		bounds[i+1] = bounds[i] + count[g]
	}
	grouped := make([]Reading, len(rows))
	for i, g := range rowGroup {
		grouped[next[g]] = rows[i]
		next[g]++
	}
	bySeq := func(x, y Reading) int { return cmp.Compare(x.Seq, y.Seq) }
	out := make([]readingRecord, 0, len(rows))
	for i, gi := range order {
		k := keys[gi]
		g := grouped[bounds[i]:bounds[i+1]]
		if !slices.IsSortedFunc(g, bySeq) {
			slices.SortFunc(g, bySeq)
		}
		out = toRecords(out, g)
		if i+1 < len(order) && keys[order[i+1]].hour == k.hour {
			continue
		}
		part := Partition(DatasetReadings, k.hour*hourNS)
		body, err := Encode(out)
		if err != nil {
			return fmt.Errorf("archive write %s: %w", part, err)
		}
		if err := st.Put(ctx, ObjectKey(part, stem), body); err != nil {
			return err
		}
		s.Objects++
		s.Bytes += int64(len(body))
		s.Rows += len(out)
		out = out[:0]
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func writeDataset[T any](ctx context.Context, st Store, s *Stats, dataset, stem string, rows []T, at func(T) int64) error {
	if len(rows) == 0 {
		return nil
	}
	parts := map[string][]T{}
	for _, r := range rows { // stable: keeps the sort order within a partition
		p := Partition(dataset, at(r))
		parts[p] = append(parts[p], r)
	}
	keys := make([]string, 0, len(parts))
	for p := range parts {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		body, err := Encode(parts[p])
		if err != nil {
			return fmt.Errorf("archive write %s: %w", p, err)
		}
		key := ObjectKey(p, stem)
		if err := st.Put(ctx, key, body); err != nil {
			return err
		}
		s.Objects++
		s.Bytes += int64(len(body))
		s.Rows += len(parts[p])
	}
	return nil
}

// Encode returns rows as one zstd-compressed Parquet file.
func Encode[T any](rows []T) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.Compression(&parquet.Zstd))
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
