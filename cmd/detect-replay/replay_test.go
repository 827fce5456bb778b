package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// testdata/coolant_gap60.{csv,log} is one recording (coolant at 1 Hz, 2021)
// with a 60 s gap: readings at +0..+119 s and +180..+239 s.
var (
	gapStart = time.Unix(1622547830, 250e6).UTC()
	gapRaise = gapStart.Add(119*time.Second + 31*time.Second) // first 1 s check past the 30 s grace
	gapClear = gapStart.Add(180 * time.Second)
)

// transitions runs detect-replay with args and returns the transition
// lines it printed.
func transitions(t *testing.T, args ...string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("detect-replay %q: %v (%s)", args, err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "time=") {
			lines = append(lines, l)
		}
	}
	return lines
}

func wantGap(t *testing.T, signal string, got []string) {
	t.Helper()
	want := []string{
		fmt.Sprintf("time=%s signal=%s phase=raised kind=missing", gapRaise.Format(time.RFC3339Nano), signal),
		fmt.Sprintf("time=%s signal=%s phase=cleared kind=missing", gapClear.Format(time.RFC3339Nano), signal),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d transitions, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("transition %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
}

// The recording's 60 s gap raises missing on the data's clock, once,
// cleared by the next reading; the end of the recording raises nothing.
// The same in every timestamp unit, and from the candump log.
func TestReplayGapRaisesMissing(t *testing.T) {
	wantGap(t, "coolant", transitions(t, "-in", "testdata/coolant_gap60.csv", "-class", "coolant", "-transitions"))
	wantGap(t, "coolant_temp", transitions(t, "-in", "testdata/coolant_gap60.log", "-class", "truck"))

	raw, err := os.ReadFile("testdata/coolant_gap60.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, unit := range []struct {
		name string
		conv func(ns int64) string
	}{
		{"ms", func(ns int64) string { return fmt.Sprint(ns / 1e6) }},
		{"us", func(ns int64) string { return fmt.Sprint(ns / 1e3) }},
		{"ns", func(ns int64) string { return fmt.Sprint(ns) }},
		{"rfc3339", func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }},
	} {
		t.Run(unit.name, func(t *testing.T) {
			var b strings.Builder
			for i, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				if i == 0 {
					b.WriteString(l + "\n")
					continue
				}
				ts, v, _ := strings.Cut(l, ",")
				ns, err := parseTime(ts)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s,%s\n", unit.conv(ns), v)
			}
			in := filepath.Join(t.TempDir(), "gap.csv")
			os.WriteFile(in, []byte(b.String()), 0o644)
			wantGap(t, "coolant", transitions(t, "-in", in, "-class", "coolant", "-transitions"))
		})
	}
}

// Without missing_after (the generic class) a gap raises nothing.
func TestReplayGapWithoutMissingAfter(t *testing.T) {
	if got := transitions(t, "-in", "testdata/coolant_gap60.csv", "-transitions"); len(got) != 0 {
		t.Fatalf("generic class: %q", got)
	}
}

