package detect

import (
	"math"
	"time"
)

// Capacities of the fixed rings in a series' state (Observe never
// allocates): the rate-of-rise ring stores a sample at most every
// RiseWindow/16, the warm-up at most every window/48 (and 64 at most), the
// level ring one bucket every Settle/16.
const (
	riseCap = 32
	warmCap = 64
	lvlCap  = 20
	curvCap = 16
)

// Settling rises (SignalConfig.EaseSettling): the curve ring holds the
// means of curvBucket each; the newest curvCap-1 complete buckets, in
// thirds, give the rises d1 (older) and d2 (newer) of one third each. A
// rise of at least easeRise per third that slows to easeSlow of it eases
// the threshold, when it slowed by easeCurve at least (four times the
// noise of d2 - d1 for a 0.1 °C probe: a steady fire never passes) twice in
// a row; one of at least easeRise that keeps easeKeep of it (or speeds
// up) ends the ease.
const (
	curvBucket = int64(15 * time.Second)
	easeRise   = 0.2
	easeCurve  = 0.08
	easeSlow   = 0.93
	easeKeep   = 0.97
)

// meanTau is the time constant of the band's running mean.
const meanTau = 100 * time.Second

// despikeSpan is how long readings beyond the margin must last (with at
// least two of them) before Despike believes them.
const despikeSpan = time.Second

// run tracks one condition's consecutive readings (the sustain count).
//
// The condition is sustained when its readings span Sustain: from the
// time the first one stands for (since the reading before it) to the last.
// A run survives short dips: it restarts only after MinReadings readings
// in a row, spanning the sustain period, without the condition, so that a
// slowly rising value that jitters around a threshold (noise, 1 °C
// quantisation) is still caught. (Glitches are removed before by
// SignalConfig.Despike.)
type run struct {
	First int64 // time of the first reading that showed the condition
	Cover int64 // ns the first reading stands for
	Count int64 // readings that showed it
	Dips  int64 // consecutive readings without it
	Last  int64 // time of the last reading that showed it
}

func (r *run) add(t, cover int64) {
	if r.Count == 0 {
		r.First, r.Cover = t, cover
	}
	r.Count++
	r.Dips = 0
	r.Last = t
}

// dip notes a reading without the condition; it reports whether the run
// is over.
func (r *run) dip(c *SignalConfig, t int64) bool {
	if r.Count == 0 {
		return true
	}
	r.Dips++
	if r.Dips >= int64(c.MinReadings) && t-r.Last >= int64(c.Sustain) {
		*r = run{}
		return true
	}
	return false
}

func (r *run) reset() { *r = run{} }

func (r *run) sustained(c *SignalConfig) bool {
	return r.Count >= int64(c.MinReadings) && r.Cover+(r.Last-r.First) >= int64(c.Sustain)
}

type sample struct {
	T int64
	X float64
}

// bucket is one slot of the level ring: the readings of Settle/16.
type bucket struct {
	T      int64 // time of its first reading
	Sum    float64
	N      int64
	Lo, Hi float64
}

// seriesState is every field of a series' learned state. It holds only
// fixed-size values so that it can be copied, compared and encoded as is.
type seriesState struct {
	Has     bool  // a reading was seen
	LastT   int64 // time of the last accepted reading
	PrevGap int64 // gap before the last reading
	LastX   float64
	N       int64 // readings accepted
	Bad     int64 // readings rejected (NaN, infinite, out of order)

	// Despike: the last believed value, and a candidate jump away from it
	// (readings so far, time and value of its first).
	Ref      float64
	RefOK    bool
	SpikeN   int64
	SpikeT   int64
	SpikeX   float64
	JumpFrom int64 // set for the reading that confirmed a jump: its first reading's time

	// Learned normal band.
	Warm      [warmCap]sample
	NWarm     int64
	Ready     bool
	ColdStart bool // a reading below IgnoreBelow came before the band was ready
	Lo, Hi    float64
	Mean      float64
	// Pending excursions above and below the band (LearnOnReturn): open
	// or not, how far each reached and the time its readings cover.
	PendUp, PendDown         bool
	PendHi, PendLo           float64
	PendHiCover, PendLoCover int64
	// Where the signal came back to when it last returned from above.
	Trough   float64
	TroughOK bool
	// Level ring (Settle) and what it last said: whether the level has
	// stopped moving, and its range.
	Lvl          [lvlCap]bucket
	LHead, LLen  int64
	Settled      bool
	SetLo, SetHi float64

	// Settling rise: the curve ring, whether the threshold above is eased
	// and to where.
	Curv        [curvCap]bucket
	CHead, CLen int64
	Eased       bool
	EaseHi      float64
	Slowing     int64 // consecutive judgements that saw it slow

	// Conditions: pending runs and whether each is active.
	Dev, Warn, Crit, Rise, Stuck run
	DevOn, WarnOn, CritOn        bool
	Held                         bool // DevOn was set by hold
	RiseOn, StuckOn, MissOn      bool
	RearmUntil                   int64

	// Rate of rise: a ring of buckets of despiked readings, RiseWindow/16
	// each.
	Ring  [riseCap]bucket
	RHead int64 // index of the oldest bucket
	RLen  int64

	// Stuck: the value of the current constant run (a run survives
	// MinReadings differing readings spanning less than Sustain: a
	// garbage frame does not unfreeze a frozen sensor), its dips, the
	// longest run of the recent history in normal operation (decaying by
	// an eighth of each later run) and how many runs that history has.
	StuckX    float64
	StuckDips int64
	StuckDipT int64 // time of the first differing reading
	StuckCov  int64 // the time the run's readings cover (Sustain's cover)
	// The run a single differing reading just broke: it goes on if the
	// next reading returns to its value.
	Broke    run
	BrokeX   float64
	BrokeCov int64
	BrokeOK  bool
	RunMax   int64
	Runs     int64
	HistT    int64 // time of the history's first run end
	// The related signal (engine oil temperature for coolant): its last
	// reading and time, and the learned normal offset oil - coolant
	// (a mean over offTau, learned while the value moves).
	CtxOK bool
	Ctx   float64
	CtxT  int64
	Off   float64
	// Implausible: the value far below what the related signal says
	// (coolant reading air after coolant loss while oil climbs).
	Impl   run
	ImplOn bool
	// Coupled: frozen while the related signal rose (sustained).
	Coup   run
	CoupOn bool

	// Engine state, set by the Detector: off (no missing data, heat
	// soak), when it last started, and until when the restart's heat soak
	// lasts.
	EngOff    bool
	EngOnT    int64
	SoakUntil int64

	// Volatility: an exponentially weighted mean of |reading - previous|
	// and the envelope of its values.
	VolN          int64 // values of V so far
	V, VLo, VHi   float64
	VolOn         bool
	VolRearmUntil int64

	// Shift (generic class): the first reading's time, the long-term
	// mean and variance, the recent mean, and whether the reading
	// flagged a shift.
	ShiftT0                        int64
	ShiftMu, ShiftVar, ShiftRecent float64
	ShiftOn                        bool
	ShiftRearmUntil                int64

	// The open alert: its kind and severity (the most urgent condition),
	// every active condition, and its start.
	Open   bool
	Kind   Kind
	Sev    Severity
	Active Kinds
	Start  int64
}

