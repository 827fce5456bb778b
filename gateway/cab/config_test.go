package cab

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestConfigValidate(t *testing.T) {
	ok := AlertText{Title: "T", What: "W", Do: "D"}
	tests := []struct {
		name string
		cfg  Config
		err  string // "" for valid
	}{
		{"zero is defaults", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"listen any host", Config{Listen: ":8081"}, ""},
		{"listen no port", Config{Listen: "127.0.0.1"}, "listen"},
		{"negative heartbeat", Config{Heartbeat: -time.Second}, "heartbeat"},
		{"page interval too short", Config{PageInterval: time.Millisecond}, "page_interval"},
		{"band of speed", Config{Bands: map[string]Band{"wheel_speed": {Low: 0, High: 90}}}, "not a temperature"},
		{"band upside down", Config{Bands: map[string]Band{"cargo_temp": {Low: 40, High: 10}}}, "bands.cargo_temp"},
		{"text by signal and kind", Config{Texts: map[string]AlertText{"cargo_temp/stuck": ok}}, ""},
		{"text by signal", Config{Texts: map[string]AlertText{"coolant_temp": ok}}, ""},
		{"text fallback", Config{Texts: map[string]AlertText{"*": ok}}, ""},
		{"text unknown signal", Config{Texts: map[string]AlertText{"tyre_temp/limit": ok}}, `"tyre_temp/limit"`},
		{"text unknown kind", Config{Texts: map[string]AlertText{"coolant_temp/fire": ok}}, `unknown alert kind "fire"`},
		{"text without do", Config{Texts: map[string]AlertText{"coolant_temp/limit": {Title: "T", What: "W"}}}, "texts.coolant_temp/limit"},
		{"buzzer odd", Config{Buzzer: BuzzerConfig{Warning: Pattern{time.Second}}}, "buzzer.warning"},
		{"buzzer empty", Config{Buzzer: BuzzerConfig{Critical: Pattern{}}}, "buzzer.critical"},
		{"buzzer too short", Config{Buzzer: BuzzerConfig{Info: Pattern{time.Millisecond, time.Second}}}, "buzzer.info[0]"},
		{"gpio", Config{GPIO: GPIOConfig{Chip: "gpiochip0", Line: 17, ActiveLow: true}}, ""},
		{"gpio negative line", Config{GPIO: GPIOConfig{Chip: "gpiochip0", Line: -1}}, "gpio.line"},
		{"gpio line without chip", Config{GPIO: GPIOConfig{Line: 4}}, "without gpio.chip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate: %v, want an error naming %q", err, tc.err)
			}
			if _, nerr := New(tc.cfg, "T1", nil); (nerr == nil) != (tc.err == "") {
				t.Errorf("New: %v, want error %v", nerr, tc.err != "")
			}
		})
	}
}

func TestNewEmptyTruck(t *testing.T) {
	if _, err := New(Config{}, "", nil); err == nil {
		t.Fatal("New with an empty truck succeeded")
	}
}

// Every default text of the watched signals is complete, and a config's
// own texts win over the defaults, most specific first.
func TestTexts(t *testing.T) {
	d := DefaultConfig()
	for _, sig := range []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp} {
		for k := detect.KindInvalid + 1; ; k++ {
			if _, ok := parseKind(k.String()); !ok {
				break // past the last kind
			}
			if _, ok := d.Texts[sig.String()+"/"+k.String()]; !ok {
				t.Errorf("no default text for %s/%s", sig, k)
			}
		}
	}
	mine := AlertText{Title: "MINE", What: "w", Do: "d"}
	cfg := Config{Texts: map[string]AlertText{"cargo_temp": mine}}.withDefaults()
	tests := []struct {
		name  string
		sig   sensors.Signal
		kind  detect.Kind
		title string
	}{
		{"specific default beats my signal-wide text", sensors.CargoTemp, detect.KindLimit, "CARGO TANK TOO HOT"},
		{"my signal-wide text", sensors.CargoTemp, detect.Kind(200), "MINE"},
		{"fallback", sensors.WheelSpeed, detect.KindLimit, "CHECK VEHICLE"},
		{"coolant limit", sensors.CoolantTemp, detect.KindLimit, "ENGINE OVERHEATING"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cfg.text(tc.sig, tc.kind).Title; got != tc.title {
				t.Errorf("text(%s, %s) = %q, want %q", tc.sig, tc.kind, got, tc.title)
			}
		})
	}
}

func TestParseAckRequest(t *testing.T) {
	tests := []struct {
		name, body string
		key        string
		sev        detect.Severity
		bad        bool
	}{
		{"ok", `{"key":"T1/coolant_temp/5","severity":"critical"}`, "T1/coolant_temp/5", detect.SeverityCritical, false},
		{"warning", `{"severity":"warning","key":"k"}`, "k", detect.SeverityWarning, false},
		{"info", `{"key":"k","severity":"info"}`, "k", detect.SeverityInfo, false},
		{"trailing space", "{\"key\":\"k\",\"severity\":\"info\"}\n", "k", detect.SeverityInfo, false},
		{"empty", ``, "", 0, true},
		{"null", `null`, "", 0, true},
		{"array", `[]`, "", 0, true},
		{"number key", `{"key":5,"severity":"info"}`, "", 0, true},
		{"unknown field", `{"key":"k","severity":"info","by":"x"}`, "", 0, true},
		{"none severity", `{"key":"k","severity":"none"}`, "", 0, true},
		{"upper severity", `{"key":"k","severity":"CRITICAL"}`, "", 0, true},
		{"garbage after", `{"key":"k","severity":"info"} x`, "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, sev, err := parseAckRequest([]byte(tc.body))
			if tc.bad {
				if err == nil || !errors.Is(err, ErrBadRequest) {
					t.Fatalf("parse: %v, want ErrBadRequest", err)
				}
				return
			}
			if err != nil || key != tc.key || sev != tc.sev {
				t.Fatalf("parse = %q %v %v, want %q %v", key, sev, err, tc.key, tc.sev)
			}
		})
	}
}

