package detect

import (
	"math"
	"time"
)

// riseCap is the capacity of the rate-of-rise ring: samples are stored at
// most every RiseWindow/16, so a window never needs more than 17.
const riseCap = 32

// run tracks one condition's consecutive readings (the sustain count).
//
// The condition is sustained when its readings span Sustain: from the
// time the first one stands for (since the reading before it) to the last.
// A run survives short dips: it restarts only after MinReadings readings
// in a row, spanning the sustain period, without the condition, so that a
// slowly rising value that jitters around a threshold (noise, 1 °C
// quantisation) is still caught. (Single-sample glitches are removed before
// by SignalConfig.Despike.)
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

// seriesState is every field of a series' learned state. It holds only
// fixed-size values so that it can be copied, compared and encoded as is.
type seriesState struct {
	Has     bool  // a reading was seen
	LastT   int64 // time of the last accepted reading
	PrevGap int64 // gap before the last reading
	LastX   float64
	N       int64 // readings accepted
	Bad     int64 // readings rejected (NaN, infinite, out of order)

	// Learned normal band.
	Warm      [MaxWarmup]float64
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

	// Conditions: pending runs and whether each is active.
	Dev, Warn, Crit, Rise, Stuck run
	DevOn, WarnOn, CritOn        bool
	RiseOn, StuckOn, MissOn      bool
	Rearm                        int64

	// Rate of rise: median-of-3 input and a ring of stored medians.
	Last3  [3]float64
	Last3T [3]int64
	NLast3 int64
	Ring   [riseCap]sample
	RHead  int64 // index of the oldest sample
	RLen   int64
	// Slope is the last rise rate measured over the ring (unit per
	// minute), valid when SlopeOK.
	Slope     float64
	SlopeOK   bool
	StuckFrom int64

	// Volatility: an exponentially weighted mean of |reading - previous|
	// and the envelope of its values.
	VolN        int64 // values of V so far
	V, VLo, VHi float64
	VolOn       bool
	VolRearm    int64

	// The open alert.
	Open  bool
	Kind  Kind
	Sev   Severity
	Start int64
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
	Kind            Kind
	Severity        Severity
	Start           int64 // the open alert's Start
}

func (s *series) band(c *SignalConfig) Band {
	st := &s.st
	b := Band{Readings: st.N, Rejected: st.Bad, Open: st.Open, Kind: st.Kind, Severity: st.Sev, Start: st.Start}
	if st.Has {
		b.LastTime = st.LastT
	}
	if !st.Ready {
		nan := math.NaN()
		b.Low, b.High, b.Mean, b.Margin = nan, nan, nan, nan
		return b
	}
	b.Ready, b.Low, b.High, b.Mean, b.Margin = true, st.Lo, st.Hi, st.Mean, margin(c, st.Lo, st.Hi)
	return b
}

func margin(c *SignalConfig, lo, hi float64) float64 {
	return math.Max(c.MinMargin, float64(c.MarginFrac*(hi-lo)))
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
	phase Phase
	kind  Kind
	sev   Severity
	start int64
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
			// sustain, and the rate of rise starts afresh.
			st.Dev.reset()
			st.Warn.reset()
			st.Crit.reset()
			st.Rise.reset()
			st.RLen = 0
		}
		st.PrevGap = gap
	}
	if st.Has && x == st.LastX {
		st.Stuck.add(t, cover)
	} else {
		st.Stuck.reset()
		st.Stuck.add(t, 0)
	}
	if c.VolatilityAlpha > 0 && st.Has {
		s.volatility(c, math.Abs(x-st.LastX))
	}
	st.Has, st.LastT, st.LastX = true, t, x
	st.N++
	st.MissOn = false

	// Median of the last three readings: one glitch moves nothing.
	st.Last3[st.NLast3%3], st.Last3T[st.NLast3%3] = x, t
	st.NLast3++
	m := x
	if st.NLast3 >= 3 {
		a, b, d := st.Last3[0], st.Last3[1], st.Last3[2]
		m = math.Max(math.Min(a, b), math.Min(math.Max(a, b), d))
	}
	judged := x
	if c.Despike && st.NLast3 >= 3 {
		// A reading further than the margin from the median of the last
		// three is a spike until the next reading confirms it.
		d := c.MinMargin
		if st.Ready {
			d = margin(c, st.Lo, st.Hi)
		}
		if math.Abs(x-m) > d {
			judged = m
		}
	}
	s.limits(c, t, judged, cover)
	s.deviation(c, t, judged, cover)
	s.rise(c, t, m, cover)
	st.StuckOn = c.StuckAfter > 0 && st.Stuck.Count >= int64(c.MinReadings) &&
		t-st.Stuck.First >= int64(c.StuckAfter)
	return s.settle(t)
}