// series is the detector of one signal.
type series struct {
	st seriesState
}

// Band is the learned normal band of one signal, for display. Low and High
// are the edges of what the detector has learned as normal; Margin is how
// far outside them a reading must be to count as away from normal. Ready
// is false (and the floats NaN) while the detector is still warming up.
type Band struct {
	Ready           bool
	Low, High, Mean float64
	Margin          float64
	Readings        int64 // readings accepted so far
	Rejected        int64 // readings rejected (NaN, infinite, out of order)
	LastTime        int64 // time of the last accepted reading, 0 if none
	Open            bool  // an alert is open
	Kind            Kind  // its most urgent condition
	Severity        Severity
	Active          Kinds // every condition active now
	Start           int64 // the open alert's Start
}

func (s *series) band(c *SignalConfig) Band {
	st := &s.st
	b := Band{Readings: st.N, Rejected: st.Bad, Open: st.Open, Kind: st.Kind, Severity: st.Sev, Active: st.Active, Start: st.Start}
	if st.Has {
		b.LastTime = st.LastT
	}
	if !st.Ready {
		nan := math.NaN()
		b.Low, b.High, b.Mean, b.Margin = nan, nan, nan, nan
		return b
	}
	b.Ready, b.Low, b.High, b.Mean, b.Margin = true, st.Lo, st.Hi, st.Mean, s.margin(c)
	return b
}

// margin is how far beyond the band a reading is away from normal.
func (s *series) margin(c *SignalConfig) float64 {
	st := &s.st
	m := math.Max(c.MinMargin, float64(c.MarginFrac*(st.Hi-st.Lo)))
	if c.NoiseMargin > 0 && st.VolN > 1 {
		m = math.Max(m, float64(c.NoiseMargin*st.V))
	}
	return m
}

// baseline is the learned normal reported in transitions: the band's
// middle, NaN while warming up.
func (s *series) baseline() float64 {
	if !s.st.Ready {
		return math.NaN()
	}
	return float64(s.st.Lo+s.st.Hi) / 2
}

// event is what one step of a series decided.
type event struct {
	phase  Phase
	kind   Kind
	sev    Severity
	start  int64
	active Kinds
}

// observe folds one reading in. It returns the transition of the signal's
// alert, if any. It never allocates.
func (s *series) observe(c *SignalConfig, t int64, x float64) (event, bool) {
	st := &s.st
	if !finite(x) || (st.Has && t < st.LastT) {
		st.Bad++
		return event{}, false
	}
	var cover int64
	if st.Has {
		gap := t - st.LastT
		cover = gap
		if st.PrevGap > 0 && st.PrevGap < cover {
			cover = st.PrevGap
		}
		if c.MissingAfter > 0 && gap > int64(c.MissingAfter) {
			// A long gap: what came before no longer counts towards
			// sustain, and rates and levels start afresh.
			st.Dev.reset()
			st.Warn.reset()
			st.Crit.reset()
			st.Rise.reset()
			st.RLen, st.LLen, st.Settled, st.SpikeN = 0, 0, false, 0
			st.CLen, st.Eased = 0, false
		}
		st.PrevGap = gap
	}
	if c.VolatilityAlpha > 0 && st.Has {
		s.volatility(c, t, math.Abs(x-st.LastX))
	}
	st.Has, st.LastT, st.LastX = true, t, x
	st.N++
	st.MissOn = false

	judged := s.despike(c, t, x)
	s.frozen(c, t, judged, cover) // a glitch or garbage frame breaks no run
	s.limits(c, t, judged, cover)
	s.deviation(c, t, judged, cover)
	if c.ShiftZ > 0 {
		s.shift(c, t, judged, cover)
	}
	s.rise(c, t, judged, cover)
	s.hold(c, t, judged)
	s.stuck(c, t, judged, cover)
	return s.settle(t)
}

