package cab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ParseConfig decodes a cab configuration from JSON, as cmd/ reads it from
// the gateway's config file, and validates it. Unknown fields are errors.
// Durations are strings ("250ms", "15s"). Fields left out stay zero, so New
// gives them their defaults; texts and bands listed replace only those
// keys. Example:
//
//	{
//	  "listen": "0.0.0.0:8081",
//	  "page_interval": "250ms",
//	  "texts": {
//	    "cargo_temp/limit": {"title": "TANK TOO HOT", "what": "...", "do": "..."}
//	  },
//	  "bands": {"coolant_temp": {"low": 75, "high": 98, "limit": 110}},
//	  "buzzer": {"critical": ["200ms", "200ms"]},
//	  "gpio": {"chip": "gpiochip0", "line": 17, "active_low": false}
//	}
func ParseConfig(data []byte) (Config, error) {
	var f struct {
		Listen       string              `json:"listen"`
		Hosts        []string            `json:"hosts"`
		ReadTimeout  duration            `json:"read_timeout"`
		PageInterval duration            `json:"page_interval"`
		Heartbeat    duration            `json:"heartbeat"`
		StaleAfter   duration            `json:"stale_after"`
		WriteTimeout duration            `json:"write_timeout"`
		Bands        map[string]fileBand `json:"bands"`
		Texts        map[string]fileText `json:"texts"`
		Buzzer       struct {
			Info     []duration `json:"info"`
			Warning  []duration `json:"warning"`
			Critical []duration `json:"critical"`
		} `json:"buzzer"`
		GPIO struct {
			Chip      string `json:"chip"`
			Line      int    `json:"line"`
			ActiveLow bool   `json:"active_low"`
		} `json:"gpio"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Config{}, fmt.Errorf("cab config: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("cab config: more than one JSON value, or trailing data")
	}
	c := Config{
		Listen:       f.Listen,
		Hosts:        f.Hosts,
		ReadTimeout:  time.Duration(f.ReadTimeout),
		PageInterval: time.Duration(f.PageInterval),
		Heartbeat:    time.Duration(f.Heartbeat),
		StaleAfter:   time.Duration(f.StaleAfter),
		WriteTimeout: time.Duration(f.WriteTimeout),
		Buzzer: BuzzerConfig{
			Info: pattern(f.Buzzer.Info), Warning: pattern(f.Buzzer.Warning), Critical: pattern(f.Buzzer.Critical),
		},
		GPIO: GPIOConfig{Chip: f.GPIO.Chip, Line: f.GPIO.Line, ActiveLow: f.GPIO.ActiveLow},
	}
	if f.Bands != nil {
		c.Bands = make(map[string]Band, len(f.Bands))
		for k, b := range f.Bands {
			c.Bands[k] = Band(b)
		}
	}
	if f.Texts != nil {
		c.Texts = make(map[string]AlertText, len(f.Texts))
		for k, t := range f.Texts {
			c.Texts[k] = AlertText(t)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

type fileBand struct {
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Limit float64 `json:"limit"`
}

type fileText struct {
	Title string `json:"title"`
	What  string `json:"what"`
	Do    string `json:"do"`
}

// duration is a time.Duration written as a string in JSON: "250ms".
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// pattern converts a decoded pattern; nil (left out) stays nil.
func pattern(ds []duration) Pattern {
	if ds == nil {
		return nil
	}
	p := make(Pattern, len(ds))
	for i, d := range ds {
		p[i] = time.Duration(d)
	}
	return p
}