func FuzzParseAckRequest(f *testing.F) {
	for _, seed := range []string{
		`{"key":"T1/coolant_temp/5","severity":"critical"}`, `{"severity":"warning","key":"k"}`,
		``, `null`, `{"key":"k","severity":"none"}`, `{"key":"k","severity":"info"} x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, sev, err := parseAckRequest(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if key == "" || sev < detect.SeverityInfo || sev > detect.SeverityCritical {
			t.Fatalf("accepted key %q severity %v", key, sev)
		}
	})
}

func TestParseConfig(t *testing.T) {
	full := `{
	  "listen": "0.0.0.0:8081",
	  "page_interval": "200ms", "heartbeat": "10s", "stale_after": "5s", "write_timeout": "2s",
	  "texts": {"cargo_temp/limit": {"title": "TANK TOO HOT", "what": "Hot.", "do": "Stop."}},
	  "bands": {"coolant_temp": {"low": 75, "high": 98, "limit": 110}},
	  "buzzer": {"critical": ["200ms", "200ms"]},
	  "gpio": {"chip": "gpiochip0", "line": 17, "active_low": true}
	}`
	tests := []struct {
		name string
		json string
		err  string
		want func(c Config) bool
	}{
		{"full", full, "", func(c Config) bool {
			return c.Listen == "0.0.0.0:8081" && c.PageInterval == 200*time.Millisecond && c.Heartbeat == 10*time.Second &&
				c.StaleAfter == 5*time.Second && c.WriteTimeout == 2*time.Second &&
				c.Texts["cargo_temp/limit"].Title == "TANK TOO HOT" && len(c.Texts) == 1 &&
				c.Bands["coolant_temp"] == Band{Low: 75, High: 98, Limit: 110} &&
				len(c.Buzzer.Critical) == 2 && c.Buzzer.Critical[0] == 200*time.Millisecond && c.Buzzer.Warning == nil &&
				c.GPIO == GPIOConfig{Chip: "gpiochip0", Line: 17, ActiveLow: true}
		}},
		{"empty object", `{}`, "", func(c Config) bool { return c.Listen == "" && c.Texts == nil && c.Buzzer.Info == nil }},
		{"unknown field", `{"listen":"127.0.0.1:1","colour":"red"}`, `unknown field "colour"`, nil},
		{"duration as number", `{"heartbeat": 15}`, "duration must be a string", nil},
		{"bad duration", `{"heartbeat": "soon"}`, `"soon"`, nil},
		{"bad text key", `{"texts": {"oil/limit": {"title":"a","what":"b","do":"c"}}}`, `"oil/limit"`, nil},
		{"text missing do", `{"texts": {"coolant_temp": {"title":"a","what":"b"}}}`, "texts.coolant_temp", nil},
		{"odd pattern", `{"buzzer": {"warning": ["1s"]}}`, "buzzer.warning", nil},
		{"two values", `{} {}`, "more than one", nil},
		{"not an object", `[]`, "cab config", nil},
		{"empty", ``, "cab config", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseConfig: %v, want an error naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Errorf("ParseConfig = %+v", c)
			}
			if _, err := New(c, "T1", nil); err != nil {
				t.Errorf("New with the parsed config: %v", err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"listen":"127.0.0.1:1","colour":"red"}`, `{"heartbeat": "15s"}`, `{"buzzer": {"warning": ["1s","2s"]}}`,
		`{"texts": {"coolant_temp": {"title":"a","what":"b","do":"c"}}}`, `{"bands": {"cargo_temp": {"low": 1, "high": 2}}}`,
		`{"gpio": {"chip": "gpiochip0", "line": 3}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate rejects: %v", err)
		}
		if _, err := New(c, "T1", nil); err != nil {
			t.Fatalf("New rejected a parsed config: %v", err)
		}
	})
}

// A stray closing brace after the object used to pass json.Decoder.More.
func TestParseConfigTrailingBrace(t *testing.T) {
	if _, err := ParseConfig([]byte(`{}}`)); err == nil {
		t.Fatal(`ParseConfig accepted "{}}"`)
	}
	if _, _, err := parseAckRequest([]byte(`{"key":"k","severity":"warning"}}`)); err == nil {
		t.Fatal("parseAckRequest accepted a trailing brace")
	}
}

// Texts may be keyed by severity: the warning at a limit does not tell
// the driver to pull over; the critical does.
func TestTextBySeverity(t *testing.T) {
	cfg := Config{}.withDefaults()
	warn := cfg.textFor(sensors.CoolantTemp, detect.KindLimit, detect.SeverityWarning)
	crit := cfg.textFor(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical)
	if strings.Contains(warn.Do, "Pull over") || !strings.Contains(crit.Do, "Pull over") {
		t.Errorf("limit warning %q, critical %q: only the critical says to pull over", warn.Do, crit.Do)
	}
	for key, ok := range map[string]bool{"coolant_temp/limit/warning": true, "cargo_temp/deviation/critical": true, "coolant_temp/limit/loud": false, "coolant_temp/hot/warning": false} {
		if err := validTextKey(key); (err == nil) != ok {
			t.Errorf("validTextKey(%q) = %v, want ok %v", key, err, ok)
		}
	}
}
