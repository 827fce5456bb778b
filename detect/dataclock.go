package detect

import "time"

// maxClockTicks bounds the checks DataClock.Next yields across one gap, so
// a recording with a jump of years in its timestamps does not stall a
// replay; beyond it the checks resume MaxClockTicks intervals before the
// next reading (a missing-data alert across such a gap is still raised,
// only stamped later).
const maxClockTicks = 100_000

// DataClock drives Advance from the readings' own time instead of a wall
// clock, for replays of recordings: before each reading, Next yields the
// check times (every Interval since the first reading) that fall before
// it, as a clock ticking beside the recording would have. After the last
// reading it yields nothing, so a replay that has ended raises no
// missing-data alert. The zero value checks every second. Not safe for
// concurrent use.
//
//	for now, ok := c.Next(r.Time); ok; now, ok = c.Next(r.Time) {
//		out = d.Advance(now, out)
//	}
//	d.Observe(r)
type DataClock struct {
	// Interval between checks; 0 means one second.
	Interval time.Duration
	next     int64 // next check time; valid when started
	started  bool
}

// Next returns the next check time before t (Unix ns, the time of the
// reading about to be observed) and true, or false when no check is due
// before t. A check at a reading's own time comes after that reading.
// Times that go backwards yield nothing.
func (c *DataClock) Next(t int64) (int64, bool) {
	iv := int64(c.Interval)
	if iv <= 0 {
		iv = int64(time.Second)
	}
	if !c.started {
		c.started, c.next = true, t+iv
		return 0, false
	}
	if c.next >= t {
		return 0, false
	}
	if t-c.next > maxClockTicks*iv {
		c.next += (t - c.next - maxClockTicks*iv) / iv * iv
	}
	now := c.next
	c.next += iv
	return now, true
}
