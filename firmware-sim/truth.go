package firmwaresim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/abc4logistics/tankguard/sensors"
)

// TruthHeader is the first line of a truth CSV file.
const TruthHeader = "truck,signal,time_unix_ns,value"

// truthWriter writes the ground-truth CSV. Values are formatted with
// strconv.FormatFloat(v, 'g', -1, 64), so parsing them back gives the same
// float64 bit for bit. Safe for concurrent use.
type truthWriter struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	buf []byte
	err error
}

func createTruth(path string) (*truthWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create truth file: %w", err)
	}
	w := &truthWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	w.w.WriteString(TruthHeader + "\n")
	return w, nil
}

// write records readings of truck id. A nil writer records nothing.
func (w *truthWriter) write(id string, rs []sensors.Reading) {
	if w == nil || len(rs) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf[:0]
	for _, r := range rs {
		b = append(b, id...)
		b = append(b, ',')
		b = append(b, r.Signal.String()...)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.Time, 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, r.Value, 'g', -1, 64)
		b = append(b, '\n')
	}
	w.buf = b
	if _, err := w.w.Write(b); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *truthWriter) flush() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.w.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *truthWriter) close() error {
	if w == nil {
		return nil
	}
	err := w.flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write truth file: %w", err)
	}
	return nil
}

// TruthRecord is one line of a truth file.
type TruthRecord struct {
	Truck  string
	Signal sensors.Signal
	Time   int64
	Value  float64
}

// lineFile is a buffered, mutex-guarded output file (the candump log).
type lineFile struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func createLineFile(path, what string) (*lineFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s file: %w", what, err)
	}
	return &lineFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// write appends b. A nil file ignores it.
func (l *lineFile) write(b []byte) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if _, err := l.w.Write(b); err != nil && l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

func (l *lineFile) flush() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	return l.err
}

func (l *lineFile) close() error {
	if l == nil {
		return nil
	}
	err := l.flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadTruth parses a truth CSV (as written with Config.TruthPath).
func ReadTruth(r io.Reader) ([]TruthRecord, error) {
	sc := bufio.NewScanner(r)
	var out []TruthRecord
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 && text == TruthHeader {
			continue
		}
		var rec TruthRecord
		var sig, ts, val string
		fields := strings.SplitN(text, ",", 4)
		if len(fields) != 4 {
			return nil, fmt.Errorf("truth line %d: want 4 fields, got %q", line, text)
		}
		rec.Truck, sig, ts, val = fields[0], fields[1], fields[2], fields[3]
		var err error
		if rec.Signal, err = sensors.ParseSignal(sig); err != nil {
			return nil, fmt.Errorf("truth line %d: %w", line, err)
		}
		if rec.Time, err = strconv.ParseInt(ts, 10, 64); err != nil {
			return nil, fmt.Errorf("truth line %d: time: %w", line, err)
		}
		if rec.Value, err = strconv.ParseFloat(val, 64); err != nil {
			return nil, fmt.Errorf("truth line %d: value: %w", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read truth: %w", err)
	}
	return out, nil
}
