package firmwaresim

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// TestSimulateMatchesGolden: an offline run writes, byte for byte, the
// truth and candump files of the golden live truck (TestGoldenTruck), and
// its samples carry the same readings and the fault windows.
func TestSimulateMatchesGolden(t *testing.T) {
	warm := true
	sc := Scenario{Seed: 42, TimeOfDay: "10:00", Default: TruckScenario{Warm: &warm, Faults: []Fault{
		{Kind: FaultOverheat, At: Duration(20 * time.Second), Ramp: Duration(20 * time.Second)},
		{Kind: FaultGlitch, Signal: "cargo_temp", At: Duration(10 * time.Second)},
		{Kind: FaultCANGarbage, At: Duration(30 * time.Second), Duration: Duration(10 * time.Second), Probability: 0.2},
		{Kind: FaultDropout, Signal: "wheel_speed", At: Duration(45 * time.Second), Duration: Duration(5 * time.Second), Mode: "error"},
	}}}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, err := New(Config{Scenario: sc, NoSerial: true,
		TruthPath: filepath.Join(dir, "truth.csv"), CandumpPath: filepath.Join(dir, "candump.log")})
	if err != nil {
		t.Fatal(err)
	}
	var readings, ticks int
	var lastTime int64
	peak := 0.0
	fw, err := s.Simulate(start, time.Minute, func(smp *Sample) {
		ticks++
		if smp.Time <= lastTime || smp.ID != "truck-01" {
			t.Fatalf("sample %d: %+v after time %d", ticks, smp, lastTime)
		}
		lastTime = smp.Time
		for _, r := range smp.Readings {
			if r.Time != smp.Time {
				t.Fatalf("reading %+v stamped off its tick %d", r, smp.Time)
			}
		}
		readings += len(smp.Readings)
		peak = max(peak, smp.Coolant)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ticks != 600 {
		t.Errorf("%d ticks in a minute, want 600", ticks)
	}
	for _, name := range []string{"truth.csv", "candump.log"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "golden", "truck-01."+name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("offline %s differs from the live golden file", name)
		}
	}
	truth, err := os.Open(filepath.Join(dir, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	recs, err := ReadTruth(truth)
	if err != nil {
		t.Fatal(err)
	}
	if readings != len(recs) || readings == 0 {
		t.Errorf("samples carried %d readings, truth file has %d", readings, len(recs))
	}
	// Overheat to 115 °C over 20 s from 20 s: the noise-free value gets there.
	if peak < 114.9 || peak > 115.1 {
		t.Errorf("noise-free coolant peaked at %.2f, want 115", peak)
	}
	if len(fw) != 4 || fw[0].Kind != FaultOverheat || !fw[0].Hazard || fw[0].Start != start.Add(20*time.Second).UnixNano() || fw[0].End != 0 {
		t.Errorf("fault windows %+v", fw)
	}
	if fw[1].Signal != sensors.CargoTemp.String() || fw[1].End != fw[1].Start+int64(10*time.Second) {
		t.Errorf("glitch window %+v", fw[1])
	}
}
