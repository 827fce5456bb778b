package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestTruckIDMatchesFirmwareSim(t *testing.T) {
	tests := []struct {
		name string
		i, n int
		want string
	}{
		{"two digits at least", 3, 5, "truck-03"},
		{"ninety-nine", 99, 99, "truck-99"},
		{"a thousand trucks", 7, 1000, "truck-0007"},
		{"last of a thousand", 1000, 1000, "truck-1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := truckID(tc.i, tc.n); got != tc.want {
				t.Errorf("truckID(%d, %d) = %q, want %q", tc.i, tc.n, got, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		name string
		p    float64
		want float64
	}{
		{"median", 50, 5}, {"p90", 90, 9}, {"p99", 99, 10}, {"max", 100, 10}, {"min", 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(v, tc.p); got != tc.want {
				t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestParseExposition(t *testing.T) {
	text := `# HELP tankguard_cloud_readings_total Readings accepted.
# TYPE tankguard_cloud_readings_total counter
tankguard_cloud_readings_total 12345
tankguard_cloud_rejected_total{cause="duplicate_reading"} 7
go_gc_duration_seconds{quantile="0.5"} 1.5e-05
not a sample line
`
	got, err := parseExposition(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"tankguard_cloud_readings_total":                            12345,
		`tankguard_cloud_rejected_total{cause="duplicate_reading"}`: 7,
		`go_gc_duration_seconds{quantile="0.5"}`:                    1.5e-05,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d series, want 3: %v", len(got), got)
	}
}

func TestParseStatTicks(t *testing.T) {
	tests := []struct {
		name, stat string
		want       int64
		wantErr    bool
	}{
		{"plain", "1234 (gateway) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 325, false},
		{"name with spaces and parens", "99 (my (odd) proc) R 1 99 99 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 7, false},
		{"truncated", "99 (x) R 1 2", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatTicks([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// Observation 8 of issue 18: make load LOAD_DURATION=30s ran and reported
// "0 alerts raised": its overheats start 45 s or more into the window. A
// window too short for the alerts asked for is an error that says why;
// one that fits, or -alerts 0, passes this check.
func TestWindowTooShortForAlerts(t *testing.T) {
	err := run([]string{"-trucks", "1000", "-duration", "30s"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "too short for -alerts 20") || !strings.Contains(err.Error(), "-alerts 0") {
		t.Fatalf("30 s window with 20 overheats: %v, want an error saying the window is too short", err)
	}
	min := minDuration(20)
	if offs := overheatOffsets(20, min); offs[19]+overheatNotice > min || min > 2*time.Minute {
		t.Fatalf("minDuration(20) = %v: last overheat at %v; the default 2m window must fit", min, offs[19])
	}
	for _, args := range [][]string{{"-duration", "30s", "-alerts", "0"}, {"-duration", min.String()}} {
		err := run(append(args, "-bin", t.TempDir()), io.Discard)
		if err == nil || strings.Contains(err.Error(), "too short") {
			t.Errorf("%v: %v, want past the window check (to the missing binaries)", args, err)
		}
	}
}