func (s *series) limits(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	h := c.LimitHysteresis
	crit := !math.IsNaN(c.CritHigh) && (x > c.CritHigh || (st.CritOn && x > c.CritHigh-h))
	warn := crit ||
		(!math.IsNaN(c.WarnHigh) && (x > c.WarnHigh || (st.WarnOn && x > c.WarnHigh-h))) ||
		(!math.IsNaN(c.WarnLow) && (x < c.WarnLow || (st.WarnOn && x < c.WarnLow+h)))
	inf := math.Inf(1)
	stepFrom(c, &st.Crit, &st.CritOn, crit, t, s.firstBeyond(c, -inf, nanTo(c.CritHigh, inf), t), cover)
	stepFrom(c, &st.Warn, &st.WarnOn, warn, t, s.firstBeyond(c, nanTo(c.WarnLow, -inf), nanTo(c.WarnHigh, inf), t), cover)
}

// step advances a condition's run; it turns on when sustained and off as
// soon as the condition is gone.
func step(c *SignalConfig, r *run, on *bool, cond bool, t, cover int64) {
	stepFrom(c, r, on, cond, t, t, cover)
}

// stepFrom is step for a condition judged on the 3-reading median: start
// is the time of the first raw reading that showed it.
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

// firstBeyond returns the time of the earliest of the last three readings
// whose raw value is outside [lo, hi], or t if none is (or not despiking).
func (s *series) firstBeyond(c *SignalConfig, lo, hi float64, t int64) int64 {
	st := &s.st
	if !c.Despike || st.NLast3 < 3 {
		return t
	}
	for k := st.NLast3 - 3; k < st.NLast3; k++ {
		if v := st.Last3[k%3]; v > hi || v < lo {
			return st.Last3T[k%3]
		}
	}
	return t
}

func nanTo(v, alt float64) float64 {
	if math.IsNaN(v) {
		return alt
	}
	return v
}

func (s *series) ignored(c *SignalConfig, x float64) bool {
	return !math.IsNaN(c.IgnoreBelow) && x < c.IgnoreBelow
}

func (s *series) deviation(c *SignalConfig, t int64, x float64, cover int64) {
	st := &s.st
	if s.ignored(c, x) {
		step(c, &st.Dev, &st.DevOn, false, t, cover)
		if !st.Ready {
			// Cold: the warm-up starts again with the next warm reading.
			st.ColdStart = true
			st.NWarm = 0
		}
		return
	}
	if !st.Ready {
		s.warmUp(c, x)
		return
	}
	if st.DevOn && c.OnsetOnly {
		// The onset was flagged by the previous reading; from here the
		// rearm period learns whatever comes.
		st.Dev.reset()
		st.DevOn = false
		st.Rearm = int64(c.Rearm)
	}
	m := margin(c, st.Lo, st.Hi)
	up, down := st.Hi+m, st.Lo-m
	if st.DevOn {
		h := float64(c.Hysteresis * m)
		up, down = up-h, down+h
	}
	away := x > up || x < down
	if away && !st.DevOn && st.Rearm > 0 {
		// Just after a deviation cleared: learn instead of raising again.
		s.absorb(x)
		away = false
	}
	if st.Rearm > 0 {
		st.Rearm--
	}
	wasOn := st.DevOn
	stepFrom(c, &st.Dev, &st.DevOn, away, t, s.firstBeyond(c, down, up, t), cover)
	if st.DevOn && !wasOn {
		s.dropPending() // the excursion was not normal after all
	}
	switch {
	case !away:
		s.learn(c, x, cover)
		if wasOn {
			st.Rearm = int64(c.Rearm)
		}
	case st.DevOn && c.OnsetOnly:
		s.absorb(x)
	case st.DevOn && c.AdaptAfter > 0 && t-st.Dev.First >= int64(c.AdaptAfter):
		s.absorb(x)
		st.Dev.reset()
		st.DevOn = false
		st.Rearm = int64(c.Rearm)
	}
}

