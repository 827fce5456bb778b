package cab

import (
	"fmt"
	"maps"
	"math"
	"net"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// Config configures the cab display of one truck. The zero value of a field
// means "use the default" (see DefaultConfig); New fills those in before it
// calls Validate.
type Config struct {
	// Listen is the TCP address the display is served on, host:port, for
	// the cab tablet's kiosk browser. Default "127.0.0.1:8081". Use the
	// address of the cab LAN interface when the screen is a separate device.
	Listen string
	// Hosts are the host names (or IP addresses) the display takes
	// state-changing requests (the acknowledge button) for, besides
	// loopback (localhost, 127.0.0.1, ::1) and Listen's own host: the name
	// or address the kiosk browser opens, e.g. "cab.local" or
	// "192.168.7.2". A request naming any other Host, as a page on a
	// rebinding DNS name would, is refused. No port: any port matches.
	Hosts []string
	// PageInterval is how often readings and uplink state are pushed to
	// the page at most. Alert transitions never wait for it. Default 250ms.
	PageInterval time.Duration
	// Heartbeat is how often an idle event stream sends a comment line, so
	// that the browser and any proxy see the connection alive. Default 15s.
	Heartbeat time.Duration
	// StaleAfter is how long after its last reading a value is shown as
	// "no data" instead of a number. Default 10s.
	StaleAfter time.Duration
	// ReadTimeout bounds reading one request, headers and body, so a
	// half-sent request cannot hold a connection (the event stream is
	// exempt once it runs). Default 15s.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write of events to a page; a page that stalls
	// longer is disconnected (it reconnects and re-syncs). Default 5s.
	WriteTimeout time.Duration
	// Bands are normal operating ranges drawn next to the engine and
	// cargo-tank temperatures, keyed by signal name ("coolant_temp",
	// "cargo_temp"), for a truck whose normal range is known beforehand.
	// Missing keys take the default, which has only the critical limit: the
	// page says the range is being learned and draws no range until
	// Server.SetBand sets the detector's learned one.
	Bands map[string]Band
	// Texts are the plain words the driver reads for each kind of alert,
	// keyed "signal/kind/severity" (e.g. "coolant_temp/limit/warning"),
	// "signal/kind" (any severity), "signal" (any kind of that signal), or
	// "*" for anything else. The most specific key wins. Keys missing here
	// take the defaults, so a config file need only list what it changes.
	Texts map[string]AlertText
	// Buzzer holds the on/off pattern per severity, used by the page's
	// audible alarm and the GPIO line alike.
	Buzzer BuzzerConfig
	// GPIO names an optional buzzer or lamp on a Linux GPIO line. Leave
	// Chip empty when the cab has none: the page still sounds its own alarm.
	GPIO GPIOConfig
}

// Band is a normal operating range of a temperature, in the signal's unit.
// Limit, when not zero, is the absolute limit beyond which the detector
// raises a critical alert; the page draws it as a red mark. Low == High
// (both zero) means the range is not known: only the limit is drawn.
type Band struct {
	Low, High float64
	Limit     float64
}

// AlertText is what the page says about one kind of alert, in plain words.
type AlertText struct {
	// Title is a few words in capitals across the top: "ENGINE OVERHEATING".
	Title string
	// What says what is wrong, in one sentence.
	What string
	// Do says what the driver should do now, in one or two sentences.
	Do string
}

// Pattern is a buzzer pattern: on, off, on, off, ... durations, repeated
// while the alert sounds. It has an even number of positive entries.
type Pattern []time.Duration

// BuzzerConfig holds one Pattern per severity. Nil patterns take the
// default.
type BuzzerConfig struct {
	Info, Warning, Critical Pattern
}

// forSeverity returns the pattern that sounds for s, nil for none.
func (b BuzzerConfig) forSeverity(s detect.Severity) Pattern {
	switch s {
	case detect.SeverityInfo:
		return b.Info
	case detect.SeverityWarning:
		return b.Warning
	case detect.SeverityCritical:
		return b.Critical
	}
	return nil
}

// GPIOConfig names a GPIO output line through the Linux GPIO character
// device.
type GPIOConfig struct {
	// Chip is the GPIO chip, by name ("gpiochip0") or path
	// ("/dev/gpiochip0"). Empty means no GPIO buzzer or lamp.
	Chip string
	// Line is the line offset on the chip.
	Line int
	// ActiveLow inverts the line: the buzzer sounds when it is driven low.
	ActiveLow bool
}

// Enabled reports whether a GPIO line is configured.
func (g GPIOConfig) Enabled() bool { return g.Chip != "" }

// DefaultConfig returns the configuration used for every field left at its
// zero value. It is the one place defaults are written down.
func DefaultConfig() Config {
	return Config{
		Listen:       "127.0.0.1:8081",
		PageInterval: 250 * time.Millisecond,
		Heartbeat:    15 * time.Second,
		StaleAfter:   10 * time.Second,
		WriteTimeout: 5 * time.Second,
		ReadTimeout:  15 * time.Second,
		Bands: map[string]Band{
			// No range until the gateway sets the learned band (SetBand):
			// a made-up one would look learned. The limits are the
			// detector's default critical limits.
			sensors.CoolantTemp.String(): {Limit: finiteOr(detect.DefaultConfig().Coolant.CritHigh, 0)},
			sensors.CargoTemp.String():   {Limit: finiteOr(detect.DefaultConfig().Cargo.CritHigh, 0)},
		},
		Texts: defaultTexts(),
		Buzzer: BuzzerConfig{
			// One short chirp every 30 s.
			Info: Pattern{150 * time.Millisecond, 29850 * time.Millisecond},
			// Two beeps every 3 s.
			Warning: Pattern{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 2100 * time.Millisecond},
			// Fast, continuous beeping: four per second.
			Critical: Pattern{125 * time.Millisecond, 125 * time.Millisecond},
		},
	}
}

func finiteOr(f, or float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return or
	}
	return f
}

