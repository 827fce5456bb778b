package detect

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"sort"
	"time"
)

// SignalConfig configures detection for one class of signal. Durations are
// measured on the readings' own timestamps, never on a clock, and every
// setting that learns or counts is a duration, not a number of readings,
// so the same signal sampled at 0.5 or 10 Hz gives the same alerts.
// Absolute values (margins, limits, rates) are in the signal's unit.
//
// A zero or NaN value disables the check it configures where that is
// documented; Validate rejects the rest.
type SignalConfig struct {
	// Sustain is how long a condition (deviation, limit, rate of rise) must
	// hold before an alert is raised. It is measured on the readings that
	// show the condition: from the start of the interval the first one
	// stands for (the time since the reading before it, but never more
	// than the interval before that, so one reading after a dropout does
	// not count for the whole gap) to the last one. Readings without the
	// condition (noise at the threshold) restart the count only when there
	// are MinReadings of them in a row spanning at least Sustain, so that a
	// slow rise jittering around the threshold is caught in time. At 1 Hz,
	// 10 s means 10 readings; on data sampled every 5 min one reading
	// already stands for 5 min, so MinReadings decides.
	Sustain time.Duration
	// MinReadings is the least number of consecutive readings that must
	// show a condition before it is raised, whatever their spacing.
	MinReadings int
	// Warmup is how long the readings must span before a band is learned
	// from them (and deviations count). Limits, rate of rise, stuck and
	// missing need none. The warm-up keeps at most 64 readings, spread
	// over the window.
	Warmup time.Duration
	// MinMargin is the least distance (unit) a reading must be outside the
	// learned normal band to count as away from normal.
	MinMargin float64
	// MarginFrac widens the margin to this fraction of the band's width
	// when that is more than MinMargin.
	MarginFrac float64
	// NoiseMargin widens the margin to this many times the signal's mean
	// reading-to-reading change (an exponentially weighted mean, weight
	// VolatilityAlpha; needs VolatilityAlpha > 0), so that sensor noise is
	// never a new extreme. 0 disables.
	NoiseMargin float64
	// Hysteresis (0..1) is the fraction of the margin by which a reading
	// must come back inside before an open deviation clears, so that an
	// alert does not flap around the threshold.
	Hysteresis float64
	// MaxGrowth limits how far (unit per minute of excursion) an excursion
	// beyond the band that came back widens it; without LearnOnReturn, how
	// fast readings beyond the band widen it. 0 means no limit.
	MaxGrowth float64
	// LearnOnReturn defers widening: a reading beyond the band (but not
	// away from normal) widens it only once the signal has come back
	// inside: an excursion that returns was normal, a steady climb towards
	// the threshold (a slow fault) is not learned on its way.
	LearnOnReturn bool
	// EaseSettling lets a rise above the band that decelerates (its rate
	// falling from one minute to the next: warm product loaded into the
	// tank, sun on it) run up to a margin above where it has got to, for
	// as long as it keeps slowing or has stopped; a rise that holds its
	// rate or speeds up (a fire) is judged against the band at once.
	EaseSettling bool
	// Decay (0..1) pulls the band's edges towards the recent mean by this
	// fraction per minute, so the band forgets old extremes.
	Decay float64
	// Settle is the window over which a level must have stopped moving to
	// be learned as normal: with Settle > 0 the band widens to a level the
	// signal has held for Settle (the means of the window's oldest and
	// newest thirds within SettleTol of each other), never to a trend;
	// the warm-up after a cold start lasts Settle and waits likewise. 0
	// disables.
	Settle    time.Duration
	SettleTol float64
	// AdaptAfter, when positive, accepts a deviation that has lasted this
	// long as the new normal once it has stopped moving (held a level for
	// Settle) and is within the limits: the band widens to include it and
	// the deviation clears. A trend (a fire warming the tank) is never
	// accepted. 0 keeps a deviation open as long as it lasts.
	AdaptAfter time.Duration
	// Despike judges a reading further than the margin from the last
	// believed value as that value until readings beyond have lasted a
	// second (and two readings), so that glitches never count. A real jump
	// is then believed, and counts from its first reading.
	Despike bool
	// OnsetOnly flags only the onset of an excursion: the reading that
	// raises a deviation is also learned as normal, so the alert clears at
	// the next reading unless it moves further away. For signals of
	// unknown nature (benchmarks, replays), not for truck temperatures.
	OnsetOnly bool
	// Rearm is how long after a deviation clears no new deviation is
	// raised; away readings in that time are learned as normal.
	Rearm time.Duration
	// WarnHigh and CritHigh are absolute upper limits (warning, critical);
	// WarnLow is an absolute lower limit (warning). NaN disables a limit.
	// Nothing beyond a limit is ever learned as normal.
	WarnHigh, CritHigh, WarnLow float64
	// LimitHysteresis is how far (unit) a reading must come back inside a
	// limit before that limit's alert clears.
	LimitHysteresis float64
	// IgnoreBelow: readings below it are neither learned nor checked for
	// deviation or rate of rise (a cold engine warming up is normal);
	// limits, stuck and missing still apply. After such a cold start the
	// warm-up lasts Settle and waits until the level has stopped moving.
	// NaN disables.
	IgnoreBelow float64
	// MaxRise is the fastest normal rise (unit per minute) above the band,
	// measured over RiseWindow on the despiked readings; 0 disables the
	// rate-of-rise check.
	MaxRise    float64
	RiseWindow time.Duration
	// VolatilityAlpha, when positive, watches the reading-to-reading
	// variability: its exponentially weighted mean (this is the weight of
	// the newest change) is flagged, like an onset-only deviation, when one
	// reading moves it outside the range of all its earlier values by more
	// than VolatilityMargin (a fraction of that range), after
	// VolatilityWarmup readings. In practice: a jump within the normal
	// range larger than any seen before. For signals of unknown nature
	// (the one per-reading setting: it measures changes between readings);
	// 0 disables the flag (NoiseMargin still uses the mean).
	VolatilityAlpha  float64
	VolatilityMargin float64
	VolatilityWarmup int
	// ShiftZ, when positive, flags a shift of the signal's level (for
	// signals of unknown nature): the recent mean (an exponentially
	// weighted mean with time constant ShiftShort) further than ShiftZ
	// long-term standard deviations from the long-term mean (weighted
	// over ShiftLong, a plain mean of everything until the signal is that
	// old), once the readings span Warmup. Like an onset-only deviation
	// it is raised (as a deviation) for one reading, then not again for
	// Rearm. It catches a level that leaves its usual distribution while
	// staying within the range seen, which a new extreme never is. 0
	// disables.
	ShiftZ                float64
	ShiftShort, ShiftLong time.Duration
	// StuckAfter raises a stuck-sensor alert when the value has not changed
	// at all (and MinReadings readings) for this long while the signal's
	// own recent history in normal operation says it normally changes
	// much faster: its longest constant run at most a quarter of this (a
	// history of at least 8 runs over 10 min; the longest decays by an
	// eighth of each later run). A steady tank, or a 1 °C sensor, that
	// normally holds a value for long is no evidence.
	// 0 disables. Once raised, stuck stays while the value stays (a
	// differing reading or two, shorter than Sustain, do not end it). It
	// is judged on its own, beside every other condition.
	StuckAfter time.Duration
	// StuckFast raises it sooner, after this long, when the related signal
	// the bus carries (engine oil temperature for coolant) is StuckMove
	// above its normal offset to this one (learned while both move, at
	// least 10 °C): the value is frozen while it physically should have
	// risen. With the related signal 3 x StuckMove above that offset the
	// value is implausible (coolant reading air after coolant loss),
	// frozen or not: also raised as stuck after Sustain. Not while the
	// engine is off or in its heat soak. 0 disables.
	StuckFast time.Duration
	StuckMove float64
	// HeatSoak: while the engine is off, and after a restart for as long
	// as it was off (at most HeatSoak), a reading above the band is heat
	// soak (no coolant circulation), not a deviation or a rate of rise;
	// nothing is learned then. Limits still apply. 0 disables.
	HeatSoak time.Duration
	// MissingAfter raises a missing-data alert when Advance finds no
	// reading for longer than this while the engine runs (or engine speed
	// is unknown). It is the grace period: shorter bus or cellular gaps
	// never alarm. A gap this long also restarts the sustain count of
	// pending conditions. 0 disables.
	MissingAfter time.Duration
}

