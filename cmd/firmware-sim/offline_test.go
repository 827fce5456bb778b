package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// TestOfflineMatchesGolden runs `firmware-sim -offline` on the golden
// scenario for a minute of simulated time and checks that its candump and
// truth files are byte for byte those of the live golden truck
// (firmware-sim's TestGoldenTruck), and its faults file lists the
// scenario's faults at the given start.
func TestOfflineMatchesGolden(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	golden := filepath.Join("..", "..", "firmware-sim", "testdata", "golden")
	p := func(name string) string { return filepath.Join(dir, name) }
	out, err := exec.Command(bin, "-offline", "-duration", "1m", "-start", "2026-06-21T10:00:00Z",
		"-scenario", filepath.Join(golden, "scenario.json"),
		"-candump", p("can.log"), "-truth", p("truth.csv"), "-faults", p("faults.csv")).CombinedOutput()
	if err != nil {
		t.Fatalf("firmware-sim -offline: %v\n%s", err, out)
	}
	for _, f := range []struct{ got, want string }{{"can.log", "truck-01.candump.log"}, {"truth.csv", "truck-01.truth.csv"}} {
		got, err := os.ReadFile(p(f.got))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(golden, f.want))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || string(got) != string(want) {
			t.Errorf("offline %s (%d bytes) differs from the live golden %s (%d bytes)", f.got, len(got), f.want, len(want))
		}
	}
	ff, err := os.Open(p("faults.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	ws, err := firmwaresim.ReadFaults(ff)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC)
	if len(ws) != 4 || ws[0].Kind != firmwaresim.FaultOverheat || ws[0].Start != start.Add(20*time.Second).UnixNano() || !ws[0].Hazard {
		t.Errorf("faults %+v", ws)
	}
}

// TestFlagErrors: nonsense on the command line is refused with an error
// naming what was wrong.
func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-overheat", "truck-09@10s", "-trucks", "1", "-offline", "-duration", "1m"}, `truck "truck-09" does not exist`},
		{[]string{"-overheat", "truck-09@10s", "-trucks", "1"}, `truck "truck-09" does not exist`},
		{[]string{"-offline"}, "-offline needs -duration"},
		{[]string{"-duration", "1h"}, "need -offline"},
		{[]string{"-offline", "-duration", "1m", "-start", "yesterday"}, "-start"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%q: err %v, output %q; want an error with %q", tc.args, err, out, tc.want)
		}
	}
}
