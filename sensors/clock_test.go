package sensors

import (
	"testing"
	"time"
)

// fakeNow is a settable system clock without a monotonic reading.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time       { return f.t }
func (f *fakeNow) add(d time.Duration)  { f.t = f.t.Add(d) }
func fix(t time.Time) GNSSFix           { return GNSSFix{Valid: true, UnixNano: t.UnixNano()} }
func (f *fakeNow) stamp(c *Clock) int64 { return c.Now().UnixNano() }
func mustIncrease(t *testing.T, a, b int64) {
	t.Helper()
	if b < a {
		t.Fatalf("time went backwards: %d then %d", a, b)
	}
}

func TestClockTrustFromAgreeingFix(t *testing.T) {
	real := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	sys := &fakeNow{t: real}
	c := NewClock(ClockConfig{Now: sys.now})
	if c.Flags(0) != ClockUntrusted {
		t.Fatal("a fresh clock must be untrusted")
	}
	local := sys.stamp(c)
	c.OnFix(fix(real.Add(-300*time.Millisecond)), local) // fix is a little older than its arrival
	if c.Flags(0) != 0 || c.Stats().Corrections != 0 {
		t.Fatalf("agreeing fix: flags %v stats %+v", c.Flags(0), c.Stats())
	}
}

func TestClockCorrectsRTCAfterConfirmations(t *testing.T) {
	real := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	sys := &fakeNow{t: real.Add(-time.Hour)} // RTC an hour behind
	c := NewClock(ClockConfig{Now: sys.now})
	var prev int64
	for i := 0; i < 3; i++ {
		local := sys.stamp(c)
		mustIncrease(t, prev, local)
		prev = local
		c.OnFix(fix(real), local)
		if i < 2 && c.Stats().Corrections != 0 {
			t.Fatalf("corrected after %d fixes", i+1)
		}
		sys.add(time.Second)
		real = real.Add(time.Second)
	}
	s := c.Stats()
	if s.Corrections != 1 || !s.Trusted || s.OffsetMillis < 3599000 || s.OffsetMillis > 3601000 {
		t.Fatalf("stats %+v, want one +1h correction", s)
	}
	if got := c.Now(); got.Sub(real) > time.Second || real.Sub(got) > time.Second {
		t.Fatalf("clock %v, real %v", got, real)
	}
}

func TestClockIgnoresGNSSGlitchAndRollover(t *testing.T) {
	real := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	sys := &fakeNow{t: real}
	c := NewClock(ClockConfig{Now: sys.now, Trusted: true})
	c.OnFix(fix(real.Add(-time.Hour)), sys.stamp(c)) // one bad fix
	sys.add(time.Second)
	real = real.Add(time.Second)
	c.OnFix(fix(real), sys.stamp(c)) // back to normal
	c.OnFix(fix(time.Date(2006, 4, 1, 0, 0, 0, 0, time.UTC)), sys.stamp(c))
	if s := c.Stats(); s.Corrections != 0 || s.Rejected != 1 || s.Unconfirmed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClockNeverRunsBackwards(t *testing.T) {
	real := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	sys := &fakeNow{t: real.Add(10 * time.Second)} // RTC 10 s ahead
	c := NewClock(ClockConfig{Now: sys.now, Trusted: true, TrustedConfirmations: 3})
	var stamps []int64
	for i := 0; i < 20; i++ {
		local := sys.stamp(c)
		stamps = append(stamps, local)
		c.OnFix(fix(real), local) // after 3 fixes: -10 s correction
		sys.add(time.Second)
		real = real.Add(time.Second)
	}
	// A system clock step backwards does not move stamps either.
	sys.add(-time.Minute)
	stamps = append(stamps, sys.stamp(c))
	for i := 1; i < len(stamps); i++ {
		mustIncrease(t, stamps[i-1], stamps[i])
	}
	s := c.Stats()
	if s.Corrections != 1 || s.HeldBack == 0 {
		t.Fatalf("stats %+v, want one correction and held stamps", s)
	}
}

func TestClockTrustedIgnoresSustainedGNSSJump(t *testing.T) {
	real := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	sys := &fakeNow{t: real}
	c := NewClock(ClockConfig{Now: sys.now})
	c.OnFix(fix(real), sys.stamp(c)) // agrees: trusted
	for i := 0; i < 60; i++ {        // receiver reports an hour off for a minute
		sys.add(time.Second)
		real = real.Add(time.Second)
		c.OnFix(fix(real.Add(-time.Hour)), sys.stamp(c))
	}
	if s := c.Stats(); s.Corrections != 0 || !s.Trusted || s.Unconfirmed != 60 {
		t.Fatalf("stats %+v", s)
	}
	if got := c.Now(); !got.Equal(real) {
		t.Fatalf("clock %v, want %v", got, real)
	}
}