func defaultTexts() map[string]AlertText {
	const (
		engine = "coolant_temp"
		cargo  = "cargo_temp"
	)
	return map[string]AlertText{
		engine + "/limit": {
			Title: "ENGINE OVERHEATING",
			What:  "The engine is hotter than its safe limit.",
			Do:    "Pull over and stop as soon as it is safe. Switch the engine off. Do not open the radiator cap. Call the fleet team.",
		},
		// Above the warning limit, below the critical one: the driver is
		// not yet told to stop (the critical text above does that).
		engine + "/limit/warning": {
			Title: "ENGINE NEAR ITS LIMIT",
			What:  "The engine is hotter than it should be, close to its safe limit.",
			Do:    "Ease off and watch the temperature. Be ready to stop where it is safe. Call the fleet team if it keeps rising.",
		},
		engine + "/deviation": {
			Title: "ENGINE RUNNING HOT",
			What:  "The engine temperature has been away from normal for more than 10 seconds.",
			Do:    "Ease off and watch the temperature. If it keeps rising, stop where it is safe and call the fleet team.",
		},
		engine + "/rate_of_rise": {
			Title: "ENGINE HEATING FAST",
			What:  "The engine temperature is rising quickly.",
			Do:    "Slow down and get ready to stop where it is safe. Call the fleet team.",
		},
		engine + "/stuck": {
			Title: "ENGINE SENSOR STUCK",
			What:  "The engine temperature reading has not changed for a long time. The sensor may be faulty.",
			Do:    "Watch the dashboard gauge instead. Tell the fleet team at your next stop.",
		},
		engine + "/missing": {
			Title: "NO ENGINE TEMPERATURE",
			What:  "The engine temperature sensor has stopped reporting.",
			Do:    "Watch the dashboard gauge instead. Tell the fleet team at your next stop.",
		},
		engine + "/volatility": {
			Title: "ENGINE TEMPERATURE UNSTEADY",
			What:  "The engine temperature is jumping up and down more than usual. A sensor or the cooling may be at fault.",
			Do:    "Watch the dashboard gauge. Tell the fleet team at your next stop.",
		},
		engine: {
			Title: "ENGINE TEMPERATURE ALERT",
			What:  "The engine temperature is not normal.",
			Do:    "Watch the dashboard gauge. Stop where it is safe if it gets worse, and call the fleet team.",
		},
		cargo + "/limit": {
			Title: "CARGO TANK TOO HOT",
			What:  "The fuel in the tank is hotter than its safe limit. There is a risk of fire.",
			Do:    "Stop as soon as it is safe, away from people, buildings and other vehicles. Switch the engine off, get out, keep well away and call 112 and the fleet team.",
		},
		cargo + "/limit/warning": {
			Title: "CARGO TANK GETTING HOT",
			What:  "The fuel in the tank is above its warning temperature, close to its safe limit.",
			Do:    "Plan to stop soon where it is safe, away from people and buildings. Call the fleet team.",
		},
		cargo + "/deviation": {
			Title: "CARGO TANK TEMPERATURE UNUSUAL",
			What:  "The tank temperature has been away from normal for more than 10 seconds.",
			Do:    "At the next safe stop, look and smell for smoke or leaks. Call the fleet team.",
		},
		cargo + "/rate_of_rise": {
			Title: "CARGO TANK HEATING FAST",
			What:  "The tank temperature is rising quickly. There is a risk of fire.",
			Do:    "Stop as soon as it is safe, away from people and buildings. Switch the engine off, get out, keep away and call the fleet team.",
		},
		cargo + "/stuck": {
			Title: "TANK SENSOR STUCK",
			What:  "The tank temperature reading has not changed for a long time. The sensor may be faulty.",
			Do:    "Drive on with care. Tell the fleet team at your next stop.",
		},
		cargo + "/missing": {
			Title: "NO TANK TEMPERATURE",
			What:  "The tank temperature sensor has stopped reporting.",
			Do:    "Drive on with care. Call the fleet team at your next stop.",
		},
		cargo + "/volatility": {
			Title: "TANK TEMPERATURE UNSTEADY",
			What:  "The tank temperature is jumping up and down more than usual. The sensor may be faulty.",
			Do:    "At the next safe stop, check the tank for smoke or leaks. Tell the fleet team.",
		},
		cargo: {
			Title: "CARGO TANK ALERT",
			What:  "The tank temperature is not normal.",
			Do:    "Stop where it is safe and check the tank. Call the fleet team.",
		},
		"*": {
			Title: "CHECK VEHICLE",
			What:  "A sensor reports something unusual.",
			Do:    "Stop where it is safe and call the fleet team.",
		},
	}
}