// Config is the detector configuration for every signal class the detector
// watches. It is a value type.
type Config struct {
	// Coolant configures engine coolant temperature (°C, J1939 SPN 110,
	// 1 Hz, 1 °C resolution).
	Coolant SignalConfig
	// Cargo configures cargo-tank temperature (°C, ~1 Hz).
	Cargo SignalConfig
	// Product is what the tank carries ("" for unspecified, or one of
	// Products); ParseConfig sets the cargo limits from it.
	Product string
}

// DefaultConfig returns the configuration used when none is given. It is
// the one place where defaults live.
func DefaultConfig() Config {
	return Config{
		Coolant: SignalConfig{
			Sustain: 10 * time.Second, MinReadings: 3, Warmup: 30 * time.Second, Despike: true,
			MinMargin: 12.5, MarginFrac: 0.25, Hysteresis: 0.5,
			MaxGrowth: 1, LearnOnReturn: true, Decay: 0.001, Settle: 5 * time.Minute, SettleTol: 1,
			WarnHigh: 104, CritHigh: 110, WarnLow: math.NaN(), LimitHysteresis: 2, IgnoreBelow: 80,
			MaxRise: 10, RiseWindow: 30 * time.Second,
			// A 1 °C coolant reading held by the thermostat sits on one
			// value for minutes to hours: only oil says it is frozen.
			StuckAfter: 0, StuckFast: 2 * time.Minute, StuckMove: 8,
			HeatSoak: 10 * time.Minute, MissingAfter: 30 * time.Second,
		},
		Cargo: SignalConfig{
			Sustain: 10 * time.Second, MinReadings: 3, Warmup: 30 * time.Second, Despike: true,
			MinMargin: 3, MarginFrac: 0.25, Hysteresis: 0.5,
			MaxGrowth: 0.5, LearnOnReturn: true, Decay: 0.006, Settle: 10 * time.Minute, SettleTol: 0.8,
			AdaptAfter: 30 * time.Minute, EaseSettling: true,
			WarnHigh: 45, CritHigh: 55, WarnLow: math.NaN(), LimitHysteresis: 1, IgnoreBelow: math.NaN(),
			MaxRise: 3, RiseWindow: 60 * time.Second,
			StuckAfter: 2 * time.Minute, MissingAfter: 30 * time.Second,
		},
	}
}