// A timestamp or value that cannot be read stops the replay with an
// error naming the file and line; nothing is scored 0 silently.
func TestReplayRefusesBadRows(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, csv, class, want string
	}{
		{"bad timestamp", "timestamp,value\n1622547830,90\nlater,91\n", "coolant", `line 3: timestamp "later"`},
		{"bad value", "timestamp,value\n1622547830,90\n1622547831,hot\n", "generic", `line 3: value "hot"`},
		{"infinite value", "timestamp,value\n1622547830,Inf\n", "generic", `line 2: value "Inf"`},
		{"several signals", "truck,signal,time_unix_ns,value\nt1,coolant_temp,1622547830000000000,90\n", "coolant", "line 1: a signal column"},
		{"truck bad cell", "time_unix_s,coolant_c\n1622547830,90\n1622547831,9O\n", "truck", `line 3: column coolant_c: value "9O"`},
		{"truck bad time", "time_unix_s,coolant_c\n1622547830,90\n-1622547831,91\n", "truck", `line 3: timestamp "-1622547831": negative`},
		{"truck short row", "time_unix_s,coolant_c\n1622547830\n", "truck", `line 2: 1 fields, header has 2`},
		{"truck no signal", "time_unix_s,torque\n1622547830,90\n", "truck", `line 1: no signal column`},
		{"truck no time", "when,coolant_c\n1622547830,90\n", "truck", `line 1: no time column`},
		{"candump garbage", "(1622547830.000000) can0 18FEEE00#82FFFFFFFFFFFFFF\n(1622547831.000000) can0 zz\n", "truck", `line 2: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".csv")
			os.WriteFile(in, []byte(tc.csv), 0o644)
			var stdout, stderr bytes.Buffer
			err := run([]string{"-in", in, "-class", tc.class}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), in+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v; want one naming %s and %q", err, in, tc.want)
			}
		})
	}
}

// An empty value is no reading: the row keeps the last score and is
// counted, and no reading is invented.
func TestReplayEmptyValue(t *testing.T) {
	var out bytes.Buffer
	p := &replayer{cfg: detect.DefaultGenericConfig()}
	st, err := p.replay("x.csv", strings.NewReader("timestamp,value\n1,5\n2,\n3,6\n"), &out)
	if err != nil || st.Rows != 3 || st.NoValue != 1 {
		t.Fatalf("%+v, %v", st, err)
	}
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Fatalf("%d output lines, want header + 3:\n%s", n, out.String())
	}
}

// Truck mode: named columns go to their signals, empty cells are no
// answer, unknown columns are ignored and said so; coolant lost for 60 s
// while engine speed keeps coming raises missing on the data's clock.
func TestTruckMode(t *testing.T) {
	in := "testdata/vehicles/kit/trip_stall.csv"
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-class", "truck", "-in", in}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "columns ignored (no signal): intake_air_c") {
		t.Errorf("stderr %q: want the ignored column named", stderr.String())
	}
	// 340 rows with data: 4 signals each, minus 6 empty ambient cells; 60
	// rows with only engine speed and wheel speed.
	if !strings.Contains(stderr.String(), "400 rows, 1474 readings, 1 alerts raised (missing 1)") {
		t.Errorf("summary %q", stderr.String())
	}
	got := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	stall := time.Unix(1499231790+199, 0).UTC()
	if len(got) != 2 || !strings.HasPrefix(got[0], "time="+stall.Add(31*time.Second).Format(time.RFC3339Nano)+" signal=coolant_temp phase=raised kind=missing") ||
		!strings.Contains(got[1], "phase=cleared kind=missing") {
		t.Fatalf("transitions:\n%s", stdout.String())
	}

	// -transitions prints them to stdout also when -out takes them.
	stdout.Reset()
	out := filepath.Join(t.TempDir(), "o.txt")
	if err := run([]string{"-class", "truck", "-in", in, "-transitions", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if printed := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(printed) != 2 || string(saved) != stdout.String() {
		t.Errorf("-transitions -out: stdout %q, file %q", stdout.String(), saved)
	}

	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, _, err := readRecording(in, f, sensors.SignalInvalid)
	if err != nil || len(recs) != 1 {
		t.Fatal(len(recs), err)
	}
	rec := recs[0]
	want := []sensors.Signal{sensors.CoolantTemp, sensors.AmbientTemp, sensors.EngineSpeed, sensors.WheelSpeed}
	if fmt.Sprint(rec.Signals) != fmt.Sprint(want) {
		t.Errorf("signals %v, want %v", rec.Signals, want)
	}
	if r := rec.Values[100]; r[2] != 0 || r[0] != 91 || r[3] != 0 {
		t.Errorf("row 100 (engine off) %v", r)
	}
}

func TestTruckConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"coolant": {"missing_after": "0s"}}`), 0o644)
	if got := transitions(t, "-class", "truck", "-in", "testdata/vehicles/kit/trip_stall.csv", "-config", cfg); len(got) != 0 {
		t.Fatalf("missing_after 0 still raised: %q", got)
	}
	os.WriteFile(cfg, []byte(`{"coolant": {"missing_afterr": "0s"}}`), 0o644)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-class", "truck", "-in", "testdata/vehicles/kit/trip_stall.csv", "-config", cfg}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "missing_afterr") {
		t.Fatalf("bad config: %v", err)
	}
}

// firmware-sim's truth.csv (truck,signal,time_unix_ns,value): Unix ns read
// right, one detector per truck, the gap only on truck-02, GNSS rows left
// out.
func TestTruckModeTruth(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-class", "truck", "-in", "testdata/truth.csv"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	gap := time.Unix(1764806400+59, 1000).UTC()
	if len(got) != 2 || !strings.HasPrefix(got[0], "time="+gap.Add(31*time.Second).Format(time.RFC3339Nano)+" signal=coolant_temp phase=raised kind=missing") ||
		!strings.HasSuffix(got[0], "truck=truck-02") || !strings.Contains(got[1], "phase=cleared kind=missing") {
		t.Fatalf("transitions:\n%s", stdout.String())
	}
	for _, want := range []string{"truck truck-01: 180 rows, 180 readings, 0 alerts", "truck truck-02: 120 rows, 120 readings, 1 alerts raised (missing 1)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q: want %q", stderr.String(), want)
		}
	}
}
