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
	sc, start := goldenScenario()
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
	recs := 0
	for _, vs := range truthBySignal(t, filepath.Join(dir, "truth.csv")) {
		recs += len(vs)
	}
	if readings != recs || readings == 0 {
		t.Errorf("samples carried %d readings, truth file has %d", readings, recs)
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