// DefaultGenericConfig returns the configuration for a signal of unknown
// unit and sampling rate, as used by cmd/detect-replay unless told
// otherwise: scale-free (no absolute margins or limits; the margin is 1% of
// the band's width or NoiseMargin times the mean change between readings,
// whichever is more), flags the onset of each excursion beyond everything
// seen so far, learns the new level, and raises nothing more for Rearm;
// flags likewise a jump within the range larger than any before
// (volatility) and a recent mean more than ShiftZ long-term standard
// deviations from the long-term mean (a level shift within the range;
// as a deviation). One alert per episode: none within Rearm of another.
// No rate-of-rise, stuck or missing checks.
func DefaultGenericConfig() SignalConfig {
	return SignalConfig{
		Sustain: 10 * time.Second, MinReadings: 1, Warmup: 150 * time.Minute,
		MinMargin: 0, MarginFrac: 0.01, NoiseMargin: 0.5, Hysteresis: 0,
		MaxGrowth: 0, Decay: 0, OnsetOnly: true, Rearm: 150 * time.Minute,
		VolatilityAlpha: 0.02, VolatilityMargin: 0.05, VolatilityWarmup: 200,
		ShiftZ: 4, ShiftShort: 50 * time.Minute, ShiftLong: 84 * time.Hour,
		WarnHigh: math.NaN(), CritHigh: math.NaN(), WarnLow: math.NaN(), IgnoreBelow: math.NaN(),
	}
}

