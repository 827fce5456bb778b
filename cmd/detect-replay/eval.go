package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// The evaluation on real data (`make eval`). Every figure is one line
//
//	EVAL <name> <value> <unit>
//
// Recordings (-eval-recordings DIR, the shared vehicles/ folder; every
// alert on them is a false alert, see its README):
//   - kit: the 77 KIT trips (kit/*.csv), all their columns that are
//     signals (coolant, ambient, rpm, speed) to one truck detector;
//   - j1939: the coolant of the five CSS clips (j1939/coolant/*.csv);
//
// each at its own rate ("own") and resampled to 0.5, 1, 2 and 10 Hz.
// Resampling puts each signal on a grid of the rate from the recording's
// first row: a grid point takes the signal's latest sample at or before
// it (downsampling by time; upsampling by sample-and-hold, as a bus
// repeating its last value would), held for at most 3 of the signal's
// median sample intervals, so a gap in the recording stays a gap. An
// alert is one raised transition; per rate the totals, the alerts of each
// kind and the recordings with an alert; then, per recording that had an
// alert at any rate, its alerts at every rate.
//
// NAB (-eval-nab DIR, the shared nab/ folder), the generic class
// (detect.DefaultGenericConfig), one configuration for every file:
//   - generic_false_alerts_per_hour_no_anomaly: alerts raised on the 5
//     files of data/artificialNoAnomaly, per hour of their timestamps;
//   - generic_false_alerts_per_hour_outside_windows: alerts raised outside
//     every labelled window (labels/combined_windows.json), on all 58
//     files replayed whole, per hour outside the windows;
//   - generic_false_alerts_per_hour_segments: each stretch of rows outside
//     every window replayed as a series of its own (a fresh detector), the
//     alerts per hour those stretches span;
//   - nab_<profile>: the NAB score of each of the three profiles at
//     threshold 0.5 (the real alerts), by the nabscore tool.
type evalOptions struct {
	vehicles, nab, nabTool, goCmd string
	truck                         detect.Config
	noScore                       bool // skip nabscore (tests on a corpus of their own)
}

// evalRates are the resampling rates in Hz; 0 is the recording's own.
var evalRates = []float64{0, 0.5, 1, 2, 10}

func rateName(hz float64) string {
	if hz == 0 {
		return "own"
	}
	return fmt.Sprintf("%ghz", hz)
}

