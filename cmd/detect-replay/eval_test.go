package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

func TestResample(t *testing.T) {
	s := int64(time.Second)
	nan := math.NaN()
	// One signal at 1 Hz from 0 to 5 s, a gap, then 20 and 21 s; a second
	// one only at 0 and 21 s.
	rec := recording{Signals: []sensors.Signal{sensors.CoolantTemp, sensors.AmbientTemp},
		Times:  []int64{0, 1 * s, 2 * s, 3 * s, 4 * s, 5 * s, 20 * s, 21 * s},
		Values: [][]float64{{1, 7}, {2, nan}, {3, nan}, {4, nan}, {5, nan}, {6, nan}, {7, nan}, {8, 9}},
	}
	show := func(r recording) string {
		var b strings.Builder
		for i, t := range r.Times {
			fmt.Fprintf(&b, "%g:%v ", float64(t)/float64(s), r.Values[i])
		}
		return strings.TrimSpace(b.String())
	}
	cases := []struct {
		hz   float64
		want string
	}{
		// Down by time: every other sample; the gap stays a gap (held 3 s
		// at most, three median intervals). The second signal's median
		// interval is 21 s, so it is held across.
		{0.5, "0:[1 7] 2:[3 7] 4:[5 7] 6:[6 7] 8:[6 7] 10:[NaN 7] 12:[NaN 7] 14:[NaN 7] 16:[NaN 7] 18:[NaN 7] 20:[7 7]"},
		// Up by sample-and-hold: each value repeats until the next.
		{4, "0:[1 7] 0.25:[1 7] 0.5:[1 7] 0.75:[1 7] 1:[2 7]"},
	}
	for _, tc := range cases {
		got := show(resample(rec, tc.hz))
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%g Hz:\n got %s\nwant %s...", tc.hz, got, tc.want)
		}
	}
	// 1 Hz from 1 Hz is the recording itself where it has data.
	r1 := resample(recording{Signals: rec.Signals[:1], Times: rec.Times, Values: [][]float64{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}}, 1)
	if got := show(r1); got != "0:[1] 1:[2] 2:[3] 3:[4] 4:[5] 5:[6] 6:[6] 7:[6] 8:[6] 20:[7] 21:[8]" {
		t.Errorf("1 Hz: %s", got)
	}
}

// The recordings evaluation on testdata/vehicles: two KIT-layout trips
// (one with a 60 s logger stall) and one coolant clip with a 60 s gap.
// Every rate sees the stall and the gap as missing, and nothing else;
// trips.csv is metadata, not a trip.
func TestEvalRecordings(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-eval-recordings", "testdata/vehicles"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v (%s)", err, stderr.String())
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "EVAL" {
			t.Fatalf("not an EVAL line: %q", l)
		}
		got[f[1]] = f[2] + " " + f[3]
	}
	want := map[string]string{
		"kit_recordings":                "2 files",
		"kit_hours":                     "0.19 h",
		"j1939_recordings":              "1 files",
		"kit/trip_stall_alerts_own":     "1 alerts",
		"kit/trip_stall_alerts_10hz":    "1 alerts",
		"j1939/clip_gap60_alerts_0.5hz": "1 alerts",
		"kit_readings_own":              "2674 readings",
		// Held: the 6 empty ambient cells, and 3 s into the coolant and
		// ambient dropout for those 2 signals.
		"kit_readings_1hz":                 "2686 readings",
		"kit_recordings_with_alerts_2hz":   "1 files",
		"j1939_recordings_with_alerts_own": "1 files",
		"j1939_alerts_own_missing":         "1 alerts",
		"detect_replay_eval_seconds":       "",
	}
	for _, rate := range []string{"own", "0.5hz", "1hz", "2hz", "10hz"} {
		want["kit_alerts_"+rate] = "1 alerts"
		want["kit_alerts_"+rate+"_missing"] = "1 alerts"
		want["j1939_alerts_"+rate] = "1 alerts"
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok || (v != "" && g != v) {
			t.Errorf("EVAL %s = %q, want %q", k, g, v)
		}
	}
	if _, ok := got["kit/trip_quiet_alerts_own"]; ok {
		t.Error("a recording without alerts is listed")
	}
	for k := range got {
		if strings.Contains(k, "deviation") || strings.Contains(k, "rate_of_rise") {
			t.Errorf("unexpected kind: %s", k)
		}
	}
}

// The generic class's false alerts on testdata/nab: a wave with no
// anomaly (8.25 h, no alert); a series with a jump inside its labelled
// window (row 120, window rows 110-130) and one outside it (row 170).
// Replayed whole, only the jump at 170 is outside; replayed as stretches
// outside the window, the fresh detector of rows 131-199 flags it too.
func TestEvalNABFalseAlerts(t *testing.T) {
	var out bytes.Buffer
	if err := evalNAB(evalOptions{nab: "testdata/nab", noScore: true}, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"EVAL generic_no_anomaly_alerts 0 alerts",
		"EVAL generic_no_anomaly_hours 8.2 h",
		"EVAL generic_outside_windows_files 2 files",
		"EVAL generic_outside_windows_alerts 1 alerts",
		"EVAL generic_outside_windows_hours 23.2 h", // 8.25 + 16.58 - the window's 1.67
		"EVAL generic_segments 3 segments",
		"EVAL generic_segments_alerts 1 alerts",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w+"\n") {
			t.Errorf("want %q in:\n%s", w, out.String())
		}
	}
}
