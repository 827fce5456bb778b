package detect

import (
	"math"
	"time"
)

// shift folds the reading x (at t, standing for cover ns) into the level
// statistics of SignalConfig.ShiftZ and flags, for this reading, a recent
// mean further than ShiftZ long-term standard deviations from the
// long-term mean. It is judged before x joins the long-term statistics,
// so the shift is measured against what came before. One alert per
// episode: nothing is flagged beside or within Rearm of another flag.
func (s *series) shift(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	st.ShiftOn = false
	if st.N == 1 {
		st.ShiftT0, st.ShiftMu, st.ShiftVar, st.ShiftRecent = t, x, 0, x
		return
	}
	age := t - st.ShiftT0
	if age <= 0 || cover <= 0 {
		return
	}
	st.ShiftRecent += float64(ewWeight(cover, c.ShiftShort) * (x - st.ShiftRecent))
	sd := math.Sqrt(st.ShiftVar)
	quiet := st.DevOn || st.VolOn || t < st.RearmUntil || t < st.VolRearmUntil || t < st.ShiftRearmUntil
	if !quiet && age >= int64(c.Warmup) && sd > 0 && math.Abs(st.ShiftRecent-st.ShiftMu) > float64(c.ShiftZ*sd) {
		st.ShiftOn = true
		st.ShiftRearmUntil = t + int64(c.Rearm)
	}
	// The long-term weight: cover/ShiftLong, or the plain mean's
	// cover/age while the signal is younger than that (no bias towards
	// the first reading).
	w := math.Max(ewWeight(cover, c.ShiftLong), float64(cover)/float64(age))
	d := x - st.ShiftMu
	st.ShiftMu += float64(w * d)
	st.ShiftVar = float64((1 - w) * float64(st.ShiftVar+float64(w*float64(d*d))))
}

// ewWeight is the weight 1 - exp(-dt/tau) of a reading standing for dt in
// an exponentially weighted mean with time constant tau, so that the mean
// is the same whatever the sampling rate. exp is computed here, as
// (1 + y/1024)^-1024 (relative error below y²/2048), with multiplications
// only: math.Exp has per-architecture implementations, and the gateway and
// the cloud must decide identically.
func ewWeight(dt int64, tau time.Duration) float64 {
	y := float64(dt) / float64(tau)
	if y > 700 {
		return 1
	}
	p := 1 + float64(y/1024) // float64(): no fused multiply-add
	for range 10 {
		p *= p
	}
	return 1 - 1/p
}