// despike returns the value to judge the reading x by: x, or the last
// believed value while x is a candidate glitch (see SignalConfig.Despike).
func (s *series) despike(c *SignalConfig, t int64, x float64) float64 {
	st := &s.st
	st.JumpFrom = 0
	if !c.Despike || !st.RefOK {
		st.Ref, st.RefOK = x, true
		return x
	}
	d := c.MinMargin
	if st.Ready {
		d = s.margin(c)
	}
	if math.Abs(x-st.Ref) <= d {
		st.Ref, st.SpikeN = x, 0
		return x
	}
	if st.SpikeN > 0 && (x > st.Ref) == (st.SpikeX > st.Ref) {
		st.SpikeN++
	} else {
		st.SpikeN, st.SpikeT, st.SpikeX = 1, t, x
	}
	if st.SpikeN >= 2 && t-st.SpikeT >= int64(despikeSpan) {
		st.Ref, st.SpikeN, st.JumpFrom = x, 0, st.SpikeT
		return x
	}
	return st.Ref
}

// from is when a condition shown by the current reading began: the first
// reading of a jump Despike has just confirmed, else t.
func (s *series) from(t int64) int64 {
	if s.st.JumpFrom != 0 {
		return s.st.JumpFrom
	}
	return t
}

func (s *series) limits(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	h := c.LimitHysteresis
	crit := !math.IsNaN(c.CritHigh) && (x > c.CritHigh || (st.CritOn && x > c.CritHigh-h))
	warn := crit ||
		(!math.IsNaN(c.WarnHigh) && (x > c.WarnHigh || (st.WarnOn && x > c.WarnHigh-h))) ||
		(!math.IsNaN(c.WarnLow) && (x < c.WarnLow || (st.WarnOn && x < c.WarnLow+h)))
	stepFrom(c, &st.Crit, &st.CritOn, crit, t, s.from(t), cover)
	stepFrom(c, &st.Warn, &st.WarnOn, warn, t, s.from(t), cover)
}

// pastLimit reports whether anything in [lo, hi] is beyond a limit: it is
// never learned as normal.
func pastLimit(c *SignalConfig, lo, hi float64) bool {
	return hi > c.WarnHigh || hi > c.CritHigh || lo < c.WarnLow // false for NaN limits
}

// step advances a condition's run; it turns on when sustained and off as
// soon as the condition is gone.
func step(c *SignalConfig, r *run, on *bool, cond bool, t, cover int64) {
	stepFrom(c, r, on, cond, t, t, cover)
}

// stepFrom is step for a condition whose first reading may be earlier
// than t (a jump Despike confirmed late): start is that reading's time.
func stepFrom(c *SignalConfig, r *run, on *bool, cond bool, t, start, cover int64) {
	if !cond {
		if *on {
			r.reset() // an open condition clears at once (hysteresis is in the threshold)
		} else {
			r.dip(c, t)
		}
		*on = false
		return
	}
	if r.Count == 0 && start < t {
		r.add(start, cover) // the earlier raw reading showed it too
	}
	r.add(t, cover)
	if r.sustained(c) {
		*on = true
	}
}

func (s *series) ignored(c *SignalConfig, x float64) bool {
	return !math.IsNaN(c.IgnoreBelow) && x < c.IgnoreBelow
}

// soaking reports whether a reading at t is in the engine's heat soak.
func (s *series) soaking(c *SignalConfig, t int64) bool {
	return c.HeatSoak > 0 && (s.st.EngOff || t < s.st.SoakUntil)
}

func (s *series) deviation(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	if s.ignored(c, x) {
		step(c, &st.Dev, &st.DevOn, false, t, cover)
		s.dropPending()
		st.LLen, st.Settled = 0, false
		if !st.Ready {
			// Cold: the warm-up starts again with the next warm reading.
			st.ColdStart = true
			st.NWarm = 0
		}
		return
	}
	if s.soaking(c, t) {
		// Heat soak: no level to learn from either.
		step(c, &st.Dev, &st.DevOn, false, t, cover)
		s.dropPending()
		st.LLen, st.Settled = 0, false
		return
	}
	s.level(c, t, x)
	if !st.Ready {
		s.warmUp(c, t, x, cover)
		return
	}
	s.curve(c, t, x)
	if st.DevOn && c.OnsetOnly {
		// The onset was flagged by the previous reading; from here the
		// rearm period learns whatever comes.
		st.Dev.reset()
		st.DevOn = false
		st.RearmUntil = t + int64(c.Rearm)
	}
	m := s.margin(c)
	up, down := st.Hi+m, st.Lo-m
	if st.Eased && !st.DevOn {
		up = math.Max(up, st.EaseHi)
	}
	switch {
	case st.DevOn && st.Held:
		// Held from a limit or rise: until back inside (within a 100th of
		// the margin: a value at the band's edge is back, though learning
		// left the edge a rounding error beyond it).
		tol := s.heldTol(c)
		up, down = st.Hi+tol, st.Lo-tol
	case st.DevOn:
		h := float64(c.Hysteresis * m)
		up, down = up-h, down+h
	}
	away := x > up || x < down
	if st.DevOn && st.Held && !away {
		// A held deviation ends only once the value has been back for
		// the sustain period: one reading inside (noise, a glitch within
		// the margin) does not end a hazard.
		if !st.Dev.dip(c, t) {
			return
		}
		st.DevOn, st.Held = false, false
	}
	if away && !st.DevOn && (t < st.RearmUntil || (t < st.VolRearmUntil && !st.VolOn)) {
		// Just after a deviation cleared, or after an earlier reading's
		// volatility flag (one alert per episode; VolRearmUntil is set
		// only by the generic class's volatility): learn instead of
		// raising again.
		s.absorb(x, x)
		away = false
	}
	wasOn := st.DevOn
	stepFrom(c, &st.Dev, &st.DevOn, away, t, s.from(t), cover)
	if !st.DevOn {
		st.Held = false
	}
	if st.DevOn && !wasOn {
		s.dropPending() // the excursion was not normal after all
	}
	switch {
	case !away:
		if wasOn {
			st.RearmUntil = t + int64(c.Rearm)
		}
		if !st.Open && !pastLimit(c, x, x) {
			s.learn(c, x, cover)
		}
	case st.DevOn && c.OnsetOnly:
		s.absorb(x, x)
	case st.DevOn && c.AdaptAfter > 0 && t-st.Dev.First >= int64(c.AdaptAfter) &&
		st.Settled && !pastLimit(c, st.SetLo, st.SetHi) && !st.WarnOn && !st.CritOn:
		// A lasting change that has stopped moving: the new normal.
		s.absorb(st.SetLo, st.SetHi)
		st.Dev.reset()
		st.DevOn = false
		st.RearmUntil = t + int64(c.Rearm)
	}
}

