package main

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEvalSmall runs a small evaluation (40 truck-hours, one truck per
// fault) and checks the figures it prints hang together: the realistic
// fleet stops its engine and cycles its fan, every fault of the matrix is
// reported, and the overheat after a cold start (which today's absolute
// limits catch) is alerted with its hazard present.
func TestEvalSmall(t *testing.T) {
	var out strings.Builder
	if err := run(options{hours: 40, trip: 10 * time.Hour, runs: 1, workers: 2, seed: 3, tick: time.Second}, &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "EVAL" {
			v, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				t.Fatalf("bad EVAL line %q", sc.Text())
			}
			got[f[1]] = v
		}
	}
	if got["sim_truck_hours"] != 40 || got["sim_engine_stops"] < 1 || got["sim_fan_cycles"] < 1 || got["sim_temperature_readings"] < 40*3600 {
		t.Errorf("fleet figures %v", got)
	}
	if per, n := got["sim_false_alerts_per_1000h"], got["sim_false_alerts"]; per != n/40*1000 {
		t.Errorf("%v false alerts in 40 h reported as %v per 1,000 h", n, per)
	}
	for _, fc := range faultMatrix {
		if _, ok := got["fault_"+fc.name+"_hazard_unalerted_worst"]; !ok {
			t.Errorf("no figures for %s", fc.name)
		}
	}
	if got["fault_overheat_after_cold_start_alerted"] != 1 {
		t.Errorf("overheat after a cold start not alerted:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "| fault | runs |") {
		t.Error("no table")
	}
}
