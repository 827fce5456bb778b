package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/abc4logistics/tankguard/detect"
)

// series writes n rows at 5-minute spacing: a noisy level with one jump.
func series(n, jumpAt int) string {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i := 0; i < n; i++ {
		v := 10 + float64(i%7)*0.3
		if i >= jumpAt {
			v += 50
		}
		fmt.Fprintf(&b, "2015-01-01 %02d:%02d:00,%g\n", (i*5)/60%24, (i*5)%60, v)
	}
	return b.String()
}

func TestReplay(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		rows, bad int
		alertRows []int // data rows (0-based) with score >= 0.5
	}{
		{"flat then jump flags the onset only", series(200, 120), 200, 0, []int{120}},
		{"no anomaly", series(200, 1000), 200, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &replayer{cfg: mustConfig(t)}
			st, err := p.replay("in.csv", strings.NewReader(tc.in), &out)
			bad := st.NoValue
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if lines[0] != "timestamp,value,anomaly_score" || len(lines)-1 != tc.rows || bad != tc.bad {
				t.Fatalf("header %q, %d rows, %d bad; want %d rows, %d bad", lines[0], len(lines)-1, bad, tc.rows, tc.bad)
			}
			var alerts []int
			for i, l := range lines[1:] {
				f := strings.Split(l, ",")
				s, err := strconv.ParseFloat(f[2], 64)
				if err != nil || s < 0 || s > 1 {
					t.Fatalf("row %d: score %q", i, f[2])
				}
				if s >= 0.5 {
					alerts = append(alerts, i)
				}
			}
			if fmt.Sprint(alerts) != fmt.Sprint(tc.alertRows) {
				t.Errorf("alert rows %v, want %v", alerts, tc.alertRows)
			}
		})
	}
}

func mustConfig(t *testing.T) detect.SignalConfig {
	c, err := loadConfig("generic", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunFlags(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(series(100, 60)), 0o644)
	cfg := filepath.Join(dir, "c.json")
	os.WriteFile(cfg, []byte(`{"coolant": {"sustian": "3s"}}`), 0o644)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-in", in, "-class", "coolant", "-config", cfg}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "sustian") {
		t.Fatalf("bad config: err %v", err)
	}
	if err := run([]string{"-in", in, "-class", "engine"}, &stdout, &stderr); err == nil {
		t.Fatal("bad class accepted")
	}
	if err := run([]string{"-corpus", dir, "-results", filepath.Join(dir, "out")}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out", "in.csv")); err != nil || strings.Count(string(b), "\n") != 101 {
		t.Fatalf("corpus output: %v, %d lines", err, strings.Count(string(b), "\n"))
	}
}
