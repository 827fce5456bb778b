package gateway

import (
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

func TestClock(t *testing.T) {
	boot := time.Date(1970, 1, 1, 0, 1, 0, 0, time.UTC)
	real := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		sys         time.Time
		fix         *time.Time // GNSS time at sys, nil for none
		after       time.Duration
		wantTrusted bool
		wantNow     time.Time
	}{
		{name: "set system clock is trusted", sys: real, after: time.Second, wantTrusted: true, wantNow: real.Add(time.Second)},
		{name: "unset clock is untrusted until GNSS", sys: boot, after: time.Second, wantTrusted: false, wantNow: boot.Add(time.Second)},
		{name: "GNSS corrects an unset clock", sys: boot, fix: &real, after: time.Second, wantTrusted: true, wantNow: real.Add(time.Second)},
		{name: "small skew is left alone", sys: real, fix: ptr(real.Add(time.Second)), after: 0, wantTrusted: true, wantNow: real},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.sys
			c := newClock(func() time.Time { return now })
			if tt.fix != nil {
				c.OnFix(sensors.GNSSFix{Valid: true, UnixNano: tt.fix.UnixNano()}, now.UnixNano())
			}
			now = now.Add(tt.after)
			if got := c.Now(); !got.Equal(tt.wantNow) {
				t.Errorf("Now = %v, want %v", got, tt.wantNow)
			}
			if c.Trusted() != tt.wantTrusted {
				t.Errorf("trusted = %v, want %v", c.Trusted(), tt.wantTrusted)
			}
			wantFlags := sensors.Flags(0)
			if !tt.wantTrusted {
				wantFlags = sensors.ClockUntrusted
			}
			if f := c.Flags(0); f != wantFlags {
				t.Errorf("flags = %v, want %v", f, wantFlags)
			}
		})
	}
}

// A backward correction must not make time run backwards: readings keep
// their order in time.
func TestClockNeverRunsBackwards(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := newClock(func() time.Time { return now })
	first := c.Now()
	c.OnFix(sensors.GNSSFix{Valid: true, UnixNano: now.Add(-time.Minute).UnixNano()}, now.UnixNano())
	now = now.Add(time.Second)
	if got := c.Now(); got.Before(first) {
		t.Fatalf("time ran backwards: %v after %v", got, first)
	}
	now = now.Add(2 * time.Minute)
	if got, want := c.Now(), now.Add(-time.Minute); !got.Equal(want) {
		t.Fatalf("after catching up Now = %v, want %v", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
