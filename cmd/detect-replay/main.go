// Command detect-replay runs the tankguard detector over recorded data, on
// the data's own clock, so that a configuration can be tried on recordings
// (or scored on the NAB benchmark) before it goes to the fleet.
//
//	detect-replay -in FILE [-out FILE] [-class generic|coolant|cargo] [-config FILE] [-transitions]
//	detect-replay -class truck -in FILE [-out FILE] [-config FILE]
//	detect-replay -corpus DIR/data -results DIR   (every CSV under -corpus, same layout)
//	detect-replay -eval-recordings DIR [-eval-nab DIR]   (EVAL lines, see eval.go)
//
// One signal (-class generic, coolant or cargo): CSV with a header and
// columns timestamp,value. Output: CSV timestamp,value,anomaly_score, one
// row per input row; the score is in [0,1] and is 0.5 or more exactly when
// the detector has an alert open after that row. A row with an empty value
// is no reading (it keeps the last score and is counted on stderr).
//
// Several signals of one truck (-class truck): CSV with a header naming the
// columns, e.g. the KIT trips' time_unix_s,coolant_c,ambient_c,rpm,
// speed_kmh,intake_air_c (see truckColumns for the names understood);
// an empty cell is no answer. Each row's readings go, in time order, to
// one detect.Detector with the truck configuration (detect.DefaultConfig,
// or -config, the gateway's detector JSON). Output: one line per alert
// transition. A long CSV with signal and value columns (and optionally
// truck), such as firmware-sim's truth.csv (truck,signal,time_unix_ns,
// value), is read too, one detector per truck; so is a candump -L log
// (the gateway's -replay input, e.g. the shared J1939 clips), its frames
// decoded as the gateway decodes them.
//
// Time: timestamps are Unix seconds, milliseconds, microseconds or
// nanoseconds, told apart by magnitude (below 1e11 seconds, below 1e14
// ms, below 1e17 µs, else ns; a fraction is allowed except in ns), RFC
// 3339, or "2006-01-02 15:04:05" (UTC). Anything else stops the replay
// with an error naming the file and line. Missing-data checks
// (missing_after) run on the data's clock: before each reading the
// detector is advanced, once per second of the data's time, as a gateway
// ticking beside the recording would be, so a 60 s gap raises `missing`;
// after the last row nothing more is checked. -transitions prints each
// transition (to stdout; the scored CSV then goes only to -out).
package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "detect-replay:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("detect-replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "input CSV (timestamp,value; for -class truck named columns)")
	out := fs.String("out", "", "output CSV (default stdout)")
	class := fs.String("class", "generic", "signal class whose settings apply: generic, coolant or cargo; truck for a multi-signal CSV")
	cfgFile := fs.String("config", "", "JSON configuration: the gateway's detector config for coolant/cargo/truck and -eval-recordings, or one signal class's settings for generic")
	corpus := fs.String("corpus", "", "replay every *.csv under this directory (e.g. NAB's data/) into -results, keeping sub-directories")
	results := fs.String("results", "", "output directory for -corpus")
	trans := fs.Bool("transitions", false, "print each alert transition to stdout (the scored CSV goes only to -out)")
	evalRec := fs.String("eval-recordings", "", "print EVAL lines for the real recordings in this directory (../shared/data/vehicles)")
	evalNAB := fs.String("eval-nab", "", "with -eval-recordings or alone: print EVAL lines for the generic class on this NAB directory (../shared/data/nab)")
	nabTool := fs.String("nabscore", "", "the nabscore tool's directory for -eval-nab (default: NAB/../../tools/nabscore)")
	goCmd := fs.String("go", "go", "go command that runs nabscore for -eval-nab")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *evalRec != "" || *evalNAB != "" {
		cfg, err := loadTruckConfig(*cfgFile)
		if err != nil {
			return err
		}
		return runEval(evalOptions{vehicles: *evalRec, nab: *evalNAB, nabTool: *nabTool, goCmd: *goCmd, truck: cfg}, stdout, stderr)
	}
	if *class == "truck" {
		if *in == "" {
			return errors.New("-class truck needs -in FILE")
		}
		cfg, err := loadTruckConfig(*cfgFile)
		if err != nil {
			return err
		}
		return truckFile(cfg, *in, *out, *trans, stdout, stderr)
	}
	cfg, err := loadConfig(*class, *cfgFile)
	if err != nil {
		return err
	}
	p := &replayer{cfg: cfg, label: *class}
	if *corpus != "" {
		if *results == "" {
			return errors.New("-corpus needs -results DIR")
		}
		return p.corpus(*corpus, *results, stderr)
	}
	if *in == "" {
		return errors.New("-in FILE is required (or -corpus DIR -results DIR)")
	}
	w := stdout
	if *trans {
		p.transitions = stdout
		if *out == "" {
			w = io.Discard
		}
	}
	st, err := p.file(*in, *out, w)
	st.report(stderr, *in)
	return err
}