// level folds x into the level ring and, once per bucket, judges whether
// the level has stopped moving over Settle.
func (s *series) level(c *SignalConfig, t int64, x float64) {
	st := &s.st
	if c.Settle <= 0 {
		return
	}
	w := int64(c.Settle) / 16
	if st.LLen > 0 {
		if b := &st.Lvl[(st.LHead+st.LLen-1)%lvlCap]; t-b.T < w {
			b.Sum += x
			b.N++
			b.Lo, b.Hi = math.Min(b.Lo, x), math.Max(b.Hi, x)
			return
		}
	}
	// A new bucket: judge the completed ones first.
	for st.LLen > 0 && t-st.Lvl[st.LHead].T > int64(c.Settle) {
		st.LHead = (st.LHead + 1) % lvlCap
		st.LLen--
	}
	st.Settled = false
	if n := st.LLen; n >= 9 && t-st.Lvl[st.LHead].T >= int64(c.Settle)-w {
		// The level is the older two thirds' range: what the newest
		// third adds may be the start of a trend.
		k := n / 3
		var a, b float64
		var na, nb int64
		lo, hi := math.Inf(1), math.Inf(-1)
		nlo, nhi := math.Inf(1), math.Inf(-1)
		for i := int64(0); i < n; i++ {
			bk := &st.Lvl[(st.LHead+i)%lvlCap]
			if i < n-k {
				lo, hi = math.Min(lo, bk.Lo), math.Max(hi, bk.Hi)
			} else {
				nlo, nhi = math.Min(nlo, bk.Lo), math.Max(nhi, bk.Hi)
			}
			if i < k {
				a += bk.Sum
				na += bk.N
			}
			if i >= n-k {
				b += bk.Sum
				nb += bk.N
			}
		}
		// Stopped moving: the thirds' means agree, and the newest third
		// reaches no new high (the start of a climb would: the hazards
		// are heat) and no new low by more than half the tolerance.
		up, down := float64(c.SettleTol/8), float64(c.SettleTol/2)
		if math.Abs(b/float64(nb)-a/float64(na)) <= c.SettleTol && nhi <= hi+up && nlo >= lo-down {
			st.Settled, st.SetLo, st.SetHi = true, lo, hi
		}
	}
	if st.LLen == lvlCap {
		st.LHead = (st.LHead + 1) % lvlCap
		st.LLen--
	}
	st.Lvl[(st.LHead+st.LLen)%lvlCap] = bucket{T: t, Sum: x, N: 1, Lo: x, Hi: x}
	st.LLen++
}

// curve folds x into the curve ring and, once per bucket, judges whether
// a rise above the band is settling (EaseSettling): while its rate falls,
// the threshold above trails it by the margin; a rise that holds its rate
// or speeds up ends that at once, and so does the band catching up.
func (s *series) curve(c *SignalConfig, t int64, x float64) {
	st := &s.st
	if !c.EaseSettling {
		return
	}
	m := s.margin(c)
	if st.Eased && (st.DevOn || st.Open || st.Hi+m >= st.EaseHi) {
		st.Eased = false
	}
	if st.CLen > 0 {
		if b := &st.Curv[(st.CHead+st.CLen-1)%curvCap]; t-b.T < curvBucket {
			b.Sum += x
			b.N++
			b.Lo, b.Hi = math.Min(b.Lo, x), math.Max(b.Hi, x)
			return
		}
	}
	if st.CLen == curvCap {
		st.CHead = (st.CHead + 1) % curvCap
		st.CLen--
	}
	if n := st.CLen; n == curvCap-1 && t-st.Curv[st.CHead].T <= int64(curvCap)*curvBucket {
		k := n / 3
		var mean [3]float64
		for j := int64(0); j < 3; j++ {
			var sum float64
			var cnt int64
			for i := j * k; i < (j+1)*k; i++ {
				b := &st.Curv[(st.CHead+i)%curvCap]
				sum += b.Sum
				cnt += b.N
			}
			mean[j] = sum / float64(cnt)
		}
		d1, d2 := mean[1]-mean[0], mean[2]-mean[1]
		newest := &st.Curv[(st.CHead+n-1)%curvCap]
		slowing := st.Slowing
		st.Slowing = 0
		switch {
		case d2 >= easeRise && d2 > float64(easeKeep*d1):
			st.Eased = false // a rise that does not slow: judged at once
		case d1 >= easeRise && d2 <= float64(easeSlow*d1) && d1-d2 >= easeCurve && !st.DevOn && !st.Open && newest.Hi > st.Hi:
			st.Slowing = slowing + 1
			if st.Slowing < 1 {
				break
			}
			if !st.Eased {
				st.EaseHi = st.Hi + m
			}
			st.Eased, st.EaseHi = true, math.Max(st.EaseHi, newest.Hi+m)
		}
	}
	st.Curv[(st.CHead+st.CLen)%curvCap] = bucket{T: t, Sum: x, N: 1, Lo: x, Hi: x}
	st.CLen++
}

