package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// truckColumns maps the column names understood in -class truck files to
// signals: the KIT trips' names, and each signal's own name.
var truckColumns = map[string]sensors.Signal{
	"coolant_c": sensors.CoolantTemp, "cargo_c": sensors.CargoTemp,
	"ambient_c": sensors.AmbientTemp, "rpm": sensors.EngineSpeed,
	"speed_kmh": sensors.WheelSpeed, "oil_c": sensors.OilTemp, "fuel_c": sensors.FuelTemp,
}

// timeColumns are the names of the time column, in order of preference.
var timeColumns = []string{"time_unix_s", "time_unix_ns", "timestamp", "time"}

func init() {
	for s := sensors.CoolantTemp; s.Valid(); s++ {
		truckColumns[s.String()] = s
	}
}

// recording is a multi-signal series held in memory: row i was taken at
// Times[i], and Values[i][j] is signal Signals[j] then (NaN: no answer).
type recording struct {
	Name    string
	Truck   string // the truck column's value in long files, else ""
	Signals []sensors.Signal
	Times   []int64
	Values  [][]float64
}

// readRecording reads a -class truck CSV: wide, one column per signal
// (a column named "value" is read as valueSig when that is valid, for the
// one-signal files of the recordings; columns it does not know are
// returned in ignored), or long, with signal and value columns and
// optionally truck (firmware-sim's truth.csv), one recording per truck.
func readRecording(name string, r io.Reader, valueSig sensors.Signal) (recs []recording, ignored []string, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read header: %w", name, err)
	}
	tcol := -1
	for pref := len(timeColumns) - 1; pref >= 0; pref-- {
		for i, h := range header {
			if strings.EqualFold(strings.TrimSpace(h), timeColumns[pref]) {
				tcol = i
			}
		}
	}
	if tcol < 0 {
		return nil, nil, fmt.Errorf("%s: line 1: no time column (want one of %s)", name, strings.Join(timeColumns, ", "))
	}
	named := map[string]int{}
	for i, h := range header {
		named[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if scol, ok := named["signal"]; ok {
		vcol, ok := named["value"]
		if !ok {
			return nil, nil, fmt.Errorf("%s: line 1: a signal column but no value column", name)
		}
		kcol, ok := named["truck"]
		if !ok {
			kcol = -1
		}
		recs, err := readLong(name, cr, len(header), tcol, scol, vcol, kcol)
		return recs, nil, err
	}
	rec, ignored, err := readWide(name, cr, header, tcol, valueSig)
	if err != nil {
		return nil, nil, err
	}
	return []recording{rec}, ignored, nil
}

// readLong reads rows of (time, signal, value[, truck]).
func readLong(name string, cr *csv.Reader, nf, tcol, scol, vcol, kcol int) ([]recording, error) {
	var recs []recording
	byTruck := map[string]int{}
	for line := 2; ; line++ {
		f, err := cr.Read()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		if len(f) != nf {
			return nil, fmt.Errorf("%s: line %d: %d fields, header has %d", name, line, len(f), nf)
		}
		t, err := parseTime(f[tcol])
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		sig, err := sensors.ParseSignal(strings.TrimSpace(f[scol]))
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		if strings.TrimSpace(f[vcol]) == "" {
			continue
		}
		v, err := parseValue(f[vcol])
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		truck := ""
		if kcol >= 0 {
			truck = strings.TrimSpace(f[kcol])
		}
		k, ok := byTruck[truck]
		if !ok {
			k = len(recs)
			byTruck[truck] = k
			recs = append(recs, recording{Name: name, Truck: truck, Signals: candumpSignals})
		}
		j := slices.Index(candumpSignals, sig)
		if j < 0 {
			continue // not a signal a truck detector reads (GNSS, position)
		}
		row := make([]float64, len(candumpSignals))
		for i := range row {
			row[i] = math.NaN()
		}
		row[j] = v
		recs[k].Times = append(recs[k].Times, t)
		recs[k].Values = append(recs[k].Values, row)
	}
}

func readWide(name string, cr *csv.Reader, header []string, tcol int, valueSig sensors.Signal) (rec recording, ignored []string, err error) {
	rec.Name = name
	var cols []int
	seen := map[sensors.Signal]bool{}
	for i, h := range header {
		if i == tcol {
			continue
		}
		col := strings.ToLower(strings.TrimSpace(h))
		sig, ok := truckColumns[col]
		if col == "value" && valueSig.Valid() {
			sig, ok = valueSig, true
		}
		switch {
		case !ok:
			ignored = append(ignored, h)
		case seen[sig]:
			return rec, nil, fmt.Errorf("%s: line 1: column %q: %s given twice", name, h, sig)
		default:
			seen[sig] = true
			rec.Signals = append(rec.Signals, sig)
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		return rec, nil, fmt.Errorf("%s: line 1: no signal column (known: coolant_c, ambient_c, rpm, speed_kmh, cargo_c, oil_c, fuel_c or signal names)", name)
	}
	for line := 2; ; line++ {
		f, err := cr.Read()
		if err == io.EOF {
			return rec, ignored, nil
		}
		if err != nil {
			return rec, nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		if len(f) != len(header) {
			return rec, nil, fmt.Errorf("%s: line %d: %d fields, header has %d", name, line, len(f), len(header))
		}
		t, err := parseTime(f[tcol])
		if err != nil {
			return rec, nil, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		row := make([]float64, len(cols))
		for j, c := range cols {
			row[j] = math.NaN()
			if strings.TrimSpace(f[c]) == "" {
				continue
			}
			if row[j], err = parseValue(f[c]); err != nil {
				return rec, nil, fmt.Errorf("%s: line %d: column %s: %w", name, line, header[c], err)
			}
		}
		rec.Times = append(rec.Times, t)
		rec.Values = append(rec.Values, row)
	}
}

// truckStats counts one truck replay.
type truckStats struct {
	Readings int            // readings fed to the detector
	Raised   map[string]int // alerts raised, by kind
}

func (s truckStats) alerts() int {
	n := 0
	for _, v := range s.Raised {
		n += v
	}
	return n
}

// replayTruck feeds rec, row by row in time order, to one detector with
// cfg, advancing it on the data's clock every second before each row; fn
// (if set) sees each transition.
func replayTruck(cfg detect.Config, rec recording, fn func(detect.Transition)) (truckStats, error) {
	st := truckStats{Raised: map[string]int{}}
	truck := rec.Truck
	if truck == "" {
		truck = "replay"
	}
	d, err := detect.New(truck, cfg)
	if err != nil {
		return st, err
	}
	clock := detect.DataClock{Interval: time.Second}
	var out []detect.Transition
	note := func(tr detect.Transition) {
		if tr.Phase == detect.Raised {
			st.Raised[tr.Kind.String()]++
		}
		if fn != nil {
			fn(tr)
		}
	}
	for i, t := range rec.Times {
		for now, ok := clock.Next(t); ok; now, ok = clock.Next(t) {
			out = d.Advance(now, out[:0])
			for _, tr := range out {
				note(tr)
			}
		}
		for j, v := range rec.Values[i] {
			if math.IsNaN(v) {
				continue
			}
			st.Readings++
			if tr, ok := d.Observe(sensors.Reading{Time: t, Value: v, Signal: rec.Signals[j]}); ok {
				note(tr)
			}
		}
	}
	return st, nil
}

// truckFile is -class truck: it writes each transition to out (stdout if
// out is ""), also to stdout when trans (-transitions) is set, and a
// summary to stderr.
func truckFile(cfg detect.Config, in, out string, trans bool, stdout, stderr io.Writer) (err error) {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	var recs []recording
	var ignored []string
	if _, err = f.Seek(0, io.SeekStart); err == nil {
		if isCandump(head[:n]) {
			var rec recording
			rec, err = readCandump(in, f)
			recs = []recording{rec}
		} else {
			recs, ignored, err = readRecording(in, f, sensors.SignalInvalid)
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	if len(ignored) > 0 {
		fmt.Fprintf(stderr, "detect-replay: %s: columns ignored (no signal): %s\n", in, strings.Join(ignored, ", "))
	}
	w := stdout
	if out != "" {
		o, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := o.Close(); err == nil {
				err = cerr
			}
		}()
		w = o
		if trans {
			w = io.MultiWriter(o, stdout)
		}
	}
	bw := bufio.NewWriter(w)
	var werr error
	for _, rec := range recs {
		st, err := replayTruck(cfg, rec, func(tr detect.Transition) {
			if werr == nil {
				werr = writeTransition(bw, "", tr)
			}
		})
		if err != nil {
			return err
		}
		kinds := make([]string, 0, len(st.Raised))
		for k, n := range st.Raised {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		what := in
		if rec.Truck != "" {
			what += " truck " + rec.Truck
		}
		fmt.Fprintf(stderr, "detect-replay: %s: %d rows, %d readings, %d alerts raised (%s)\n", what, len(rec.Times), st.Readings, st.alerts(), strings.Join(kinds, ", "))
	}
	return errors.Join(werr, bw.Flush())
}

// candumpSignals are the signals a candump replay keeps, in this order.
var candumpSignals = []sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp, sensors.EngineSpeed,
	sensors.WheelSpeed, sensors.AmbientTemp, sensors.OilTemp, sensors.FuelTemp}

// readCandump decodes a candump -L log (as the gateway's -replay does,
// with the built-in DBC) into a recording of one row per reading. A line
// that does not parse is an error naming it.
func readCandump(name string, r io.Reader) (recording, error) {
	rec := recording{Name: name, Signals: candumpSignals}
	col := map[sensors.Signal]int{}
	for j, s := range candumpSignals {
		col[s] = j
	}
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		return rec, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var out []sensors.Reading
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		fr, err := sensors.ParseCandumpLine(sc.Text())
		if err != nil {
			return rec, fmt.Errorf("%s: line %d: %w", name, line, err)
		}
		out = dec.Decode(fr.Frame, fr.Time, out[:0])
		for _, rd := range out {
			j, ok := col[rd.Signal]
			if !ok {
				continue
			}
			row := make([]float64, len(candumpSignals))
			for k := range row {
				row[k] = math.NaN()
			}
			row[j] = rd.Value
			rec.Times = append(rec.Times, rd.Time)
			rec.Values = append(rec.Values, row)
		}
	}
	if err := sc.Err(); err != nil {
		return rec, fmt.Errorf("%s: %w", name, err)
	}
	return rec, nil
}

// isCandump reports whether the file starts like a candump log: "(".
func isCandump(b []byte) bool {
	s := strings.TrimLeft(string(b), " \t\r\n")
	return strings.HasPrefix(s, "(")
}
