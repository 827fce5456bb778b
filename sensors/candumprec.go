package sensors

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.einride.tech/can"
)

// Defaults of CandumpRecorderConfig.
const (
	DefaultRecordMaxBytes = 64 << 20
	DefaultRecordKeep     = 3
)

// CandumpRecorderConfig configures a CandumpRecorder.
type CandumpRecorderConfig struct {
	// Path is the file written; it is rotated to Path.1, Path.2, ...
	// Required.
	Path string
	// MaxBytes is the size at which the file is rotated. Default
	// DefaultRecordMaxBytes (64 MiB); at least 4096.
	MaxBytes int64
	// Keep is how many rotated files are kept besides Path, so the
	// recording takes at most (Keep+1) × MaxBytes. Default
	// DefaultRecordKeep; negative keeps none (Path is truncated on
	// rotation).
	Keep int
	// Logger receives rate-limited write errors; nil means silent.
	Logger *slog.Logger
}

// CandumpRecorderStats counts a recorder.
type CandumpRecorderStats struct {
	Frames    uint64 // frames written
	Bytes     uint64 // bytes written (all files)
	Rotations uint64 // files rotated
	Errors    uint64 // frames lost to a write, rotate or open error
}

// CandumpRecorder writes the frames of live buses to a can-utils candump
// log (candump -L format, as ParseCandumpLine and CandumpReplay read),
// rotated by size so a recording never fills the disk. Record, Flush,
// Stats and Close are safe for concurrent use; several buses may share
// one recorder (each line names its interface).
type CandumpRecorder struct {
	cfg CandumpRecorderConfig
	log *slog.Logger

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	size    int64
	line    []byte
	lastErr time.Time
	closed  bool

	frames, bytes, rotations, errs atomic.Uint64
}

// NewCandumpRecorder opens (appending) cfg.Path.
func NewCandumpRecorder(cfg CandumpRecorderConfig) (*CandumpRecorder, error) {
	if cfg.Path == "" {
		return nil, errors.New("candump recorder: no path")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultRecordMaxBytes
	}
	if cfg.MaxBytes < 4096 {
		return nil, fmt.Errorf("candump recorder: max bytes %d: want at least 4096", cfg.MaxBytes)
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultRecordKeep
	}
	r := &CandumpRecorder{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CandumpRecorder) open() error {
	f, err := os.OpenFile(r.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("candump recorder: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("candump recorder: %w", err)
	}
	r.f, r.size = f, st.Size()
	if r.w == nil {
		r.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		r.w.Reset(f)
	}
	return nil
}

// Record appends one frame captured on iface at time t (Unix ns). A write
// error loses the frame, is counted and logged at most every 10 s, and
// never stops the caller. It does not allocate once warmed up.
func (r *CandumpRecorder) Record(iface string, f can.Frame, t int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.line = AppendCandumpLine(r.line[:0], CandumpRecord{Time: t, Interface: iface, Frame: f})
	if r.f == nil || r.size+int64(len(r.line)) > r.cfg.MaxBytes {
		if err := r.rotate(); err != nil {
			r.fail(err)
			return
		}
	}
	n, err := r.w.Write(r.line)
	r.size += int64(n)
	r.bytes.Add(uint64(n))
	if err != nil {
		r.fail(err)
		return
	}
	r.frames.Add(1)
}

// rotate closes the current file, shifts Path.i to Path.i+1 (dropping
// the oldest) and Path to Path.1, and opens a fresh Path. r.mu is held.
func (r *CandumpRecorder) rotate() error {
	if r.f != nil {
		ferr := r.w.Flush()
		cerr := r.f.Close()
		r.f = nil
		if err := errors.Join(ferr, cerr); err != nil {
			r.w.Reset(nil)
			r.fail(err) // what was buffered is lost; go on with a new file
		}
		if r.cfg.Keep > 0 {
			for i := r.cfg.Keep - 1; i >= 1; i-- {
				os.Rename(r.name(i), r.name(i+1)) // missing files are fine
			}
			if err := os.Rename(r.cfg.Path, r.name(1)); err != nil {
				return fmt.Errorf("candump recorder rotate: %w", err)
			}
		} else if err := os.Truncate(r.cfg.Path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("candump recorder rotate: %w", err)
		}
		r.rotations.Add(1)
	}
	return r.open()
}

func (r *CandumpRecorder) name(i int) string { return r.cfg.Path + "." + strconv.Itoa(i) }

func (r *CandumpRecorder) fail(err error) {
	r.errs.Add(1)
	if now := time.Now(); now.Sub(r.lastErr) > 10*time.Second {
		r.lastErr = now
		r.log.Error("candump recording: frames lost (further errors suppressed for 10s)", "path", r.cfg.Path, "lost_total", r.errs.Load(), "err", err)
	}
}

// Flush writes buffered lines to the file (the gateway calls it every
// second, so a crash loses at most about a second of recording).
func (r *CandumpRecorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	if err := r.w.Flush(); err != nil {
		r.fail(err)
		return fmt.Errorf("candump recorder flush: %w", err)
	}
	return nil
}

// Close flushes and closes the file; later Records are dropped.
func (r *CandumpRecorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := errors.Join(r.w.Flush(), r.f.Close())
	r.f = nil
	if err != nil {
		return fmt.Errorf("candump recorder close: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (r *CandumpRecorder) Stats() CandumpRecorderStats {
	return CandumpRecorderStats{Frames: r.frames.Load(), Bytes: r.bytes.Load(), Rotations: r.rotations.Load(), Errors: r.errs.Load()}
}
