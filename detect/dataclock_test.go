package detect

import (
	"fmt"
	"testing"
	"time"
)

func TestDataClock(t *testing.T) {
	s := int64(time.Second)
	cases := []struct {
		name     string
		interval time.Duration
		readings []int64 // times of readings, in order
		want     string  // check times yielded before each reading
	}{
		{"first reading starts the clock", 0, []int64{10 * s}, "[[]]"},
		{"every second before the next reading", 0, []int64{10 * s, 13 * s}, "[[] [11 12]]"},
		{"a check at a reading's own time comes after it", 0, []int64{10 * s, 11 * s, 12*s + 1}, "[[] [] [11 12]]"},
		{"interval", 2 * time.Second, []int64{0, 7 * s}, "[[] [2 4 6]]"},
		{"backwards yields nothing", 0, []int64{10 * s, 12 * s, 5 * s, 14 * s}, "[[] [11] [] [12 13]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DataClock{Interval: tc.interval}
			var got [][]int64
			for _, r := range tc.readings {
				var ticks []int64
				for now, ok := c.Next(r); ok; now, ok = c.Next(r) {
					ticks = append(ticks, now/s)
				}
				got = append(got, ticks)
			}
			if g := fmt.Sprint(got); g != tc.want {
				t.Errorf("got %s, want %s", g, tc.want)
			}
		})
	}
}

// A jump of years yields a bounded number of checks, the last ones just
// before the reading.
func TestDataClockLongGap(t *testing.T) {
	var c DataClock
	c.Next(0)
	far := int64(10 * 365 * 24 * time.Hour)
	n, last := 0, int64(0)
	for now, ok := c.Next(far); ok; now, ok = c.Next(far) {
		n, last = n+1, now
	}
	if n > maxClockTicks+1 || last != far-int64(time.Second) {
		t.Fatalf("%d checks, last at %d; want at most %d, last 1 s before %d", n, last, maxClockTicks+1, far)
	}
}

// Series.Advance raises missing after missing_after without readings, as
// Detector.Advance does, and the next reading clears it.
func TestSeriesAdvance(t *testing.T) {
	cfg := DefaultConfig().Coolant
	x, err := NewSeries(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := int64(time.Second)
	x.Observe(0, 90)
	if _, ok := x.Advance(30 * s); ok {
		t.Fatal("missing at exactly missing_after")
	}
	tr, ok := x.Advance(31 * s)
	if !ok || tr.Kind != KindMissing || tr.Phase != Raised || tr.Time != 31*s || tr.Value != 90 {
		t.Fatalf("Advance(31 s) = %+v, %v", tr, ok)
	}
	if _, ok := x.Advance(40 * s); ok {
		t.Fatal("raised twice")
	}
	if tr, ok := x.Observe(41*s, 90); !ok || tr.Phase != Cleared || tr.Kind != KindMissing {
		t.Fatalf("next reading: %+v, %v", tr, ok)
	}
}
