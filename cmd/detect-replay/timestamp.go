package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Unix timestamps are told apart by magnitude (of the integer part):
// below 1e11 they are seconds (up to the year 5138, far beyond any
// recording), below 1e14 milliseconds, below 1e17 microseconds, and from
// there nanoseconds. So 1e11 ms is 1973-03-03 and anything a logger wrote
// after that reads right in every unit; seconds before 1973 read as
// seconds too. A fraction is allowed in s, ms and µs, never in ns.
const (
	unixMsFrom = 1e11
	unixUsFrom = 1e14
	unixNsFrom = 1e17
)

var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano}

// parseTime reads a timestamp as Unix ns: Unix seconds, milliseconds,
// microseconds or nanoseconds (by magnitude, above), RFC 3339, or
// "2006-01-02 15:04:05" / "2006-01-02T15:04:05" (UTC, optional fraction).
// Anything else, a negative time, or one beyond what int64 nanoseconds
// hold (the year 2262) is an error saying what was wrong; never 0.
func parseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty timestamp")
	}
	if s[0] >= '0' && s[0] <= '9' && strings.IndexFunc(s, notUnixChar) < 0 {
		return parseUnix(s)
	}
	if strings.HasPrefix(s, "-") && strings.IndexFunc(s[1:], notUnixChar) < 0 {
		return 0, fmt.Errorf("timestamp %q: negative Unix time", s)
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1678 || t.Year() > 2261 {
				return 0, fmt.Errorf("timestamp %q: year out of range 1678..2261", s)
			}
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q: want Unix s/ms/µs/ns or RFC 3339 (2006-01-02T15:04:05Z)", s)
}

func notUnixChar(r rune) bool { return (r < '0' || r > '9') && r != '.' }

// parseUnix reads DIGITS[.DIGITS] exactly (no float rounding).
func parseUnix(s string) (int64, error) {
	ip, frac, hasFrac := strings.Cut(s, ".")
	if ip == "" || (hasFrac && (frac == "" || strings.Contains(frac, "."))) {
		return 0, fmt.Errorf("timestamp %q: malformed number", s)
	}
	n, err := strconv.ParseUint(ip, 10, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("timestamp %q: out of range", s)
	}
	var unit uint64 // ns per unit
	switch {
	case n < unixMsFrom:
		unit = 1e9
	case n < unixUsFrom:
		unit = 1e6
	case n < unixNsFrom:
		unit = 1e3
	default:
		if hasFrac {
			return 0, fmt.Errorf("timestamp %q: Unix nanoseconds with a fraction", s)
		}
		return int64(n), nil
	}
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("timestamp %q: beyond the year 2262", s)
	}
	ns := n * unit
	// The fraction, to the nanosecond; digits past it are dropped.
	var f uint64
	scale := unit
	for i := 0; i < len(frac) && scale > 1; i++ {
		scale /= 10
		f += uint64(frac[i]-'0') * scale
	}
	if ns > math.MaxInt64-f {
		return 0, fmt.Errorf("timestamp %q: beyond the year 2262", s)
	}
	return int64(ns + f), nil
}
