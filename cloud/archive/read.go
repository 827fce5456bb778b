package archive

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// ReadReadings returns every reading row in the local archive at dir, in
// object-key order. A missing directory is an empty archive.
func ReadReadings(dir string) ([]Reading, error) {
	return ReadReadingsFrom(context.Background(), Dir{Root: dir})
}

// ReadReadingsFrom returns every reading row in st.
func ReadReadingsFrom(ctx context.Context, st Store) ([]Reading, error) {
	return toReadings(readAll[readingRecord](ctx, st, DatasetReadings))
}

// ReadReadingObject returns the readings of one object.
func ReadReadingObject(ctx context.Context, st Store, key string) ([]Reading, error) {
	return toReadings(readObject[readingRecord](ctx, st, key))
}

// toReadings converts stored reading rows.
func toReadings(recs []readingRecord, err error) ([]Reading, error) {
	if err != nil {
		return nil, err
	}
	out := make([]Reading, len(recs))
	for i, r := range recs {
		out[i] = r.reading()
	}
	return out, nil
}

// ReadAlerts returns every alert row (edge and cloud) in the local archive
// at dir.
func ReadAlerts(dir string) ([]Alert, error) {
	return ReadAll[Alert](context.Background(), Dir{Root: dir}, DatasetAlerts)
}

// ReadAcks returns every acknowledgement row in the local archive at dir.
func ReadAcks(dir string) ([]Ack, error) {
	return ReadAll[Ack](context.Background(), Dir{Root: dir}, DatasetAcks)
}

// ReadIncidents returns every archived incident state in the local
// archive at dir.
func ReadIncidents(dir string) ([]Incident, error) {
	return ReadAll[Incident](context.Background(), Dir{Root: dir}, DatasetIncidents)
}

// ReadAll returns the rows of every Parquet object of dataset in st
// (T Reading, Alert or Ack).
func ReadAll[T any](ctx context.Context, st Store, dataset string) ([]T, error) {
	if _, ok := any(*new(T)).(Reading); ok {
		rs, err := ReadReadingsFrom(ctx, st)
		return any(rs).([]T), err
	}
	return readAll[T](ctx, st, dataset)
}

func readAll[T any](ctx context.Context, st Store, dataset string) ([]T, error) {
	keys, err := st.List(ctx, dataset+"/")
	if err != nil {
		return nil, err
	}
	var out []T
	for _, k := range keys {
		if !strings.HasSuffix(k, ".parquet") {
			continue
		}
		rows, err := readObject[T](ctx, st, k)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// ReadObject returns the rows of one Parquet object (T Reading, Alert or
// Ack).
func ReadObject[T any](ctx context.Context, st Store, key string) ([]T, error) {
	if _, ok := any(*new(T)).(Reading); ok {
		rs, err := ReadReadingObject(ctx, st, key)
		return any(rs).([]T), err
	}
	return readObject[T](ctx, st, key)
}

func readObject[T any](ctx context.Context, st Store, key string) ([]T, error) {
	b, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("archive read %s: %w", key, err)
	}
	return rows, nil
}