// Validate reports the first problem with c, naming the field. It does no
// I/O.
func (c Config) Validate() error {
	if _, ok := product(c.Product); c.Product != "" && !ok {
		return fmt.Errorf("%w: product %q unknown (want gasoline, diesel, naphtha or lpg)", ErrConfig, c.Product)
	}
	if err := c.Coolant.validate("coolant"); err != nil {
		return err
	}
	return c.Cargo.validate("cargo")
}

// Validate reports the first problem with c, naming the field.
func (c SignalConfig) Validate() error { return c.validate("signal") }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (c SignalConfig) validate(class string) error {
	bad := func(field, format string, v any) error {
		return fmt.Errorf("%w: %s.%s "+format, ErrConfig, class, field, v)
	}
	switch {
	case c.Sustain < 0:
		return bad("sustain", "must not be negative, got %v", c.Sustain)
	case c.MinReadings < 1:
		return bad("min_readings", "must be at least 1, got %d", c.MinReadings)
	case c.Warmup <= 0:
		return bad("warmup", "must be positive, got %v", c.Warmup)
	case !finite(c.MinMargin) || c.MinMargin < 0:
		return bad("min_margin", "must be a finite number >= 0, got %v", c.MinMargin)
	case !finite(c.MarginFrac) || c.MarginFrac < 0:
		return bad("margin_frac", "must be a finite number >= 0, got %v", c.MarginFrac)
	case !(c.Hysteresis >= 0 && c.Hysteresis <= 1):
		return bad("hysteresis", "must be 0..1, got %v", c.Hysteresis)
	case !finite(c.MaxGrowth) || c.MaxGrowth < 0:
		return bad("max_growth", "must be a finite number >= 0, got %v", c.MaxGrowth)
	case !(c.Decay >= 0 && c.Decay < 1):
		return bad("decay", "must be in [0,1), got %v", c.Decay)
	case c.AdaptAfter < 0:
		return bad("adapt_after", "must not be negative, got %v", c.AdaptAfter)
	case c.Rearm < 0:
		return bad("rearm", "must not be negative, got %v", c.Rearm)
	case c.Settle < 0:
		return bad("settle", "must not be negative, got %v", c.Settle)
	case !finite(c.SettleTol) || c.SettleTol < 0:
		return bad("settle_tol", "must be a finite number >= 0, got %v", c.SettleTol)
	case !finite(c.NoiseMargin) || c.NoiseMargin < 0:
		return bad("noise_margin", "must be a finite number >= 0, got %v", c.NoiseMargin)
	case c.StuckFast < 0:
		return bad("stuck_fast", "must not be negative, got %v", c.StuckFast)
	case !finite(c.StuckMove) || c.StuckMove < 0:
		return bad("stuck_move", "must be a finite number >= 0, got %v", c.StuckMove)
	case c.HeatSoak < 0:
		return bad("heat_soak", "must not be negative, got %v", c.HeatSoak)
	case math.IsInf(c.WarnHigh, 0):
		return bad("warn_high", "must be finite or null, got %v", c.WarnHigh)
	case math.IsInf(c.CritHigh, 0):
		return bad("crit_high", "must be finite or null, got %v", c.CritHigh)
	case math.IsInf(c.IgnoreBelow, 0):
		return bad("ignore_below", "must be finite or null, got %v", c.IgnoreBelow)
	case math.IsInf(c.WarnLow, 0):
		return bad("warn_low", "must be finite or null, got %v", c.WarnLow)
	case !math.IsNaN(c.WarnHigh) && !math.IsNaN(c.CritHigh) && c.CritHigh < c.WarnHigh:
		return bad("crit_high", "must not be below warn_high, got %v", c.CritHigh)
	case !finite(c.LimitHysteresis) || c.LimitHysteresis < 0:
		return bad("limit_hysteresis", "must be a finite number >= 0, got %v", c.LimitHysteresis)
	case !finite(c.MaxRise) || c.MaxRise < 0:
		return bad("max_rise", "must be a finite number >= 0, got %v", c.MaxRise)
	case c.MaxRise > 0 && c.RiseWindow <= 0:
		return bad("rise_window", "must be positive when max_rise is set, got %v", c.RiseWindow)
	case c.RiseWindow < 0:
		return bad("rise_window", "must not be negative, got %v", c.RiseWindow)
	case !(c.VolatilityAlpha >= 0 && c.VolatilityAlpha <= 1):
		return bad("volatility_alpha", "must be 0..1, got %v", c.VolatilityAlpha)
	case !finite(c.VolatilityMargin) || c.VolatilityMargin < 0:
		return bad("volatility_margin", "must be a finite number >= 0, got %v", c.VolatilityMargin)
	case c.VolatilityWarmup < 0:
		return bad("volatility_warmup", "must not be negative, got %d", c.VolatilityWarmup)
	case !finite(c.ShiftZ) || c.ShiftZ < 0:
		return bad("shift_z", "must be a finite number >= 0, got %v", c.ShiftZ)
	case c.ShiftShort < 0 || (c.ShiftZ > 0 && c.ShiftShort == 0):
		return bad("shift_short", "must be positive when shift_z is set (and never negative), got %v", c.ShiftShort)
	case c.ShiftLong < 0 || (c.ShiftZ > 0 && c.ShiftLong <= c.ShiftShort):
		return bad("shift_long", "must be longer than shift_short when shift_z is set (and never negative), got %v", c.ShiftLong)
	case c.StuckAfter < 0:
		return bad("stuck_after", "must not be negative, got %v", c.StuckAfter)
	case c.MissingAfter < 0:
		return bad("missing_after", "must not be negative, got %v", c.MissingAfter)
	}
	return nil
}