// warmUp collects the first readings; once there are Warmup of them and
// they have settled, the band is their robust range.
func (s *series) warmUp(c *SignalConfig, x float64) {
	st := &s.st
	w := int64(c.Warmup)
	if st.ColdStart {
		w = MaxWarmup // judge settling over a longer window
	}
	if st.NWarm < w {
		st.Warm[st.NWarm] = x
		st.NWarm++
	} else {
		// Slide: drop the oldest so a warming engine is not learned.
		copy(st.Warm[:w-1], st.Warm[1:w])
		st.Warm[w-1] = x
		st.NWarm = w
	}
	if st.NWarm < w {
		return
	}
	var sorted [MaxWarmup]float64
	v := sorted[:w]
	copy(v, st.Warm[:w])
	insertionSort(v)
	med := median(v)
	if st.ColdStart && w >= 6 {
		// After a cold start, wait until the signal has settled: the rise
		// over the window, estimated from the medians of its oldest and
		// newest thirds (so a glitch does not hide a trend), is within a
		// tenth of the margin; else the engine is still warming up.
		var a, b [MaxWarmup]float64
		k := w / 3
		copy(a[:k], st.Warm[:k])
		copy(b[:k], st.Warm[w-k:w])
		insertionSort(a[:k])
		insertionSort(b[:k])
		rise := float64(median(b[:k])-median(a[:k])) * float64(w-1) / float64(w-k)
		if math.Abs(rise) > c.MinMargin/10 {
			return
		}
	}
	var mad [MaxWarmup]float64
	for i, y := range v {
		mad[i] = math.Abs(y - med)
	}
	insertionSort(mad[:w])
	tol := math.Max(float64(5*1.4826*median(mad[:w])), c.MinMargin)
	lo, hi := med, med
	for _, y := range st.Warm[:w] {
		if math.Abs(y-med) <= tol {
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

// learn folds a normal reading into the band: edges widen (at most
// MaxGrowth per minute) and relax towards the mean by Decay.
func (s *series) learn(c *SignalConfig, x float64, cover int64) {
	st := &s.st
	growth := func(cover int64) float64 {
		if c.MaxGrowth > 0 {
			return float64(c.MaxGrowth * float64(float64(cover)/float64(time.Minute)))
		}
		return math.Inf(1)
	}
	// With LearnOnReturn, a signal that moves no faster than drift does is
	// learned at once (within MaxGrowth): drift, or a new level it
	// settled at. One that moves faster is learned when it comes back;
	// without a measured rate, readings within a quarter of the margin are
	// learned at once.
	near := 0.0
	switch {
	case !c.LearnOnReturn:
	case !st.SlopeOK:
		near = margin(c, st.Lo, st.Hi) / 4
	case math.Abs(st.Slope) <= driftFactor*c.MaxGrowth:
		near = math.Inf(1)
	}
	switch {
	case !c.LearnOnReturn || x >= st.Lo-near && x <= st.Hi+near:
		if x > st.Hi {
			st.Hi += math.Min(x-st.Hi, growth(cover))
		}
		if x < st.Lo {
			st.Lo -= math.Min(st.Lo-x, growth(cover))
		}
	case x > st.Hi:
		if !st.PendUp || x > st.PendHi {
			st.PendHi = x
		}
		st.PendUp = true
		st.PendHiCover += cover
	case x < st.Lo:
		if !st.PendDown || x < st.PendLo {
			st.PendLo = x
		}
		st.PendDown = true
		st.PendLoCover += cover
	}
	if c.LearnOnReturn && x >= st.Lo && x <= st.Hi {
		// Back inside: what the excursions reached was normal.
		if st.PendUp && st.PendHi > st.Hi {
			st.Hi += math.Min(st.PendHi-st.Hi, growth(st.PendHiCover))
		}
		if st.PendDown && st.PendLo < st.Lo {
			st.Lo -= math.Min(st.Lo-st.PendLo, growth(st.PendLoCover))
		}
		s.dropPending()
	}
	st.Mean += float64(0.01 * (x - st.Mean))
	st.Mean = math.Min(math.Max(st.Mean, st.Lo), st.Hi)
	st.Hi -= float64(c.Decay * (st.Hi - st.Mean))
	st.Lo += float64(c.Decay * (st.Mean - st.Lo))
}

// driftFactor: with LearnOnReturn, a signal moving more than this many
// times MaxGrowth per minute is not drifting, and is not learned at once.
const driftFactor = 5

// dropPending forgets the excursions not yet learned.
func (s *series) dropPending() {
	st := &s.st
	st.PendUp, st.PendDown, st.PendHi, st.PendLo, st.PendHiCover, st.PendLoCover = false, false, 0, 0, 0, 0
}

// absorb accepts an away reading as normal: the band widens to include it.
func (s *series) absorb(x float64) {
	st := &s.st
	st.Hi, st.Lo = math.Max(st.Hi, x), math.Min(st.Lo, x)
}

// volatility folds in one reading-to-reading change d. Like an onset-only
// deviation, it is active for one reading when the smoothed variability
// leaves everything it has been, then not again for Rearm readings.
func (s *series) volatility(c *SignalConfig, d float64) {
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
	case st.VolRearm > 0:
		st.VolRearm--
	case away && st.N >= int64(c.VolatilityWarmup):
		st.VolOn, st.VolRearm = true, int64(c.Rearm)
	}
	st.VHi, st.VLo = math.Max(st.VHi, v), math.Min(st.VLo, v)
}

// rise judges m, the median of the last three readings.
func (s *series) rise(c *SignalConfig, t int64, m float64, cover int64) {
	st := &s.st
	if c.MaxRise <= 0 || s.ignored(c, m) || !st.Ready {
		st.SlopeOK = false
		step(c, &st.Rise, &st.RiseOn, false, t, cover)
		return
	}
	win := int64(c.RiseWindow)
	if st.RLen == 0 || t-st.Ring[(st.RHead+st.RLen-1)%riseCap].T >= win/16 {
		if st.RLen == riseCap {
			st.RHead = (st.RHead + 1) % riseCap
			st.RLen--
		}
		st.Ring[(st.RHead+st.RLen)%riseCap] = sample{t, m}
		st.RLen++
	}
	for st.RLen > 1 && t-st.Ring[st.RHead].T > win {
		st.RHead = (st.RHead + 1) % riseCap
		st.RLen--
	}
	old := st.Ring[st.RHead]
	age := t - old.T
	rising := false
	st.SlopeOK = false
	if age >= win/2 && st.NLast3 >= 3 {
		perMin := (m - old.X) / float64(float64(age)/float64(time.Minute))
		st.Slope, st.SlopeOK = perMin, true
		limit := c.MaxRise
		if st.RiseOn {
			limit /= 2
		}
		// Only a rise above the learned band counts: inside it the value
		// is following load, as normal.
		rising = perMin > limit && (m > st.Hi || st.RiseOn)
	}
	step(c, &st.Rise, &st.RiseOn, rising, t, cover)
}

// rank orders the conditions: the open alert carries the highest.
func rank(k Kind, s Severity) int { return int(s)*16 + int(kindPriority[k]) }

var kindPriority = [...]uint8{KindInvalid: 0, KindVolatility: 1, KindMissing: 2, KindStuck: 3, KindRateOfRise: 4, KindDeviation: 5, KindLimit: 6}

// top returns the most urgent active condition and when it began.
func (s *series) top() (k Kind, sev Severity, since int64) {
	st := &s.st
	best := -1
	consider := func(on bool, kk Kind, ss Severity, from int64) {
		if on && rank(kk, ss) > best {
			best, k, sev, since = rank(kk, ss), kk, ss, from
		}
	}
	consider(st.CritOn, KindLimit, SeverityCritical, st.Crit.First)
	consider(st.WarnOn, KindLimit, SeverityWarning, st.Warn.First)
	consider(st.RiseOn, KindRateOfRise, SeverityWarning, st.Rise.First)
	consider(st.DevOn, KindDeviation, SeverityWarning, st.Dev.First)
	consider(st.StuckOn, KindStuck, SeverityWarning, st.Stuck.First)
	consider(st.MissOn, KindMissing, SeverityWarning, st.LastT)
	consider(st.VolOn, KindVolatility, SeverityInfo, st.LastT)
	return k, sev, since
}

// settle compares the most urgent active condition with the open alert and
// reports the transition, if any.
func (s *series) settle(t int64) (event, bool) {
	st := &s.st
	k, sev, since := s.top()
	switch {
	case sev == SeverityNone && !st.Open:
		return event{}, false
	case sev == SeverityNone:
		ev := event{Cleared, st.Kind, st.Sev, st.Start}
		st.Open, st.Kind, st.Sev, st.Start = false, KindInvalid, SeverityNone, 0
		return ev, true
	case !st.Open:
		st.Open, st.Kind, st.Sev, st.Start = true, k, sev, since
		return event{Raised, k, sev, since}, true
	case k != st.Kind || sev != st.Sev:
		st.Kind, st.Sev = k, sev
		return event{Changed, k, sev, st.Start}, true
	}
	return event{}, false
}

// advance checks for missing data at time now.
func (s *series) advance(c *SignalConfig, now int64) (event, bool) {
	st := &s.st
	if c.MissingAfter <= 0 || !st.Has || st.MissOn || now-st.LastT <= int64(c.MissingAfter) {
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
	m := margin(c, st.Lo, st.Hi)
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