// withDefaults returns c with every zero field taken from DefaultConfig and
// the default texts and bands merged under c's own.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.PageInterval == 0 {
		c.PageInterval = d.PageInterval
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = d.StaleAfter
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	bands := d.Bands
	maps.Copy(bands, c.Bands)
	c.Bands = bands
	texts := d.Texts
	maps.Copy(texts, c.Texts)
	c.Texts = texts
	if c.Buzzer.Info == nil {
		c.Buzzer.Info = d.Buzzer.Info
	}
	if c.Buzzer.Warning == nil {
		c.Buzzer.Warning = d.Buzzer.Warning
	}
	if c.Buzzer.Critical == nil {
		c.Buzzer.Critical = d.Buzzer.Critical
	}
	return c
}

// Validate reports the first problem with c, naming the field. Zero fields
// are valid (they mean the default). It does no I/O.
func (c Config) Validate() error {
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			return fmt.Errorf("cab config: listen %q is not host:port", c.Listen)
		}
	}
	for _, h := range c.Hosts {
		if h == "" || strings.ContainsAny(h, " /:@") && net.ParseIP(h) == nil {
			return fmt.Errorf("cab config: hosts: %q is not a host name or IP address (no port, no scheme)", h)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"page_interval", c.PageInterval}, {"heartbeat", c.Heartbeat},
		{"stale_after", c.StaleAfter}, {"write_timeout", c.WriteTimeout}, {"read_timeout", c.ReadTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("cab config: %s must not be negative, got %v", d.name, d.v)
		}
	}
	if c.PageInterval != 0 && c.PageInterval < 20*time.Millisecond {
		return fmt.Errorf("cab config: page_interval must be at least 20ms, got %v", c.PageInterval)
	}
	for name, b := range c.Bands {
		s, err := sensors.ParseSignal(name)
		if err != nil || !s.IsTemperature() {
			return fmt.Errorf("cab config: bands: %q is not a temperature signal", name)
		}
		limitOnly := b.Low == 0 && b.High == 0 && b.Limit != 0
		if !(b.Low < b.High) && !limitOnly {
			return fmt.Errorf("cab config: bands.%s: low %v must be below high %v (or both left out, with a limit)", name, b.Low, b.High)
		}
	}
	for key, t := range c.Texts {
		if err := validTextKey(key); err != nil {
			return fmt.Errorf("cab config: texts: %w", err)
		}
		if strings.TrimSpace(t.Title) == "" || strings.TrimSpace(t.What) == "" || strings.TrimSpace(t.Do) == "" {
			return fmt.Errorf("cab config: texts.%s: title, what and do must all be set", key)
		}
	}
	for _, p := range []struct {
		name string
		p    Pattern
	}{{"info", c.Buzzer.Info}, {"warning", c.Buzzer.Warning}, {"critical", c.Buzzer.Critical}} {
		if p.p == nil {
			continue
		}
		if len(p.p) == 0 || len(p.p)%2 != 0 {
			return fmt.Errorf("cab config: buzzer.%s needs an even, non-zero number of on/off durations, got %d", p.name, len(p.p))
		}
		for i, d := range p.p {
			if d < 10*time.Millisecond {
				return fmt.Errorf("cab config: buzzer.%s[%d] must be at least 10ms, got %v", p.name, i, d)
			}
		}
	}
	if c.GPIO.Enabled() && c.GPIO.Line < 0 {
		return fmt.Errorf("cab config: gpio.line must not be negative, got %d", c.GPIO.Line)
	}
	if !c.GPIO.Enabled() && (c.GPIO.Line != 0 || c.GPIO.ActiveLow) {
		return fmt.Errorf("cab config: gpio.line or gpio.active_low set without gpio.chip")
	}
	return nil
}