func runEval(o evalOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	if o.vehicles != "" {
		if err := evalRecordings(o, stdout); err != nil {
			return err
		}
	}
	if o.nab != "" {
		if err := evalNAB(o, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "EVAL detect_replay_eval_seconds %.1f s\n", time.Since(start).Seconds())
	return nil
}

// recordingSet is one folder of recordings.
type recordingSet struct {
	name     string // kit or j1939
	glob     string // under the vehicles folder
	valueSig sensors.Signal
}

var recordingSets = []recordingSet{
	{"kit", "kit/*.csv", sensors.SignalInvalid},
	{"j1939", "j1939/coolant/*.csv", sensors.CoolantTemp},
}

func evalRecordings(o evalOptions, w io.Writer) error {
	for _, set := range recordingSets {
		files, err := filepath.Glob(filepath.Join(o.vehicles, filepath.FromSlash(set.glob)))
		if err != nil {
			return err
		}
		var recs []recording
		for _, f := range files {
			if filepath.Base(f) == "trips.csv" { // kit metadata, not a trip
				continue
			}
			fh, err := os.Open(f)
			if err != nil {
				return err
			}
			rs, _, err := readRecording(f, fh, set.valueSig)
			fh.Close()
			if err != nil {
				return err
			}
			if len(rs) != 1 {
				return fmt.Errorf("eval: %s: %d trucks, want one recording", f, len(rs))
			}
			rec := rs[0]
			rec.Name = strings.TrimSuffix(filepath.Base(f), ".csv")
			recs = append(recs, rec)
		}
		if len(recs) == 0 {
			return fmt.Errorf("eval: no recordings in %s", filepath.Join(o.vehicles, set.glob))
		}
		var hours float64
		for _, r := range recs {
			hours += float64(r.Times[len(r.Times)-1]-r.Times[0]) / float64(time.Hour)
		}
		fmt.Fprintf(w, "EVAL %s_recordings %d files\n", set.name, len(recs))
		fmt.Fprintf(w, "EVAL %s_hours %.2f h\n", set.name, hours)
		per := make([][]truckStats, len(recs)) // [recording][rate]
		for i, r := range recs {
			for _, hz := range evalRates {
				rr := r
				if hz > 0 {
					rr = resample(r, hz)
				}
				st, err := replayTruck(o.truck, rr, nil)
				if err != nil {
					return err
				}
				per[i] = append(per[i], st)
			}
		}
		for k, hz := range evalRates {
			total, with, readings := 0, 0, 0
			kinds := map[string]int{}
			for i := range recs {
				st := per[i][k]
				total += st.alerts()
				readings += st.Readings
				if st.alerts() > 0 {
					with++
				}
				for kind, n := range st.Raised {
					kinds[kind] += n
				}
			}
			rn := rateName(hz)
			fmt.Fprintf(w, "EVAL %s_alerts_%s %d alerts\n", set.name, rn, total)
			for _, kind := range sortedKeys(kinds) {
				fmt.Fprintf(w, "EVAL %s_alerts_%s_%s %d alerts\n", set.name, rn, kind, kinds[kind])
			}
			fmt.Fprintf(w, "EVAL %s_recordings_with_alerts_%s %d files\n", set.name, rn, with)
			fmt.Fprintf(w, "EVAL %s_readings_%s %d readings\n", set.name, rn, readings)
		}
		for i, r := range recs {
			any := false
			for _, st := range per[i] {
				any = any || st.alerts() > 0
			}
			if !any {
				continue
			}
			for k, hz := range evalRates {
				fmt.Fprintf(w, "EVAL %s/%s_alerts_%s %d alerts\n", set.name, r.Name, rateName(hz), per[i][k].alerts())
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// resample puts rec on a grid of hz from its first row to the first grid
// point at or after its last (see the comment at the top of this file).
func resample(rec recording, hz float64) recording {
	out := recording{Name: rec.Name, Signals: rec.Signals}
	if len(rec.Times) == 0 {
		return out
	}
	step := int64(math.Round(1e9 / hz))
	type series struct {
		t    []int64
		v    []float64
		hold int64
		p    int // index of the latest sample at or before the grid time
	}
	ss := make([]series, len(rec.Signals))
	for j := range ss {
		s := &ss[j]
		for i, t := range rec.Times {
			if v := rec.Values[i][j]; !math.IsNaN(v) {
				s.t, s.v = append(s.t, t), append(s.v, v)
			}
		}
		idx := make([]int, len(s.t))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.t[idx[a]] < s.t[idx[b]] })
		t2, v2 := make([]int64, len(idx)), make([]float64, len(idx))
		for i, k := range idx {
			t2[i], v2[i] = s.t[k], s.v[k]
		}
		s.t, s.v = t2, v2
		s.hold = step
		if len(s.t) > 1 {
			d := make([]int64, len(s.t)-1)
			for i := range d {
				d[i] = s.t[i+1] - s.t[i]
			}
			sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
			s.hold = 3 * d[len(d)/2]
		}
		s.p = -1
	}
	first, last := rec.Times[0], rec.Times[0]
	for _, t := range rec.Times {
		first, last = min(first, t), max(last, t)
	}
	// The grid covers the last sample too: its last point is the first at
	// or after it.
	for g := first; g < last+step; g += step {
		row := make([]float64, len(ss))
		n := 0
		for j := range ss {
			s := &ss[j]
			for s.p+1 < len(s.t) && s.t[s.p+1] <= g {
				s.p++
			}
			row[j] = math.NaN()
			if s.p >= 0 && g-s.t[s.p] <= s.hold {
				row[j] = s.v[s.p]
				n++
			}
		}
		if n > 0 {
			out.Times = append(out.Times, g)
			out.Values = append(out.Values, row)
		}
	}
	return out
}

// nabProfile is one profile's result from nabscore -json.
type nabProfile struct {
	Profile    string
	Score      float64
	TP, FP, FN int
}

// nabScore scores the results directory with the nabscore tool (go run
// in toolDir) at threshold 0.5.
func nabScore(goCmd, toolDir, nabDir, results string) ([]nabProfile, error) {
	nab, err := filepath.Abs(nabDir)
	if err != nil {
		return nil, err
	}
	res, err := filepath.Abs(results)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(goCmd, "run", ".", "-nab", nab, "-results", res, "-threshold", "0.5", "-json")
	cmd.Dir = toolDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("nabscore in %s: %v\n%s", toolDir, err, stderr.String())
	}
	var doc struct{ Profiles []nabProfile }
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nabscore output: %w", err)
	}
	if len(doc.Profiles) == 0 {
		return nil, errors.New("nabscore output: no profiles")
	}
	return doc.Profiles, nil
}

func evalNAB(o evalOptions, w io.Writer) error {
	tool := o.nabTool
	if tool == "" {
		tool = filepath.Join(o.nab, "..", "..", "tools", "nabscore")
	}
	raw, err := os.ReadFile(filepath.Join(o.nab, "labels", "combined_windows.json"))
	if err != nil {
		return fmt.Errorf("eval nab: %w", err)
	}
	var labels map[string][][]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return fmt.Errorf("eval nab: combined_windows.json: %w", err)
	}
	windows := map[string][][2]int64{}
	for file, ws := range labels {
		for _, win := range ws {
			if len(win) != 2 {
				return fmt.Errorf("eval nab: %s: window %q: want [start, end]", file, win)
			}
			a, err1 := parseTime(win[0])
			b, err2 := parseTime(win[1])
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("eval nab: %s: %w", file, err)
			}
			windows[file] = append(windows[file], [2]int64{a, b})
		}
	}
	results, err := os.MkdirTemp("", "tankguard-eval-nab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(results)
	data := filepath.Join(o.nab, "data")
	raised := map[string][]int64{}
	type span struct {
		first, last int64
		rows        int
	}
	spans := map[string]span{}
	p := &replayer{cfg: detect.DefaultGenericConfig(), label: "generic",
		onTransition: func(file string, tr detect.Transition) {
			if tr.Phase == detect.Raised {
				rel, _ := filepath.Rel(data, file)
				raised[filepath.ToSlash(rel)] = append(raised[filepath.ToSlash(rel)], tr.Time)
			}
		},
		onFile: func(rel string, st replayStats) { spans[rel] = span{st.First, st.Last, st.Rows} },
	}
	if err := p.corpus(data, results, io.Discard); err != nil {
		return fmt.Errorf("eval nab: %w", err)
	}
	var noAnoAlerts, outAlerts, files, noAnoRows, rows int
	var noAnoH, outH float64
	rels := make([]string, 0, len(spans))
	for rel := range spans {
		rels = append(rels, rel)
	}
	sort.Strings(rels) // a fixed order: the sums below come out the same every run
	for _, rel := range rels {
		sp := spans[rel]
		files++
		rows += sp.rows
		h := float64(sp.last-sp.first) / float64(time.Hour)
		inside := 0.0
		for _, win := range windows[rel] {
			a, b := max(win[0], sp.first), min(win[1], sp.last)
			if b > a {
				inside += float64(b-a) / float64(time.Hour)
			}
		}
		outH += h - inside
		for _, t := range raised[rel] {
			in := false
			for _, win := range windows[rel] {
				in = in || (t >= win[0] && t <= win[1])
			}
			if !in {
				outAlerts++
			}
		}
		if strings.HasPrefix(rel, "artificialNoAnomaly/") {
			noAnoAlerts += len(raised[rel])
			noAnoH += h
			noAnoRows += sp.rows
		}
	}
	fmt.Fprintf(w, "EVAL generic_no_anomaly_alerts %d alerts\n", noAnoAlerts)
	fmt.Fprintf(w, "EVAL generic_no_anomaly_hours %.1f h\n", noAnoH)
	fmt.Fprintf(w, "EVAL generic_false_alerts_per_hour_no_anomaly %.4f 1/h\n", float64(noAnoAlerts)/noAnoH)
	fmt.Fprintf(w, "EVAL generic_false_alerts_per_1000_readings_no_anomaly %.4f 1/1000\n", 1000*float64(noAnoAlerts)/float64(noAnoRows))
	fmt.Fprintf(w, "EVAL generic_outside_windows_files %d files\n", files)
	fmt.Fprintf(w, "EVAL generic_outside_windows_alerts %d alerts\n", outAlerts)
	fmt.Fprintf(w, "EVAL generic_outside_windows_hours %.1f h\n", outH)
	fmt.Fprintf(w, "EVAL generic_false_alerts_per_hour_outside_windows %.4f 1/h\n", float64(outAlerts)/outH)
	fmt.Fprintf(w, "EVAL generic_outside_windows_readings %d readings\n", rows)
	segAlerts, segH, segs, err := nabSegments(data, rels, windows)
	if err != nil {
		return fmt.Errorf("eval nab: %w", err)
	}
	fmt.Fprintf(w, "EVAL generic_segments %d segments\n", segs)
	fmt.Fprintf(w, "EVAL generic_segments_alerts %d alerts\n", segAlerts)
	fmt.Fprintf(w, "EVAL generic_segments_hours %.1f h\n", segH)
	fmt.Fprintf(w, "EVAL generic_false_alerts_per_hour_segments %.4f 1/h\n", float64(segAlerts)/segH)
	if o.noScore {
		return nil
	}
	profiles, err := nabScore(o.goCmd, tool, o.nab, results)
	if err != nil {
		return fmt.Errorf("eval nab: %w", err)
	}
	for _, pr := range profiles {
		fmt.Fprintf(w, "EVAL nab_%s %.2f score\n", pr.Profile, pr.Score)
	}
	return nil
}

