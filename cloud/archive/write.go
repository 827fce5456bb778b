package archive

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// Stats says what one Write stored.
type Stats struct {
	Objects int
	Bytes   int64
	Rows    int
}

// Write stores the rows of b, one object per dataset and event-time hour,
// named from the staged range first..last (see ObjectKey). Rows are sorted
// (by truck, signal, seq) so that equal input gives byte-identical objects.
// It may reorder b's slices. Write is safe for concurrent use if st is.
func Write(ctx context.Context, st Store, first, last uint64, b *Batch) (Stats, error) {
	var s Stats
	slices.SortFunc(b.Readings, func(x, y Reading) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.Signal, y.Signal), cmp.Compare(x.Seq, y.Seq))
	})
	slices.SortFunc(b.Alerts, func(x, y Alert) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.TimeNS, y.TimeNS), cmp.Compare(x.Source, y.Source), cmp.Compare(x.Signal, y.Signal), cmp.Compare(x.Seq, y.Seq))
	})
	slices.SortFunc(b.Acks, func(x, y Ack) int {
		return cmp.Or(cmp.Compare(x.Truck, y.Truck), cmp.Compare(x.Seq, y.Seq), cmp.Compare(x.TimeNS, y.TimeNS))
	})
	if err := writeDataset(ctx, st, &s, DatasetReadings, first, last, b.Readings, func(r Reading) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	if err := writeDataset(ctx, st, &s, DatasetAlerts, first, last, b.Alerts, func(r Alert) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	if err := writeDataset(ctx, st, &s, DatasetAcks, first, last, b.Acks, func(r Ack) int64 { return r.TimeNS }); err != nil {
		return s, err
	}
	return s, nil
}

func writeDataset[T any](ctx context.Context, st Store, s *Stats, dataset string, first, last uint64, rows []T, at func(T) int64) error {
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
		key := ObjectKey(p, first, last)
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