func loadTruckConfig(file string) (detect.Config, error) {
	if file == "" {
		return detect.DefaultConfig(), nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return detect.Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := detect.ParseConfig(raw)
	if err != nil {
		return detect.Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

func loadConfig(class, file string) (detect.SignalConfig, error) {
	switch class {
	case "generic":
		if file == "" {
			return detect.DefaultGenericConfig(), nil
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return detect.SignalConfig{}, fmt.Errorf("read config: %w", err)
		}
		return detect.ParseSignalConfig(raw, detect.DefaultGenericConfig())
	case "coolant", "cargo":
		c, err := loadTruckConfig(file)
		if err != nil {
			return detect.SignalConfig{}, err
		}
		if class == "coolant" {
			return c.Coolant, nil
		}
		return c.Cargo, nil
	}
	return detect.SignalConfig{}, fmt.Errorf("-class %q: want generic, coolant, cargo or truck", class)
}

// replayer replays one-signal CSV files.
type replayer struct {
	cfg   detect.SignalConfig
	label string // the class, printed as the signal of transitions
	// transitions, when set, receives one line per alert transition.
	transitions io.Writer
	// onTransition, when set, is called with each transition and the
	// file it came from.
	onTransition func(file string, tr detect.Transition)
	// onFile, when set, is called after each file of a corpus.
	onFile func(rel string, st replayStats)
}

// replayStats counts one replay.
type replayStats struct {
	Rows     int // data rows read
	NoValue  int // rows with an empty value: no reading
	Rejected int // readings the detector rejected (out of time order)
	Raised   int // alerts raised
	// First and Last are the first and last timestamps read.
	First, Last int64
}

func (s replayStats) report(w io.Writer, name string) {
	if s.NoValue > 0 {
		fmt.Fprintf(w, "detect-replay: %s: %d rows without a value (no reading)\n", name, s.NoValue)
	}
	if s.Rejected > 0 {
		fmt.Fprintf(w, "detect-replay: %s: %d readings rejected by the detector (older than the one before)\n", name, s.Rejected)
	}
}

func (p *replayer) corpus(dir, results string, stderr io.Writer) error {
	n := 0
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(results, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		st, err := p.file(path, dst, nil)
		st.report(stderr, path)
		if err == nil && p.onFile != nil {
			p.onFile(filepath.ToSlash(rel), st)
		}
		n++
		return err
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("no .csv files under %s", dir)
	}
	return err
}

// file replays one file; out "" means w.
func (p *replayer) file(in, out string, w io.Writer) (st replayStats, err error) {
	f, err := os.Open(in)
	if err != nil {
		return st, err
	}
	defer f.Close()
	if out != "" {
		o, err := os.Create(out)
		if err != nil {
			return st, err
		}
		defer func() {
			if cerr := o.Close(); err == nil {
				err = cerr
			}
		}()
		w = o
	}
	bw := bufio.NewWriter(w)
	st, err = p.replay(in, f, bw)
	if err != nil {
		return st, fmt.Errorf("%s: %w", in, err)
	}
	return st, bw.Flush()
}

// replay reads timestamp,value rows from r and writes
// timestamp,value,anomaly_score rows to w. A timestamp or value that
// cannot be read ends it with an error naming the line.
func (p *replayer) replay(name string, r io.Reader, w io.Writer) (st replayStats, err error) {
	s, err := detect.NewSeries(p.cfg)
	if err != nil {
		return st, err
	}
	var tw *bufio.Writer
	if p.transitions != nil {
		tw = bufio.NewWriter(p.transitions)
		defer func() {
			if ferr := tw.Flush(); err == nil {
				err = ferr
			}
		}()
	}
	emit := func(tr detect.Transition) error {
		if tr.Phase == detect.Raised {
			st.Raised++
		}
		if p.onTransition != nil {
			p.onTransition(name, tr)
		}
		if tw != nil {
			return writeTransition(tw, p.label, tr)
		}
		return nil
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return st, fmt.Errorf("read header: %w", err)
	}
	tcol, vcol := 0, 1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "timestamp", "time", "time_unix_s", "time_unix_ns":
			tcol = i
		case "value":
			vcol = i
		case "signal":
			return st, errors.New("line 1: a signal column: several signals in one file, replay it with -class truck")
		}
	}
	if _, err := io.WriteString(w, "timestamp,value,anomaly_score\n"); err != nil {
		return st, err
	}
	clock := detect.DataClock{Interval: time.Second}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("line %d: %w", line, err)
		}
		var ts, vs string
		if tcol < len(rec) {
			ts = rec[tcol]
		}
		if vcol < len(rec) {
			vs = rec[vcol]
		}
		st.Rows++
		t, err := parseTime(ts)
		if err != nil {
			return st, fmt.Errorf("line %d: %w", line, err)
		}
		if st.Rows == 1 {
			st.First = t
		}
		st.Last = max(st.Last, t)
		for now, ok := clock.Next(t); ok; now, ok = clock.Next(t) {
			if tr, ok := s.Advance(now); ok {
				if err := emit(tr); err != nil {
					return st, err
				}
			}
		}
		if strings.TrimSpace(vs) == "" {
			st.NoValue++
		} else {
			v, err := parseValue(vs)
			if err != nil {
				return st, fmt.Errorf("line %d: %w", line, err)
			}
			before := s.Band().Rejected
			tr, ok := s.Observe(t, v)
			if s.Band().Rejected > before {
				st.Rejected++
			}
			if ok {
				if err := emit(tr); err != nil {
					return st, err
				}
			}
		}
		if _, err := fmt.Fprintf(w, "%s,%s,%.6f\n", csvField(ts), csvField(vs), s.Score()); err != nil {
			return st, err
		}
	}
}

// parseValue reads a finite number.
func parseValue(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q: not a finite number", s)
	}
	return v, nil
}

// writeTransition prints one transition as key=value fields.
func writeTransition(w io.Writer, signal string, tr detect.Transition) error {
	if tr.Signal.Valid() {
		signal = tr.Signal.String()
	}
	truck := ""
	if tr.Truck != "" {
		truck = " truck=" + tr.Truck
	}
	_, err := fmt.Fprintf(w, "time=%s signal=%s phase=%s kind=%s severity=%s value=%g start=%s baseline=%.4g low=%.4g high=%.4g%s\n",
		fmtTime(tr.Time), signal, tr.Phase, tr.Kind, tr.Severity, tr.Value, fmtTime(tr.Start), tr.Baseline, tr.Low, tr.High, truck)
	return err
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
