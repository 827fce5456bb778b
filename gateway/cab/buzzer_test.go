package cab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// fakeLine records the values written to it, with the (fake) time since
// the test began.
type fakeLine struct {
	start  time.Time
	mu     sync.Mutex
	writes []string
	fail   bool
	closed bool
}

func (l *fakeLine) SetValue(v int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, fmt.Sprintf("%v=%d", time.Since(l.start), v))
	if l.fail {
		return errors.New("line gone")
	}
	return nil
}

func (l *fakeLine) Close() error { l.closed = true; return nil }

func (l *fakeLine) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

var testPatterns = BuzzerConfig{
	Info:     Pattern{100 * time.Millisecond, 900 * time.Millisecond},
	Warning:  Pattern{200 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond},
	Critical: Pattern{100 * time.Millisecond, 100 * time.Millisecond},
}

func TestBuzzerPatterns(t *testing.T) {
	tests := []struct {
		name  string
		steps func(b *buzzer) // drives the buzzer; time is fake
		want  []string
	}{
		{
			name: "silent until asked",
			steps: func(b *buzzer) {
				time.Sleep(time.Second)
			},
			want: []string{"0s=0"},
		},
		{
			name: "critical repeats on/off",
			steps: func(b *buzzer) {
				b.set(detect.SeverityCritical)
				time.Sleep(450 * time.Millisecond)
			},
			want: []string{"0s=0", "0s=1", "100ms=0", "200ms=1", "300ms=0", "400ms=1"},
		},
		{
			name: "warning double beep",
			steps: func(b *buzzer) {
				b.set(detect.SeverityWarning)
				time.Sleep(1100 * time.Millisecond)
			},
			want: []string{"0s=0", "0s=1", "200ms=0", "300ms=1", "500ms=0", "1s=1"},
		},
		{
			name: "ack stops at once",
			steps: func(b *buzzer) {
				b.set(detect.SeverityCritical)
				time.Sleep(150 * time.Millisecond) // mid "off"
				time.Sleep(100 * time.Millisecond) // mid "on"
				b.set(detect.SeverityNone)
				time.Sleep(time.Second)
			},
			want: []string{"0s=0", "0s=1", "100ms=0", "200ms=1", "250ms=0"},
		},
		{
			name: "worse severity restarts with its own pattern",
			steps: func(b *buzzer) {
				b.set(detect.SeverityInfo)
				time.Sleep(300 * time.Millisecond) // info is off now
				b.set(detect.SeverityCritical)
				time.Sleep(250 * time.Millisecond)
			},
			want: []string{"0s=0", "0s=1", "100ms=0", "300ms=1", "400ms=0", "500ms=1"},
		},
		{
			name: "same severity again keeps the rhythm",
			steps: func(b *buzzer) {
				b.set(detect.SeverityCritical)
				time.Sleep(150 * time.Millisecond)
				b.set(detect.SeverityCritical)
				time.Sleep(100 * time.Millisecond)
			},
			want: []string{"0s=0", "0s=1", "100ms=0", "200ms=1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &fakeLine{start: time.Now()}
				b := newBuzzer(l, testPatterns, slog.New(slog.DiscardHandler))
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- b.run(ctx) }()
				synctest.Wait()
				tc.steps(b)
				synctest.Wait()
				if got := l.take(); !slices.Equal(got, tc.want) {
					t.Errorf("line writes\n got %v\nwant %v", got, tc.want)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// When run ends the line is left off, whatever the pattern was doing.
func TestBuzzerOffOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLine{start: time.Now()}
		b := newBuzzer(l, testPatterns, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- b.run(ctx) }()
		b.set(detect.SeverityCritical)
		time.Sleep(50 * time.Millisecond)
		cancel()
		<-done
		got := l.take()
		if len(got) == 0 || got[len(got)-1] != "50ms=0" {
			t.Errorf("writes %v, want the line off at 50ms", got)
		}
	})
}

// A failing line is counted and does not stop the pattern.
func TestBuzzerLineErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLine{start: time.Now(), fail: true}
		b := newBuzzer(l, testPatterns, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- b.run(ctx) }()
		b.set(detect.SeverityCritical)
		time.Sleep(250 * time.Millisecond)
		cancel()
		<-done
		if n := b.errs.Load(); n != 5 { // off at start, on, off, on, off at stop
			t.Errorf("errors counted %d, want 5 (writes %v)", n, l.take())
		}
	})
}

// The Server drives the buzzer from alerts and acknowledgements: the
// GPIO line follows what the page is told to sound.
func TestServerDrivesBuzzer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Buzzer: testPatterns}, "T1", nil)
		if err != nil {
			t.Fatal(err)
		}
		s.now = time.Now
		l := &fakeLine{start: time.Now()}
		s.buzz.line = l
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.buzz.run(ctx) }()
		synctest.Wait()

		tr := raised(sensors.CoolantTemp, detect.KindDeviation, detect.SeverityWarning, time.Now(), 99)
		s.Transition(tr)
		time.Sleep(250 * time.Millisecond)
		if _, _, err := s.ack(tr.Key(), detect.SeverityWarning); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		s.Transition(with(tr, detect.Changed, detect.SeverityCritical))
		time.Sleep(50 * time.Millisecond) // mid "on"
		s.Transition(with(tr, detect.Cleared, detect.SeverityCritical))
		time.Sleep(time.Second)
		synctest.Wait()
		want := []string{
			"0s=0",
			"0s=1", "200ms=0", // warning: first beep; acknowledged at 250ms, in the gap: no second beep
			"1.25s=1", // worse: critical sounds at once
			"1.3s=0",  // cleared mid-beep: off at once, and stays off
		}
		if got := l.take(); !slices.Equal(got, want) {
			t.Errorf("line writes\n got %v\nwant %v", got, want)
		}
		cancel()
		<-done
	})
}
