package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/abc4logistics/tankguard/detect"
)

// TestNAB replays the whole NAB corpus with the default generic
// configuration and scores it with ../shared/tools/nabscore at threshold
// 0.5 (the score at which the detector has an alert open). It needs the
// shared directory beside the checkout; without it the test skips, unless
// CI is set.
func TestNAB(t *testing.T) {
	shared := os.Getenv("TANKGUARD_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	nab, _ := filepath.Abs(filepath.Join(shared, "data", "nab"))
	tool, _ := filepath.Abs(filepath.Join(shared, "tools", "nabscore"))
	if _, err := os.Stat(filepath.Join(nab, "labels", "combined_windows.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("NAB corpus missing: %v", err)
		}
		t.Skipf("NAB corpus missing (%v)", err)
	}
	results := t.TempDir()
	p := &replayer{cfg: detect.DefaultGenericConfig()}
	if err := p.corpus(filepath.Join(nab, "data"), results, io.Discard); err != nil {
		t.Fatal(err)
	}
	profiles, err := nabScore(filepath.Join(runtime.GOROOT(), "bin", "go"), tool, nab, results)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"standard": 65, "reward_low_FP_rate": 62, "reward_low_FN_rate": 68}
	for _, p := range profiles {
		t.Logf("NAB %-20s %6.2f (TP %d, FP rows %d, FN %d)", p.Profile, p.Score, p.TP, p.FP, p.FN)
		if p.Score < want[p.Profile] {
			t.Errorf("NAB %s = %.2f, want >= %.0f", p.Profile, p.Score, want[p.Profile])
		}
		delete(want, p.Profile)
	}
	if len(want) != 0 {
		t.Errorf("profiles missing from nabscore output: %v", want)
	}
}