// Product is a cargo's temperature limits and where they come from.
type Product struct {
	Name               string
	WarnHigh, CritHigh float64 // °C
	// Why: the property the limits are set from, with its source.
	Why string
}

// Products are the cargoes ParseConfig knows ("product": "lpg"); README.md
// gives the sources.
var Products = []Product{
	{"gasoline", 40, 50, "flash point about -43 °C (below -20 °C, CLP Annex I 2.6: category 1, initial boiling point <= 35 °C); " +
		"EN 228 vapour pressure up to 90 kPa at 37.8 °C; ADR classes tank liquids by vapour pressure at 50 °C"},
	{"diesel", 45, 55, "flash point at least 55 °C (EN 590; CLP Annex I 2.6 note 1): critical at the flash point, warning 10 °C below"},
	{"naphtha", 35, 45, "flash point below -18 °C and initial boiling point near 30-35 °C (CLP category 1): boils off from about 35 °C"},
	{"lpg", 40, 50, "ADR 4.3.3.2.2: a tank is filled to at most 0.95 x the liquid density at 50 °C, and the vapour phase must not " +
		"disappear below 60 °C: past 50 °C the ullage is being used up (propane vapour pressure about 17 bar at 50 °C)"},
}

// product looks a cargo up by name.
func product(name string) (Product, bool) {
	for _, p := range Products {
		if p.Name == name {
			return p, true
		}
	}
	return Product{}, false
}

