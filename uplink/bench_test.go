package uplink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// batchByTime splits a seq-ordered drive into batches of span measurement
// time, as the publisher does live with BatchDelay = span.
func batchByTime(rs []sensors.Reading, span time.Duration) [][]sensors.Reading {
	var out [][]sensors.Reading
	start := 0
	for i := range rs {
		if rs[i].Time-rs[start].Time >= int64(span) {
			out = append(out, rs[start:i])
			start = i
		}
	}
	return append(out, rs[start:])
}

// BenchmarkUplinkBytesPerReading encodes a simulated hour of driving in
// batches of DefaultConfig().BatchDelay (the live case, not a backlog)
// and reports wire bytes per reading, with the JSON-per-reading
// equivalent for comparison.
func BenchmarkUplinkBytesPerReading(b *testing.B) {
	rs := seqd(driveReadings(0, time.Hour), 1)
	batches := batchByTime(rs, DefaultConfig().BatchDelay)
	b.ReportAllocs()
	var bytes, jsonBytes int
	for b.Loop() {
		bytes = 0
		for _, part := range batches {
			p, err := Encode(Batch{Truck: "truck-0001", Readings: part})
			if err != nil {
				b.Fatal(err)
			}
			bytes += len(p)
		}
	}
	type jsonReading struct {
		Truck  string  `json:"truck"`
		Seq    uint64  `json:"seq"`
		Signal string  `json:"signal"`
		Time   int64   `json:"time"`
		Value  float64 `json:"value"`
	}
	for _, r := range rs {
		p, _ := json.Marshal(jsonReading{"truck-0001", r.Seq, r.Signal.String(), r.Time, r.Value})
		jsonBytes += len(p)
	}
	b.SetBytes(int64(bytes))
	b.ReportMetric(float64(bytes)/float64(len(rs)), "uplink_bytes_per_reading:bytes/reading")
	b.ReportMetric(float64(jsonBytes)/float64(len(rs)), "uplink_json_bytes_per_reading:bytes/reading")
	b.ReportMetric(float64(len(rs))/float64(len(batches)), "readings/batch")

	// The same drive stamped with nanosecond receive-time noise instead
	// of milliseconds, to show what unrounded timestamps cost.
	noisy := append([]sensors.Reading(nil), rs...)
	x := uint64(12345)
	for i := range noisy {
		x = x*6364136223846793005 + 1442695040888963407
		noisy[i].Time += int64(x>>33) % 1e6
	}
	var nb int
	for _, part := range batchByTime(noisy, DefaultConfig().BatchDelay) {
		p, err := Encode(Batch{Truck: "truck-0001", Readings: part})
		if err != nil {
			b.Fatal(err)
		}
		nb += len(p)
	}
	b.ReportMetric(float64(nb)/float64(len(rs)), "ns_timestamps_bytes/reading")
}

// BenchmarkEncodeBacklogBatch encodes one full backlog batch.
func BenchmarkEncodeBacklogBatch(b *testing.B) {
	rs := seqd(driveReadings(0, time.Hour), 1)[:DefaultConfig().MaxBatchReadings]
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p, err := Encode(Batch{Truck: "truck-0001", Readings: rs})
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	b.ReportMetric(float64(n)/float64(len(rs)), "bytes/reading")
	b.ReportMetric(float64(len(rs))*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

func BenchmarkDecodeBacklogBatch(b *testing.B) {
	rs := seqd(driveReadings(0, time.Hour), 1)[:DefaultConfig().MaxBatchReadings]
	p, err := Encode(Batch{Truck: "truck-0001", Readings: rs})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := Decode(p, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rs))*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}
