package buffer

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// benchReadings is a realistic mix: 10 Hz wheel speed in 1/256 km/h and
// 1 Hz coolant, cargo and position, ms timestamps.
func benchReadings(n int) []sensors.Reading {
	rs := make([]sensors.Reading, n)
	t := int64(1_767_225_600_000) * 1e6
	for i := range rs {
		sig := sensors.WheelSpeed
		v := float64(20000+(i*7)%512) / 256
		if k := i % 14; k >= 10 {
			sig = []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp, sensors.VPLatitude, sensors.VPLongitude}[k-10]
			v = float64(85 + i%3)
		}
		rs[i] = sensors.Reading{Time: t + int64(i/14)*1e9 + int64(i%14)*7e6, Value: v, Signal: sig}
	}
	return rs
}

// BenchmarkAppend measures durable appends with group commit at the
// default sync interval: b.N appends of 100 readings, then a final Sync,
// all inside the timer.
func BenchmarkAppend(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), Options{MaxBytes: 4 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	const per = 100
	src := benchReadings(per * 1000)
	batch := make([]sensors.Reading, per)
	b.ReportAllocs()
	b.SetBytes(per * 26) // seq, time, value, signal, flags
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		copy(batch, src[(i%1000)*per:])
		if err := q.Append(batch, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Sync(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	st := q.Stats()
	b.ReportMetric(float64(st.SyncedSeq-st.FirstSeq+1)/el.Seconds(), "buffer_append_readings_per_s:readings/s")
	b.ReportMetric(float64(st.StoredBytes)/float64(max(st.Readings, 1)), "stored_bytes/reading")
}

// BenchmarkReadDelete measures reading and deleting a backlog as the
// uplink does, in chunks of 16384.
func BenchmarkReadDelete(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), Options{MaxBytes: 4 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	src := benchReadings(1 << 20)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		b.StopTimer()
		if err := q.Append(src, nil, nil); err != nil {
			b.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for {
			c, err := q.Read(Telemetry, 0, 16384)
			if err != nil {
				b.Fatal(err)
			}
			if c.Len() == 0 {
				break
			}
			n += c.Len()
			if err := q.Delete(Telemetry, c.First, c.Last); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
