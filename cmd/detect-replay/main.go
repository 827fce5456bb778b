// Command detect-replay runs the tankguard detector over a recorded series
// and writes one anomaly score per row, so that a configuration can be
// tried on recorded data (or scored on the NAB benchmark) before it goes to
// the fleet.
//
//	detect-replay -in FILE [-out FILE] [-class generic|coolant|cargo] [-config FILE]
//	detect-replay -corpus DIR/data -results DIR   (every CSV under -corpus, same layout)
//
// Input: CSV with a header and columns timestamp,value (timestamp as
// "2006-01-02 15:04:05", RFC 3339, or Unix seconds). Output: CSV
// timestamp,value,anomaly_score, one row per input row; the score is in
// [0,1] and is 0.5 or more exactly when the detector has an alert open
// after that row. Rows that cannot be read score 0 and are counted on
// stderr.
package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
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
	in := fs.String("in", "", "input CSV (timestamp,value)")
	out := fs.String("out", "", "output CSV (default stdout)")
	class := fs.String("class", "generic", "signal class whose settings apply: generic, coolant or cargo")
	cfgFile := fs.String("config", "", "JSON configuration: the gateway's detector config for coolant/cargo, or one signal class's settings for generic")
	corpus := fs.String("corpus", "", "replay every *.csv under this directory (e.g. NAB's data/) into -results, keeping sub-directories")
	results := fs.String("results", "", "output directory for -corpus")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*class, *cfgFile)
	if err != nil {
		return err
	}
	if *corpus != "" {
		if *results == "" {
			return errors.New("-corpus needs -results DIR")
		}
		return replayCorpus(cfg, *corpus, *results, stderr)
	}
	if *in == "" {
		return errors.New("-in FILE is required (or -corpus DIR -results DIR)")
	}
	bad, err := replayFile(cfg, *in, *out, stdout)
	if bad > 0 {
		fmt.Fprintf(stderr, "detect-replay: %s: %d unreadable rows scored 0\n", *in, bad)
	}
	return err
}

func loadConfig(class, file string) (detect.SignalConfig, error) {
	var raw []byte
	if file != "" {
		var err error
		if raw, err = os.ReadFile(file); err != nil {
			return detect.SignalConfig{}, fmt.Errorf("read config: %w", err)
		}
	}
	switch class {
	case "generic":
		if raw == nil {
			return detect.DefaultGenericConfig(), nil
		}
		return detect.ParseSignalConfig(raw, detect.DefaultGenericConfig())
	case "coolant", "cargo":
		c := detect.DefaultConfig()
		if raw != nil {
			var err error
			if c, err = detect.ParseConfig(raw); err != nil {
				return detect.SignalConfig{}, fmt.Errorf("%s: %w", file, err)
			}
		}
		if class == "coolant" {
			return c.Coolant, nil
		}
		return c.Cargo, nil
	}
	return detect.SignalConfig{}, fmt.Errorf("-class %q: want generic, coolant or cargo", class)
}

func replayCorpus(cfg detect.SignalConfig, dir, results string, stderr io.Writer) error {
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
		bad, err := replayFile(cfg, path, dst, nil)
		if bad > 0 {
			fmt.Fprintf(stderr, "detect-replay: %s: %d unreadable rows scored 0\n", path, bad)
		}
		n++
		return err
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("no .csv files under %s", dir)
	}
	return err
}

// replayFile replays one file; out "" means w.
func replayFile(cfg detect.SignalConfig, in, out string, w io.Writer) (bad int, err error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if out != "" {
		o, err := os.Create(out)
		if err != nil {
			return 0, err
		}
		defer func() {
			if cerr := o.Close(); err == nil {
				err = cerr
			}
		}()
		w = o
	}
	bw := bufio.NewWriter(w)
	bad, err = replay(cfg, f, bw)
	if err != nil {
		return bad, fmt.Errorf("%s: %w", in, err)
	}
	return bad, bw.Flush()
}

// replay reads timestamp,value rows from r and writes
// timestamp,value,anomaly_score rows to w.
func replay(cfg detect.SignalConfig, r io.Reader, w io.Writer) (bad int, err error) {
	s, err := detect.NewSeries(cfg)
	if err != nil {
		return 0, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("read header: %w", err)
	}
	tcol, vcol := 0, 1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "timestamp", "time":
			tcol = i
		case "value":
			vcol = i
		}
	}
	if _, err := io.WriteString(w, "timestamp,value,anomaly_score\n"); err != nil {
		return 0, err
	}
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return bad, nil
		}
		line++
		if err != nil {
			return bad, fmt.Errorf("line %d: %w", line, err)
		}
		var ts, vs string
		if tcol < len(rec) {
			ts = rec[tcol]
		}
		if vcol < len(rec) {
			vs = rec[vcol]
		}
		score := 0.0
		t, terr := parseTime(ts)
		v, verr := strconv.ParseFloat(strings.TrimSpace(vs), 64)
		if terr != nil || verr != nil {
			bad++
		} else {
			s.Observe(t, v)
			score = s.Score()
		}
		if _, err := fmt.Fprintf(w, "%s,%s,%.6f\n", csvField(ts), csvField(vs), score); err != nil {
			return bad, err
		}
	}
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func parseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f * 1e9), nil
	}
	return 0, fmt.Errorf("bad timestamp %q", s)
}