// warmUp collects the first readings, spread over the warm-up window (or
// Settle after a cold start); once they span it, have stopped moving and
// are within the limits, the band is their robust range.
func (s *series) warmUp(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	win := int64(c.Warmup)
	if st.ColdStart && int64(c.Settle) > win {
		win = int64(c.Settle) // judge settling over a longer window
	}
	if st.NWarm == 0 || t-st.Warm[st.NWarm-1].T >= win/48 {
		if st.NWarm == warmCap {
			copy(st.Warm[:warmCap-1], st.Warm[1:])
			st.NWarm--
		}
		st.Warm[st.NWarm] = sample{t, x}
		st.NWarm++
	}
	// Slide: drop the oldest while the rest still span the window.
	drop := int64(0)
	for drop+1 < st.NWarm && t-st.Warm[drop+1].T+cover >= win {
		drop++
	}
	if drop > 0 {
		copy(st.Warm[:st.NWarm-drop], st.Warm[drop:st.NWarm])
		st.NWarm -= drop
	}
	n := st.NWarm
	if n < int64(max(3, c.MinReadings)) || t-st.Warm[0].T+cover < win {
		return
	}
	var v [warmCap]float64
	for i := range n {
		v[i] = st.Warm[i].X
	}
	sorted := v[:n]
	insertionSort(sorted)
	med := median(sorted)
	if pastLimit(c, med, med) {
		return
	}
	if c.SettleTol > 0 && n >= 6 {
		// Wait until the signal has settled: the medians of the window's
		// oldest and newest thirds within SettleTol.
		var a, b [warmCap]float64
		k := n / 3
		for i := range k {
			a[i], b[i] = st.Warm[i].X, st.Warm[n-k+i].X
		}
		insertionSort(a[:k])
		insertionSort(b[:k])
		if math.Abs(median(b[:k])-median(a[:k])) > c.SettleTol {
			return
		}
	}
	var mad [warmCap]float64
	for i, y := range sorted {
		mad[i] = math.Abs(y - med)
	}
	insertionSort(mad[:n])
	tol := math.Max(float64(5*1.4826*median(mad[:n])), c.MinMargin)
	lo, hi := med, med
	for _, y := range sorted {
		if math.Abs(y-med) <= tol && !pastLimit(c, y, y) {
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	st.Lo, st.Hi, st.Mean, st.Ready = lo, hi, med, true
}

func insertionSort(v []float64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return float64(sorted[n/2-1]+sorted[n/2]) / 2
}

// learn folds a normal reading (not away from normal, no alert open,
// within the limits) into the band.
func (s *series) learn(c *SignalConfig, x float64, cover int64) {
	st := &s.st
	growth := func(cover int64) float64 {
		if c.MaxGrowth > 0 {
			return float64(c.MaxGrowth * float64(float64(cover)/float64(time.Minute)))
		}
		return math.Inf(1)
	}
	switch {
	case x >= st.Lo && x <= st.Hi:
		// Back to the band's middle, or back inside it after falling
		// half the margin from the excursion's peak: what the
		// excursion beyond that edge reached was normal (a radiator fan
		// cycling 88 -> 95 -> 89, a thermostat swinging). A climb that
		// hovers at the edge, jittering by a quantum, has not come back.
		mid := float64(st.Lo+st.Hi) / 2
		fell := float64(s.margin(c) / 2)
		// A trend never passes: the trough must not be above the last
		// one (a ramp's noise dips come back higher each time).
		cycle := st.PendHi-x >= fell && (!st.TroughOK || x <= st.Trough+c.SettleTol)
		if st.PendUp && (x <= mid || cycle) {
			st.Trough, st.TroughOK = x, true
			st.Hi += math.Min(math.Max(st.PendHi-st.Hi, 0), growth(st.PendHiCover))
			st.PendUp, st.PendHi, st.PendHiCover = false, 0, 0
		}
		if st.PendDown && x >= mid {
			st.Lo -= math.Min(math.Max(st.Lo-st.PendLo, 0), growth(st.PendLoCover))
			st.PendDown, st.PendLo, st.PendLoCover = false, 0, 0
		}
	case !c.LearnOnReturn && x > st.Hi:
		st.Hi += math.Min(x-st.Hi, growth(cover))
	case !c.LearnOnReturn:
		st.Lo -= math.Min(st.Lo-x, growth(cover))
	case x > st.Hi:
		if !st.PendUp || x > st.PendHi {
			st.PendHi = x
		}
		st.PendUp = true
		st.PendHiCover += cover
	default:
		if !st.PendDown || x < st.PendLo {
			st.PendLo = x
		}
		st.PendDown = true
		st.PendLoCover += cover
	}
	if st.Settled && !pastLimit(c, st.SetLo, st.SetHi) {
		// A level the signal has held for Settle is normal, wherever it is.
		s.absorb(st.SetLo, st.SetHi)
	}
	minutes := float64(cover) / float64(time.Minute)
	st.Mean += float64(math.Min(1, float64(cover)/float64(meanTau)) * (x - st.Mean))
	st.Mean = math.Min(math.Max(st.Mean, st.Lo), st.Hi)
	k := math.Min(1, float64(c.Decay*minutes))
	st.Hi -= float64(k * (st.Hi - st.Mean))
	st.Lo += float64(k * (st.Mean - st.Lo))
}

// dropPending forgets the excursions not yet learned.
func (s *series) dropPending() {
	st := &s.st
	st.PendUp, st.PendDown, st.PendHi, st.PendLo, st.PendHiCover, st.PendLoCover = false, false, 0, 0, 0, 0
}

// absorb accepts [lo, hi] as normal: the band widens to include it.
func (s *series) absorb(lo, hi float64) {
	st := &s.st
	st.Hi, st.Lo = math.Max(st.Hi, hi), math.Min(st.Lo, lo)
}

// volatility folds in one reading-to-reading change d. Like an onset-only
// deviation, it is active for one reading when the smoothed variability
// leaves everything it has been, then not again for Rearm.
func (s *series) volatility(c *SignalConfig, t int64, d float64) {
	st := &s.st
	st.VolOn = false
	st.VolN++
	if st.VolN == 1 {
		st.V, st.VLo, st.VHi = d, d, d
		return
	}
	st.V += float64(c.VolatilityAlpha * (d - st.V))
	v := st.V
	m := float64(c.VolatilityMargin * (st.VHi - st.VLo))
	away := v > st.VHi+m || v < st.VLo-m
	switch {
	case t < st.VolRearmUntil || t < st.RearmUntil || st.DevOn:
		// One alert per episode: no volatility flag within Rearm of any
		// flag, nor beside a deviation.
	case away && c.VolatilityMargin > 0 && st.Ready && st.N >= int64(c.VolatilityWarmup):
		st.VolOn, st.VolRearmUntil = true, t+int64(c.Rearm)
	}
	st.VHi, st.VLo = math.Max(st.VHi, v), math.Min(st.VLo, v)
}

// rise judges x, the despiked reading, for a rise faster than MaxRise
// above the band. The rate is between the means of the oldest and newest
// quarter of the window's buckets, so that noise does not make a rate.
func (s *series) rise(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	if c.MaxRise <= 0 || s.ignored(c, x) || !st.Ready || s.soaking(c, t) {
		st.RLen = 0
		step(c, &st.Rise, &st.RiseOn, false, t, cover)
		return
	}
	win := int64(c.RiseWindow)
	w := win / 16
	if b := &st.Ring[(st.RHead+st.RLen-1+riseCap)%riseCap]; st.RLen > 0 && t-b.T < w {
		b.Sum += x
		b.N++
	} else {
		if st.RLen == riseCap {
			st.RHead = (st.RHead + 1) % riseCap
			st.RLen--
		}
		st.Ring[(st.RHead+st.RLen)%riseCap] = bucket{T: t, Sum: x, N: 1}
		st.RLen++
	}
	for st.RLen > 1 && t-st.Ring[st.RHead].T > win {
		st.RHead = (st.RHead + 1) % riseCap
		st.RLen--
	}
	rising := false
	if n := st.RLen; n >= 8 && t-st.Ring[st.RHead].T >= win/2 {
		k := n / 4
		var a, b, ta, tb float64
		var na, nb int64
		for i := int64(0); i < k; i++ {
			o, nw := &st.Ring[(st.RHead+i)%riseCap], &st.Ring[(st.RHead+n-k+i)%riseCap]
			a, na, ta = a+o.Sum, na+o.N, ta+float64(o.T-st.Ring[st.RHead].T)
			b, nb, tb = b+nw.Sum, nb+nw.N, tb+float64(nw.T-st.Ring[st.RHead].T)
		}
		newest := b / float64(nb)
		age := (tb - ta) / float64(k)
		perMin := (newest - a/float64(na)) / float64(age/float64(time.Minute))
		limit := c.MaxRise
		if st.RiseOn {
			limit /= 2
		}
		// Only a rise heading past the learned envelope counts: half the
		// margin above the band. Inside it, or just above its edge (a
		// radiator fan cycle the band has not learned yet, which then
		// falls back), the value follows load and fan, as normal.
		edge := st.Hi + float64(s.margin(c)/2)
		rising = perMin > limit && x > edge && (newest > edge || st.RiseOn)
	}

	step(c, &st.Rise, &st.RiseOn, rising, t, cover)
}

// hold keeps an open limit or rate-of-rise alert open, as a deviation,
// when its own condition ends but the value x has not come back inside the
// learned band: the hazard that raised it has not gone (a failed fan holds
// coolant around the warning limit after the rise that raised the alert).
// The deviation then clears as deviations do, within its hysteresis of
// the band, or when the value is back inside the band.
func (s *series) hold(c *SignalConfig, t int64, x float64) {
	st := &s.st
	if !st.Open || !st.Ready || st.DevOn || st.WarnOn || st.CritOn || st.RiseOn || c.OnsetOnly ||
		(st.Kind != KindLimit && st.Kind != KindRateOfRise) || s.ignored(c, x) || s.soaking(c, t) {
		return
	}
	if tol := s.heldTol(c); x > st.Hi+tol || x < st.Lo-tol {
		st.DevOn, st.Dev, st.Held = true, run{First: st.Start, Count: int64(c.MinReadings), Last: t}, true
		s.dropPending()
	}
}

// heldTol is how far outside the band a value may be and count as back
// inside for a held deviation (hold).
func (s *series) heldTol(c *SignalConfig) float64 { return float64(s.margin(c) / 100) }

// Stuck-sensor evidence (see SignalConfig.StuckAfter, StuckFast):
//   - stuckRatio: the signal's own history is evidence only when its
//     longest recent run is at most StuckAfter / stuckRatio;
//   - stuckHistory: that history must span this long and stuckRuns runs;
//   - offTau: the time constant of the learned oil - coolant offset,
//     and offPrior the least normal offset (oil runs 5-15 °C above
//     coolant when warm, below it while warming up);
//   - implausibleFactor: the value is implausible when the related
//     signal is this many times StuckMove above its learned offset.
const (
	stuckRatio        = 4
	stuckHistory      = 10 * time.Minute
	stuckRuns         = 8
	offTau            = 10 * time.Minute
	offPrior          = 10.0
	implausibleFactor = 3
)

// frozen folds x into the constant-run bookkeeping.
func (s *series) frozen(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	switch {
	case st.Has && x == st.StuckX:
		st.Stuck.add(t, cover)
		st.StuckDips, st.StuckCov = 0, st.StuckCov+cover
		return
	case st.Has && st.Stuck.Count == 1 && st.BrokeOK && x == st.BrokeX:
		// One reading away and back: a glitch within the margin (the
		// despike lets those through); the run it broke goes on.
		st.Stuck, st.StuckX, st.StuckCov, st.BrokeOK = st.Broke, st.BrokeX, st.BrokeCov+cover, false
		st.Stuck.add(t, cover)
		return
	case st.Has && st.StuckOn:
		// A frozen sensor stays frozen through a garbage frame or two:
		// the run ends once differing readings have lasted Sustain.
		if st.StuckDips == 0 {
			st.StuckDipT = t
		}
		st.StuckDips++
		if st.StuckDips < int64(c.MinReadings) || t-st.StuckDipT < int64(c.Sustain) {
			return
		}
	}
	if st.Has && st.Stuck.Count > 1 && !st.BrokeOK && !st.StuckOn {
		// Not counted yet: the next reading may show this was a glitch.
		st.Broke, st.BrokeX, st.BrokeCov, st.BrokeOK = st.Stuck, st.StuckX, st.StuckCov, true
		st.Stuck.reset()
		st.Stuck.add(t, 0)
		st.StuckX, st.StuckDips, st.StuckCov = x, 0, 0
		return
	}
	if st.BrokeOK {
		s.endRun(c, t, st.BrokeX, st.BrokeCov)
		st.BrokeOK = false
	}
	if st.Has && st.Stuck.Count > 0 {
		s.endRun(c, t, st.StuckX, st.StuckCov)
	}
	st.Stuck.reset()
	st.Stuck.add(t, 0)
	st.StuckX, st.StuckDips, st.StuckCov = x, 0, 0
}

// endRun folds a constant run of value x covering g that ended at t into
// the signal's own history, if it was in normal operation.
func (s *series) endRun(c *SignalConfig, t int64, x float64, g int64) {
	st := &s.st
	if st.Ready && !s.ignored(c, x) && !st.EngOff && !st.Open {
		// A run in normal operation ended: the signal's own history.
		// g is the time its readings cover: a dropout is no run.
		st.RunMax = max(g, st.RunMax-g/8)
		if st.Runs == 0 {
			st.HistT = t
		}
		st.Runs++
	}
}

// stuck judges the stuck-sensor condition on its own, beside every other:
// the value frozen much longer than its own history says it stays put,
// or frozen while the related signal rose far above its normal offset, or
// implausibly far below the related signal.
func (s *series) stuck(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	ctx := st.CtxOK && t-st.CtxT <= int64(max(c.MissingAfter, 30*time.Second)) && st.Ready &&
		!s.soaking(c, t) && !st.EngOff
	gap := st.Ctx - x - math.Max(st.Off, offPrior)
	on := false
	if st.Stuck.Count >= int64(c.MinReadings) {
		frozen := t - st.Stuck.First
		own := c.StuckAfter > 0 && st.Runs >= stuckRuns && t-st.HistT >= int64(stuckHistory) &&
			stuckRatio*st.RunMax <= int64(c.StuckAfter) && frozen >= int64(c.StuckAfter)
		// Coupled: sustained, so that one garbage oil reading is not it.
		coupled := c.StuckFast > 0 && frozen >= int64(c.StuckFast) && ctx && gap >= c.StuckMove
		step(c, &st.Coup, &st.CoupOn, coupled, t, cover)
		on = own || st.CoupOn || (st.StuckOn && frozen > 0)
	} else {
		step(c, &st.Coup, &st.CoupOn, false, t, cover)
	}
	st.StuckOn = on
	implausible := c.StuckFast > 0 && c.StuckMove > 0 && ctx && gap >= implausibleFactor*c.StuckMove
	step(c, &st.Impl, &st.ImplOn, implausible, t, cover)
	if ctx && !s.ignored(c, x) && !on && !st.ImplOn && !st.Open && t-st.Stuck.First < int64(c.StuckFast) {
		// The value moves, nothing is wrong: learn the normal offset.
		st.Off += float64(math.Min(1, float64(cover)/float64(offTau)) * (st.Ctx - x - st.Off))
	}
}

// context folds in a reading of the signal related to this one (engine oil
// temperature for coolant) at t, for the stuck and plausibility checks.
func (s *series) context(t int64, v float64) {
	st := &s.st
	if !finite(v) || (st.CtxOK && t < st.CtxT) {
		return
	}
	if !st.CtxOK {
		st.Off = offPrior
	}
	st.CtxOK, st.Ctx, st.CtxT = true, v, t
}

// rank orders the conditions: the open alert carries the highest.
func rank(k Kind, s Severity) int { return int(s)*16 + int(kindPriority[k]) }

var kindPriority = [...]uint8{KindInvalid: 0, KindVolatility: 1, KindMissing: 2, KindStuck: 3, KindRateOfRise: 4, KindDeviation: 5, KindLimit: 6}

// top returns the most urgent active condition, when it began, and every
// active condition.
func (s *series) top() (k Kind, sev Severity, since int64, all Kinds) {
	st := &s.st
	best := -1
	consider := func(on bool, kk Kind, ss Severity, from int64) {
		if !on {
			return
		}
		all |= 1 << kk
		if rank(kk, ss) > best {
			best, k, sev, since = rank(kk, ss), kk, ss, from
		}
	}
	consider(st.CritOn, KindLimit, SeverityCritical, st.Crit.First)
	consider(st.WarnOn, KindLimit, SeverityWarning, st.Warn.First)
	consider(st.RiseOn, KindRateOfRise, SeverityWarning, st.Rise.First)
	consider(st.DevOn, KindDeviation, SeverityWarning, st.Dev.First)
	consider(st.ShiftOn, KindDeviation, SeverityWarning, st.LastT)
	consider(st.StuckOn, KindStuck, SeverityWarning, st.Stuck.First)
	consider(st.ImplOn && !st.StuckOn, KindStuck, SeverityWarning, st.Impl.First)
	consider(st.MissOn, KindMissing, SeverityWarning, st.LastT)
	consider(st.VolOn, KindVolatility, SeverityInfo, st.LastT)
	return k, sev, since, all
}

// announce are the conditions that make a Changed transition when they
// join an open alert whose kind and severity stay: a frozen sensor means
// the value shown can no longer be trusted. Others (a rate of rise beside
// a limit) show in Active from the next transition and in Band.
const announce = Kinds(1 << KindStuck)

// settle compares the active conditions with the open alert and reports
// the transition, if any: Changed when the most urgent condition changes
// or stuck joins the open alert.
func (s *series) settle(t int64) (event, bool) {
	st := &s.st
	k, sev, since, all := s.top()
	switch {
	case sev == SeverityNone && !st.Open:
		return event{}, false
	case sev == SeverityNone:
		ev := event{Cleared, st.Kind, st.Sev, st.Start, 0}
		st.Open, st.Kind, st.Sev, st.Start, st.Active = false, KindInvalid, SeverityNone, 0, 0
		// What the ring saw during the alert is no level to learn.
		st.LLen, st.Settled = 0, false
		st.Eased = false
		return ev, true
	case !st.Open:
		st.Open, st.Kind, st.Sev, st.Start, st.Active = true, k, sev, since, all
		return event{Raised, k, sev, since, all}, true
	case k != st.Kind || sev != st.Sev || all&^st.Active&announce != 0:
		st.Kind, st.Sev, st.Active = k, sev, all
		return event{Changed, k, sev, st.Start, all}, true
	}
	st.Active = all
	return event{}, false
}

// advance checks for missing data at time now: only while run says the
// engine is known to run (Detector.running; always for a Series), counted
// from the last reading or the engine's start, whichever is later.
func (s *series) advance(c *SignalConfig, now int64, run bool) (event, bool) {
	st := &s.st
	if c.MissingAfter <= 0 || !st.Has || st.MissOn || st.EngOff || !run ||
		now-max(st.LastT, st.EngOnT) <= int64(c.MissingAfter) {
		return event{}, false
	}
	st.MissOn = true
	return s.settle(now)
}

// score maps the series' state after a reading to [0,1] for replays:
// 0.5 or more iff an alert is open; below that, how close the last reading
// came to the deviation threshold.
func (s *series) score(c *SignalConfig) float64 {
	st := &s.st
	if st.Open {
		return 1
	}
	if !st.Ready {
		return 0
	}
	m := s.margin(c)
	x := st.LastX
	d := math.Max(x-st.Hi, st.Lo-x) // distance outside the band; negative inside
	w := math.Max(st.Hi-st.Lo, 1e-12)
	// Inside the band: 0..0.25; between the band and the threshold: up to 0.49.
	switch {
	case d <= 0:
		return 0.25 * math.Max(0, 1+d/(w/2))
	case m <= 0:
		return 0.49
	default:
		return 0.25 + float64(0.24*math.Min(1, d/m))
	}
}
