package console

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/sensors"
)

// DefaultBackfillRows bounds how many archived readings Backfill reads.
const DefaultBackfillRows = 300_000

// Backfill loads recent readings from the archive st into the trucks'
// chart history, bands and last known values (newest hours first, at
// most maxRows rows, 0 meaning DefaultBackfillRows), so that after a
// cloud restart the charts reach back and silent trucks show where they
// were last seen. Readings that arrived live meanwhile win. It returns
// how many rows it folded in; an error leaves what was loaded so far.
func (c *Console) Backfill(ctx context.Context, st archive.Store, maxRows int) (int, error) {
	if maxRows <= 0 {
		maxRows = DefaultBackfillRows
	}
	now := c.opts.Now()
	var rows []archive.Reading
	for h := time.Duration(0); h <= c.opts.Config.History && len(rows) < maxRows; h += time.Hour {
		keys, err := st.List(ctx, archive.Partition(archive.DatasetReadings, now.Add(-h).UnixNano()))
		if err != nil {
			return 0, fmt.Errorf("console backfill: %w", err)
		}
		for i := len(keys) - 1; i >= 0 && len(rows) < maxRows; i-- {
			rs, err := archive.ReadReadingObject(ctx, st, keys[i])
			if err != nil {
				return 0, fmt.Errorf("console backfill: %w", err)
			}
			rows = append(rows, rs...)
		}
	}
	from := now.Add(-c.opts.Config.History).UnixNano()
	rows = slices.DeleteFunc(rows, func(r archive.Reading) bool { return r.TimeNS < from })
	slices.SortFunc(rows, func(a, b archive.Reading) int {
		if a.Truck != b.Truck {
			if a.Truck < b.Truck {
				return -1
			}
			return 1
		}
		switch {
		case a.TimeNS < b.TimeNS:
			return -1
		case a.TimeNS > b.TimeNS:
			return 1
		}
		return 0
	})
	sigOf := func(name string) sensors.Signal {
		s, err := sensors.ParseSignal(name)
		if err != nil {
			return sensors.SignalInvalid
		}
		return s
	}
	n := 0
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].Truck == rows[i].Truck {
			j++
		}
		rs := make([]sensors.Reading, 0, j-i)
		for _, r := range rows[i:j] {
			if s := sigOf(r.Signal); s.Valid() {
				rs = append(rs, sensors.Reading{Seq: uint64(r.Seq), Time: r.TimeNS, Signal: s, Value: r.Value})
			}
		}
		c.mu.Lock()
		t := c.truck(rows[i].Truck)
		if t.LastSeen.IsZero() && len(rs) > 0 {
			t.LastSeen = time.Unix(0, rs[len(rs)-1].Time).UTC() // when it was last heard of, as far as the archive knows
		}
		c.fold(t, rs)
		c.mu.Unlock()
		n += len(rs)
		i = j
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	if n > 0 {
		c.log.Info("console history loaded from the archive", "readings", n, "trucks", len(c.Trucks()))
	}
	return n, nil
}

// LoadHistory runs Backfill with the default bound and logs its outcome;
// the cloud runs it once at start, beside the live stream.
func (c *Console) LoadHistory(ctx context.Context, st archive.Store) {
	if _, err := c.Backfill(ctx, st, 0); err != nil && ctx.Err() == nil {
		c.log.Warn("console history not loaded from the archive; charts start empty", "err", err)
	}
}