// validTextKey checks a Texts key: "*", "signal", "signal/kind" or
// "signal/kind/severity".
func validTextKey(key string) error {
	if key == "*" {
		return nil
	}
	sig, rest, hasKind := strings.Cut(key, "/")
	if _, err := sensors.ParseSignal(sig); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	if hasKind {
		kind, sev, hasSev := strings.Cut(rest, "/")
		if _, ok := parseKind(kind); !ok {
			return fmt.Errorf("key %q: unknown alert kind %q", key, kind)
		}
		if hasSev && sev != detect.SeverityInfo.String() && sev != detect.SeverityWarning.String() && sev != detect.SeverityCritical.String() {
			return fmt.Errorf("key %q: severity %q, want info, warning or critical", key, sev)
		}
	}
	return nil
}

// parseKind returns the detect.Kind whose String is name.
func parseKind(name string) (detect.Kind, bool) {
	for k := detect.KindInvalid + 1; ; k++ {
		s := k.String()
		if strings.HasPrefix(s, "kind(") {
			return detect.KindInvalid, false
		}
		if s == name {
			return k, true
		}
	}
}

// textFor returns the most specific text for an alert on s of kind k at
// severity sev.
func (c *Config) textFor(s sensors.Signal, k detect.Kind, sev detect.Severity) AlertText {
	if t, ok := c.Texts[s.String()+"/"+k.String()+"/"+sev.String()]; ok {
		return t
	}
	return c.text(s, k)
}

// text returns the most specific text for an alert on s of kind k, of any
// severity.
func (c *Config) text(s sensors.Signal, k detect.Kind) AlertText {
	if t, ok := c.Texts[s.String()+"/"+k.String()]; ok {
		return t
	}
	if t, ok := c.Texts[s.String()]; ok {
		return t
	}
	return c.Texts["*"]
}
