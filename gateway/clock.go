package gateway

import (
	"sync"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// clock stamps readings with UTC time corrected from GNSS. Until the clock
// is trusted (the system clock looks set, or a GNSS fix confirmed it),
// readings carry sensors.ClockUntrusted. The corrected clock never runs
// backwards, so a correction never reorders readings in time: a backward
// step is absorbed by holding time until the system clock catches up.
// It is safe for concurrent use.
type clock struct {
	sys func() time.Time

	mu      sync.Mutex
	offset  time.Duration // added to the system clock
	last    int64         // last time handed out, Unix ns
	trusted bool
	jumps   uint64 // corrections applied
}

// minPlausible is the earliest system time taken as set: a box without a
// real-time clock boots in 1970.
var minPlausible = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// maxSkew is how far the system clock may be from GNSS time before it is
// corrected.
const maxSkew = 2 * time.Second

func newClock(sys func() time.Time) *clock {
	return &clock{sys: sys, trusted: !sys().Before(minPlausible)}
}

// Now returns the corrected time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.sys().Add(c.offset).UnixNano()
	if t < c.last {
		t = c.last
	}
	c.last = t
	return time.Unix(0, t).UTC()
}

// Flags marks readings taken before the clock was trusted.
func (c *clock) Flags(int64) sensors.Flags {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trusted {
		return 0
	}
	return sensors.ClockUntrusted
}

// OnFix takes a valid GNSS time: local is the time this clock's Now gave
// when the sentence arrived. A skew beyond maxSkew is corrected.
func (c *clock) OnFix(fix sensors.GNSSFix, local int64) {
	if !fix.Valid {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	skew := time.Duration(fix.UnixNano - local)
	if skew > maxSkew || skew < -maxSkew {
		c.offset += skew
		c.jumps++
	}
	c.trusted = true
}

// Trusted reports whether the clock has been confirmed.
func (c *clock) Trusted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trusted
}