// appendBinary appends c's fields in a fixed little-endian layout; used by
// Hash and by the saved state.
func (c SignalConfig) appendBinary(b []byte) []byte {
	le := binary.LittleEndian
	for _, v := range []int64{int64(c.Sustain), int64(c.MinReadings), int64(c.Warmup), int64(c.AdaptAfter),
		int64(c.Rearm), int64(c.RiseWindow), int64(c.StuckAfter), int64(c.MissingAfter), int64(c.VolatilityWarmup),
		int64(c.Settle), int64(c.StuckFast), int64(c.HeatSoak), int64(c.ShiftShort), int64(c.ShiftLong)} {
		b = le.AppendUint64(b, uint64(v))
	}
	for _, v := range []float64{c.MinMargin, c.MarginFrac, c.Hysteresis, c.MaxGrowth, c.Decay,
		c.WarnHigh, c.CritHigh, c.WarnLow, c.LimitHysteresis, c.MaxRise, c.IgnoreBelow,
		c.VolatilityAlpha, c.VolatilityMargin, c.NoiseMargin, c.SettleTol, c.StuckMove, c.ShiftZ} {
		if math.IsNaN(v) {
			v = math.NaN() // one canonical NaN
		}
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	var flags byte
	if c.OnsetOnly {
		flags |= 1
	}
	if c.Despike {
		flags |= 2
	}
	if c.LearnOnReturn {
		flags |= 4
	}
	if c.EaseSettling {
		flags |= 8
	}
	return append(b, flags)
}

// signalConfigSize is the length of appendBinary's output.
const signalConfigSize = 14*8 + 17*8 + 1

func (c *SignalConfig) decodeBinary(b []byte) {
	le := binary.LittleEndian
	i := func(k int) int64 { return int64(le.Uint64(b[8*k:])) }
	f := func(k int) float64 { return math.Float64frombits(le.Uint64(b[14*8+8*k:])) }
	*c = SignalConfig{
		Sustain: time.Duration(i(0)), MinReadings: int(i(1)), Warmup: time.Duration(i(2)), AdaptAfter: time.Duration(i(3)),
		Rearm: time.Duration(i(4)), Settle: time.Duration(i(9)), StuckFast: time.Duration(i(10)), HeatSoak: time.Duration(i(11)),
		NoiseMargin: f(13), SettleTol: f(14), StuckMove: f(15), ShiftZ: f(16),
		ShiftShort: time.Duration(i(12)), ShiftLong: time.Duration(i(13)), RiseWindow: time.Duration(i(5)), StuckAfter: time.Duration(i(6)), MissingAfter: time.Duration(i(7)),
		VolatilityWarmup: int(i(8)), VolatilityAlpha: f(11), VolatilityMargin: f(12),
		MinMargin: f(0), MarginFrac: f(1), Hysteresis: f(2), MaxGrowth: f(3), Decay: f(4),
		WarnHigh: f(5), CritHigh: f(6), WarnLow: f(7), LimitHysteresis: f(8), MaxRise: f(9), IgnoreBelow: f(10),
		OnsetOnly: b[signalConfigSize-1]&1 != 0, Despike: b[signalConfigSize-1]&2 != 0,
		LearnOnReturn: b[signalConfigSize-1]&4 != 0, EaseSettling: b[signalConfigSize-1]&8 != 0,
	}
}

// Hash identifies the configuration in transitions: equal configurations
// hash equally on every platform.
func (c Config) Hash() uint64 {
	h := fnv.New64a()
	h.Write(c.Coolant.appendBinary(nil))
	h.Write(c.Cargo.appendBinary(nil))
	h.Write([]byte(c.Product))
	return h.Sum64()
}

// Hash identifies one signal class's configuration.
func (c SignalConfig) Hash() uint64 {
	h := fnv.New64a()
	h.Write(c.appendBinary(nil))
	return h.Sum64()
}

// ParseConfig reads a JSON configuration. Fields use snake_case names
// (`{"coolant": {"sustain": "10s", "crit_high": 110}, "cargo": {...}}`);
// durations are Go duration strings; a limit set to null is disabled.
// "product" (gasoline, diesel, naphtha, lpg; see Products) sets the cargo
// limits for that cargo; limits given in "cargo" override it.
// Fields not given keep their DefaultConfig value. Unknown fields and bad
// values are errors naming the field; the result is validated.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	top, err := objectFields(data, "config")
	if err != nil {
		return Config{}, err
	}
	// The product first: it sets the cargo limits, which the cargo
	// section may then override.
	if raw, ok := top["product"]; ok {
		if err := json.Unmarshal(raw, &c.Product); err != nil {
			return Config{}, fmt.Errorf("%w: product: want a string: %v", ErrConfig, err)
		}
		p, ok := product(c.Product)
		if !ok {
			return Config{}, fmt.Errorf("%w: product %q unknown (want gasoline, diesel, naphtha or lpg)", ErrConfig, c.Product)
		}
		c.Cargo.WarnHigh, c.Cargo.CritHigh = p.WarnHigh, p.CritHigh
		delete(top, "product")
	}
	for _, k := range sortedKeys(top) {
		var sc *SignalConfig
		switch k {
		case "coolant":
			sc = &c.Coolant
		case "cargo":
			sc = &c.Cargo
		default:
			return Config{}, fmt.Errorf("%w: unknown field %q (want coolant, cargo, product)", ErrConfig, k)
		}
		if err := sc.parseJSON(top[k], k); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseSignalConfig reads one signal class's JSON configuration over base,
// in the format of one class of ParseConfig, and validates it.
func ParseSignalConfig(data []byte, base SignalConfig) (SignalConfig, error) {
	if err := base.parseJSON(data, "signal"); err != nil {
		return SignalConfig{}, err
	}
	if err := base.validate("signal"); err != nil {
		return SignalConfig{}, err
	}
	return base, nil
}

func objectFields(data []byte, where string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, where, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: %s: want a JSON object", ErrConfig, where)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: trailing data after the object", ErrConfig, where)
	}
	return m, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *SignalConfig) parseJSON(data []byte, class string) error {
	fields, err := objectFields(data, class)
	if err != nil {
		return err
	}
	durs := map[string]*time.Duration{
		"sustain": &c.Sustain, "adapt_after": &c.AdaptAfter, "rise_window": &c.RiseWindow,
		"stuck_after": &c.StuckAfter, "missing_after": &c.MissingAfter, "warmup": &c.Warmup, "rearm": &c.Rearm,
		"settle": &c.Settle, "stuck_fast": &c.StuckFast, "heat_soak": &c.HeatSoak,
		"shift_short": &c.ShiftShort, "shift_long": &c.ShiftLong,
	}
	ints := map[string]*int{"min_readings": &c.MinReadings, "volatility_warmup": &c.VolatilityWarmup}
	floats := map[string]*float64{
		"min_margin": &c.MinMargin, "margin_frac": &c.MarginFrac, "hysteresis": &c.Hysteresis,
		"max_growth": &c.MaxGrowth, "decay": &c.Decay, "limit_hysteresis": &c.LimitHysteresis,
		"max_rise": &c.MaxRise, "volatility_alpha": &c.VolatilityAlpha, "volatility_margin": &c.VolatilityMargin,
		"noise_margin": &c.NoiseMargin, "settle_tol": &c.SettleTol, "stuck_move": &c.StuckMove,
		"shift_z": &c.ShiftZ,
	}
	limits := map[string]*float64{"warn_high": &c.WarnHigh, "crit_high": &c.CritHigh, "warn_low": &c.WarnLow,
		"ignore_below": &c.IgnoreBelow}
	for _, k := range sortedKeys(fields) {
		raw := fields[k]
		fail := func(err error) error { return fmt.Errorf("%w: %s.%s: %v", ErrConfig, class, k, err) }
		switch {
		case durs[k] != nil:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fail(fmt.Errorf("want a duration string like \"10s\": %v", err))
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fail(err)
			}
			*durs[k] = d
		case ints[k] != nil:
			if err := json.Unmarshal(raw, ints[k]); err != nil {
				return fail(fmt.Errorf("want an integer: %v", err))
			}
		case floats[k] != nil:
			if err := json.Unmarshal(raw, floats[k]); err != nil {
				return fail(fmt.Errorf("want a number: %v", err))
			}
		case limits[k] != nil:
			if string(bytes.TrimSpace(raw)) == "null" {
				*limits[k] = math.NaN()
				continue
			}
			if err := json.Unmarshal(raw, limits[k]); err != nil {
				return fail(fmt.Errorf("want a number or null: %v", err))
			}
		case k == "onset_only":
			if err := json.Unmarshal(raw, &c.OnsetOnly); err != nil {
				return fail(fmt.Errorf("want true or false: %v", err))
			}
		case k == "despike":
			if err := json.Unmarshal(raw, &c.Despike); err != nil {
				return fail(fmt.Errorf("want true or false: %v", err))
			}
		case k == "learn_on_return":
			if err := json.Unmarshal(raw, &c.LearnOnReturn); err != nil {
				return fail(fmt.Errorf("want true or false: %v", err))
			}
		case k == "ease_settling":
			if err := json.Unmarshal(raw, &c.EaseSettling); err != nil {
				return fail(fmt.Errorf("want true or false: %v", err))
			}
		default:
			return fmt.Errorf("%w: %s: unknown field %q", ErrConfig, class, k)
		}
	}
	return nil
}
