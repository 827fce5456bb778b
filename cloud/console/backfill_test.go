package console

import (
	"context"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestBackfillFromArchive(t *testing.T) {
	st := archive.Dir{Root: t.TempDir()}
	now := time.Now()
	// T1: 3 hours at one reading a minute per signal, in two flushes; T2
	// one reading 10 hours ago (beyond the history).
	var b1, b2 archive.Batch
	seq := uint64(0)
	for m := 180; m > 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute).UnixNano()
		b := &b1
		if m < 60 {
			b = &b2
		}
		for _, r := range []sensors.Reading{
			{Time: at, Signal: sensors.CoolantTemp, Value: 88 + float64(m%3)},
			{Time: at, Signal: sensors.GNSSLatitude, Value: 52 + float64(m)/1000},
			{Time: at, Signal: sensors.GNSSLongitude, Value: 4.5},
		} {
			seq++
			r.Seq = seq
			b.Readings = append(b.Readings, archive.ReadingRow("T1", r))
		}
	}
	b2.Readings = append(b2.Readings, archive.ReadingRow("T2", sensors.Reading{Seq: 1, Time: now.Add(-10 * time.Hour).UnixNano(), Signal: sensors.CoolantTemp, Value: 70}))
	for i, b := range []*archive.Batch{&b1, &b2} {
		if _, err := archive.Write(context.Background(), st, archive.Stem("test", uint64(i*1000+1), uint64(i*1000+999)), b); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name             string
		maxRows, wantMin int
		wantMax          int
	}{
		{"all of the last 6 h", 0, 540, 540},
		{"bounded: newest objects first", 100, 100, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(nil, Options{Config: Config{HistoryStep: time.Minute}})
			// A live reading arrived first: it must stay the current value.
			c.Readings("T1", []sensors.Reading{{Time: now.UnixNano(), Signal: sensors.CoolantTemp, Value: 91}}, now)
			n, err := c.Backfill(context.Background(), st, tc.maxRows)
			if err != nil || n < tc.wantMin || n > tc.wantMax {
				t.Fatalf("backfill %d rows (want %d..%d): %v", n, tc.wantMin, tc.wantMax, err)
			}
			ts := c.Trucks()
			if len(ts) != 1 || ts[0].ID != "T1" || *ts[0].Coolant != 91 || ts[0].Lat == nil || *ts[0].Lat != 52.001 || !ts[0].Online {
				t.Fatalf("trucks %+v", ts)
			}
			c.mu.Lock()
			pts := len(c.trucks["T1"].hist.pts)
			c.mu.Unlock()
			if want := n/3 + 1; pts != want {
				t.Fatalf("%d history points, want %d", pts, want)
			}
		})
	}
	t.Run("a silent truck shows offline where it was", func(t *testing.T) {
		c := New(nil, Options{Config: Config{HistoryStep: time.Minute}})
		if _, err := c.Backfill(context.Background(), st, 0); err != nil {
			t.Fatal(err)
		}
		ts := c.Trucks()
		if len(ts) != 1 || ts[0].Status != StatusOffline || ts[0].LastSeen.Before(now.Add(-2*time.Minute)) || ts[0].Lat == nil {
			t.Fatalf("trucks %+v", ts)
		}
	})
}