// nabSegments replays each stretch of NAB rows outside every labelled
// window as a series of its own (a fresh generic detector from its first
// row): anomaly-free series cut from the real ones. It returns the alerts
// raised, the hours the stretches span and how many there were.
func nabSegments(data string, rels []string, windows map[string][][2]int64) (alerts int, hours float64, segs int, err error) {
	for _, rel := range rels {
		f, err := os.Open(filepath.Join(data, filepath.FromSlash(rel)))
		if err != nil {
			return 0, 0, 0, err
		}
		cr := csv.NewReader(f)
		cr.FieldsPerRecord = -1
		recs, err := cr.ReadAll()
		f.Close()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", rel, err)
		}
		var s *detect.Series
		var first, last int64
		end := func() {
			if s != nil {
				hours += float64(last-first) / float64(time.Hour)
				s = nil
			}
		}
		for i, r := range recs[1:] {
			if len(r) < 2 {
				return 0, 0, 0, fmt.Errorf("%s: line %d: want timestamp,value", rel, i+2)
			}
			t, err := parseTime(r[0])
			if err != nil {
				return 0, 0, 0, fmt.Errorf("%s: line %d: %w", rel, i+2, err)
			}
			v, err := parseValue(r[1])
			if err != nil {
				return 0, 0, 0, fmt.Errorf("%s: line %d: %w", rel, i+2, err)
			}
			inside := false
			for _, win := range windows[rel] {
				inside = inside || (t >= win[0] && t <= win[1])
			}
			if inside {
				end()
				continue
			}
			if s == nil {
				if s, err = detect.NewSeries(detect.DefaultGenericConfig()); err != nil {
					return 0, 0, 0, err
				}
				first = t
				segs++
			}
			last = t
			if tr, ok := s.Observe(t, v); ok && tr.Phase == detect.Raised {
				alerts++
			}
		}
		end()
	}
	return alerts, hours, segs, nil
}
