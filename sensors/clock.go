package sensors

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock defaults.
const (
	// DefaultClockMaxSkew is how far GNSS time may differ from the clock
	// before the clock is corrected (sentence latency is well below it).
	DefaultClockMaxSkew = 2 * time.Second
	// DefaultClockConfirmations is how many consecutive GNSS fixes must
	// agree on a correction before it is applied, so one bad fix cannot
	// move the clock.
	DefaultClockConfirmations = 3
	// DefaultClockTrustedConfirmations is how many consecutive fixes must
	// agree before a trusted clock is corrected: a monotonic clock that was
	// right drifts by parts per million, so a sudden disagreement is far
	// more likely a receiver fault than a clock error.
	DefaultClockTrustedConfirmations = 300
)

// minGNSSYear rejects GNSS times from receivers that have not yet decoded
// the almanac or suffer a week-number rollover.
const minGNSSYear = 2020

// ClockConfig configures a Clock.
type ClockConfig struct {
	// Now is the system clock; default time.Now. Its monotonic reading is
	// used, so steps of the system clock do not move readings' times.
	Now func() time.Time
	// Trusted says the system clock is known to be right at start (for
	// example NTP-synchronised); otherwise readings carry ClockUntrusted
	// until GNSS time confirms or corrects the clock.
	Trusted bool
	// MaxSkew: default DefaultClockMaxSkew.
	MaxSkew time.Duration
	// Confirmations is needed to correct an untrusted clock; default
	// DefaultClockConfirmations.
	Confirmations int
	// TrustedConfirmations is needed to correct a trusted clock; default
	// DefaultClockTrustedConfirmations.
	TrustedConfirmations int
}

// ClockStats counts a Clock's corrections.
type ClockStats struct {
	Corrections  uint64 // corrections applied from GNSS time
	Rejected     uint64 // GNSS fixes ignored as implausible (year < 2020)
	Unconfirmed  uint64 // fixes that disagreed but were not (yet) confirmed
	HeldBack     uint64 // stamps held so time would not run backwards
	Trusted      bool   // the clock is trusted now
	OffsetMillis int64  // current correction, ms
}

// Clock stamps readings with UTC time for one gateway: a monotonic clock,
// corrected by GNSS time when the receiver has a fix, that never runs
// backwards, so a clock jump cannot reorder readings. Use Now as the
// sources' Now, Flags as their Flags and OnFix as NMEASource.OnFix. Safe
// for concurrent use.
type Clock struct {
	now             func() time.Time
	base            time.Time
	maxSkew         int64
	confirms        int
	trustedConfirms int

	mu        sync.Mutex
	offset    int64
	trusted   bool
	last      int64
	held      bool
	candidate int64
	agreeing  int

	corrections, rejected, unconfirmed, heldBack atomic.Uint64
}

// NewClock returns a clock; cfg's zero values take the defaults.
func NewClock(cfg ClockConfig) *Clock {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultClockMaxSkew
	}
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = DefaultClockConfirmations
	}
	if cfg.TrustedConfirmations <= 0 {
		cfg.TrustedConfirmations = DefaultClockTrustedConfirmations
	}
	return &Clock{
		now: cfg.Now, base: cfg.Now(), maxSkew: int64(cfg.MaxSkew), trusted: cfg.Trusted,
		confirms: cfg.Confirmations, trustedConfirms: cfg.TrustedConfirmations,
	}
}

// Now returns the corrected time. Successive calls never go backwards.
func (c *Clock) Now() time.Time {
	raw := c.raw()
	c.mu.Lock()
	t := raw + c.offset
	c.held = t < c.last
	if c.held {
		t = c.last
		c.heldBack.Add(1)
	}
	c.last = t
	c.mu.Unlock()
	return time.Unix(0, t).UTC()
}

// raw is the monotonic clock, Unix ns, before GNSS correction.
func (c *Clock) raw() int64 { return c.base.UnixNano() + int64(c.now().Sub(c.base)) }

// Flags returns ClockUntrusted while the clock is not confirmed, or while
// it holds time back after a backward correction.
func (c *Clock) Flags(int64) Flags {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted || c.held {
		return ClockUntrusted
	}
	return 0
}

// OnFix takes a GNSS UTC time and the clock's stamp (local, Unix ns) of
// the sentence that carried it. Agreement within MaxSkew trusts the clock;
// a disagreement confirmed by Confirmations consecutive fixes (or
// TrustedConfirmations once the clock is trusted) corrects it.
func (c *Clock) OnFix(fix GNSSFix, local int64) {
	if !fix.Valid || time.Unix(0, fix.UnixNano).UTC().Year() < minGNSSYear {
		c.rejected.Add(1)
		return
	}
	raw := c.raw()
	c.mu.Lock()
	defer c.mu.Unlock()
	// While stamps are held back after a backward correction, local is
	// ahead of the corrected clock by the hold; compare with the latter.
	if hold := c.last - (raw + c.offset); hold > 0 {
		local -= hold
	}
	diff := fix.UnixNano - local
	if abs64(diff) <= c.maxSkew {
		c.trusted = true
		c.agreeing = 0
		return
	}
	if c.agreeing > 0 && abs64(diff-c.candidate) <= c.maxSkew {
		c.agreeing++
	} else {
		c.candidate, c.agreeing = diff, 1
	}
	need := c.confirms
	if c.trusted {
		need = c.trustedConfirms
	}
	if c.agreeing < need {
		c.unconfirmed.Add(1)
		return
	}
	c.offset += diff
	c.trusted = true
	c.agreeing = 0
	c.corrections.Add(1)
}

// Stats returns a snapshot of the clock's counters.
func (c *Clock) Stats() ClockStats {
	c.mu.Lock()
	trusted, off := c.trusted, c.offset
	c.mu.Unlock()
	return ClockStats{
		Corrections: c.corrections.Load(), Rejected: c.rejected.Load(), Unconfirmed: c.unconfirmed.Load(),
		HeldBack: c.heldBack.Load(), Trusted: trusted, OffsetMillis: off / 1e6,
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
