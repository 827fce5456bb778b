package main

import (
	"strconv"
	"strings"
	"testing"
)

// 2021-06-01T11:43:50.165Z
const tsNs = 1622547830165000000

var timeCases = []struct {
	name string
	in   string
	want int64 // Unix ns; ignored when err is set
	err  string
}{
	{"unix seconds", "1622547830", 1622547830e9, ""},
	{"unix seconds with ms", "1622547830.165", tsNs, ""},
	{"unix seconds with ns", "1622547830.165000001", tsNs + 1, ""},
	{"unix seconds, digits past ns dropped", "1622547830.1650000019", tsNs + 1, ""},
	{"unix milliseconds", "1622547830165", tsNs, ""},
	{"unix milliseconds with µs", "1622547830165.5", tsNs + 500e3, ""},
	{"unix microseconds", "1622547830165000", tsNs, ""},
	{"unix nanoseconds (firmware-sim truth.csv)", "1622547830165000000", tsNs, ""},
	{"small seconds", "0", 0, ""},
	{"spaces trimmed", " 1622547830 ", 1622547830e9, ""},
	{"RFC 3339", "2021-06-01T11:43:50.165Z", tsNs, ""},
	{"RFC 3339 with offset", "2021-06-01T13:43:50.165+02:00", tsNs, ""},
	{"NAB layout", "2021-06-01 11:43:50", 1622547830e9, ""},
	{"NAB layout with fraction", "2021-06-01 11:43:50.165000", tsNs, ""},
	{"T without zone", "2021-06-01T11:43:50", 1622547830e9, ""},
	{"empty", "", 0, "empty timestamp"},
	{"words", "yesterday", 0, `"yesterday"`},
	{"negative", "-5", 0, "negative"},
	{"two dots", "1.2.3", 0, "malformed"},
	{"trailing dot", "12.", 0, "malformed"},
	{"exponent", "1.6e9", 0, `"1.6e9"`},
	{"nanoseconds with fraction", "1622547830165000000.5", 0, "fraction"},
	{"beyond int64", "99999999999999999999", 0, "out of range"},
	{"seconds beyond 2262", "99999999999", 0, "2262"},
	{"year out of range", "3000-01-01T00:00:00Z", 0, "year"},
	{"NaN", "NaN", 0, `"NaN"`},
}

func TestParseTime(t *testing.T) {
	for _, tc := range timeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTime(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseTime(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseTime(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzParseTime: never panics; an error names the input; a Unix number is
// read in exactly one unit, so the nanoseconds it gives, written out,
// read back the same.
func FuzzParseTime(f *testing.F) {
	for _, tc := range timeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := parseTime(s)
		if err != nil {
			if ns != 0 {
				t.Fatalf("parseTime(%q) failed but returned %d", s, ns)
			}
			if trimmed := strings.TrimSpace(s); trimmed != "" && !strings.Contains(err.Error(), strconv.Quote(trimmed)) {
				t.Fatalf("parseTime(%q): error %q does not name the input", s, err)
			}
			return
		}
		trimmed := strings.TrimSpace(s)
		if strings.IndexFunc(trimmed, notUnixChar) >= 0 {
			return // a layout; its own round trip is time.Parse's business
		}
		if ns < 0 {
			t.Fatalf("parseTime(%q) = %d: a Unix number gave a negative time", s, ns)
		}
		if ns >= unixNsFrom {
			back, err := parseTime(strconv.FormatInt(ns, 10))
			if err != nil || back != ns {
				t.Fatalf("parseTime(%q) = %d; as ns it reads back %d, %v", s, ns, back, err)
			}
		}
	})
}
