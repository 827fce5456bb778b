package cab

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abc4logistics/tankguard/detect"
)

// line is the part of a GPIO output line that the buzzer needs.
// *gpiocdev.Line satisfies it.
type line interface {
	SetValue(value int) error
	Close() error
}

// buzzer plays the pattern of the severity that should sound on a line.
// set may be called from any goroutine; run is owned by Server.Run.
type buzzer struct {
	line     line // nil: no hardware; run still tracks the pattern
	patterns BuzzerConfig
	log      *slog.Logger
	errs     atomic.Uint64

	mu   sync.Mutex
	want detect.Severity
	wake chan struct{} // cap 1
}

func newBuzzer(l line, patterns BuzzerConfig, log *slog.Logger) *buzzer {
	return &buzzer{line: l, patterns: patterns, log: log, wake: make(chan struct{}, 1)}
}

// set asks for severity s to sound (SeverityNone: silence). The latest call
// wins; it never blocks.
func (b *buzzer) set(s detect.Severity) {
	b.mu.Lock()
	changed := b.want != s
	b.want = s
	b.mu.Unlock()
	if changed {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

func (b *buzzer) wanted() detect.Severity {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.want
}

// run drives the line until ctx ends, then leaves it off. Pattern step i
// (from 0) is "on" when i is even. A new severity restarts its pattern from
// the start, so a worse alert is heard at once.
func (b *buzzer) run(ctx context.Context) error {
	level := -1 // unknown: the first drive always writes
	drive := func(v int) {
		if v == level || b.line == nil {
			level = v
			return
		}
		level = v
		if err := b.line.SetValue(v); err != nil {
			if b.errs.Add(1) == 1 || b.errs.Load()%100 == 0 {
				b.log.Error("cab buzzer: set gpio line", "value", v, "err", err, "errors", b.errs.Load())
			}
		}
	}
	drive(0)
	defer drive(0)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		cur  detect.Severity
		pat  Pattern
		step int
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
			s := b.wanted()
			if s == cur {
				continue
			}
			cur, pat, step = s, b.patterns.forSeverity(s), 0
			timer.Stop()
			if len(pat) == 0 {
				drive(0)
				continue
			}
			drive(1)
			timer.Reset(pat[0])
		case <-timer.C:
			if len(pat) == 0 {
				continue
			}
			step = (step + 1) % len(pat)
			drive(1 - step%2)
			timer.Reset(pat[step])
		}
	}
}
