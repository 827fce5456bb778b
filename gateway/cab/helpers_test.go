package cab

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the fake wall clock of the tests.
var t0 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)

// newTestServer returns a Server with a fixed clock, served by an httptest
// server on loopback, and the acks it delivered.
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server, *ackSink) {
	t.Helper()
	s, err := New(cfg, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	sink := &ackSink{ch: make(chan detect.Ack, 16)}
	s.OnAck(sink.add)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, sink
}

type ackSink struct {
	mu   sync.Mutex
	acks []detect.Ack
	ch   chan detect.Ack
}

func (a *ackSink) add(x detect.Ack) {
	a.mu.Lock()
	a.acks = append(a.acks, x)
	a.mu.Unlock()
	select {
	case a.ch <- x:
	default:
	}
}

func (a *ackSink) all() []detect.Ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]detect.Ack(nil), a.acks...)
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	ID, Event, Data string
}

// sseStream reads events from /api/events.
type sseStream struct {
	t      testing.TB
	cancel context.CancelFunc
	body   io.Closer
	events chan sseEvent
}

func openEvents(t testing.TB, url string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /api/events: %s %q", res.Status, res.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, cancel: cancel, body: res.Body, events: make(chan sseEvent, 64)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.body.Close()
	for range s.events { // wait for the reader to end
	}
}

// next returns the next event named one of names, skipping others.
func (s *sseStream) next(names ...string) sseEvent {
	s.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("event stream ended, waiting for %v", names)
			}
			for _, n := range names {
				if ev.Event == n {
					return ev
				}
			}
		case <-timeout:
			s.t.Fatalf("no %v event within 5s", names)
		}
	}
}

func decode[T any](t testing.TB, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return v
}

// raised returns a Raised transition on sig of truck T1.
func raised(sig sensors.Signal, kind detect.Kind, sev detect.Severity, start time.Time, value float64) detect.Transition {
	return detect.Transition{
		Truck: "T1", Signal: sig, Kind: kind, Severity: sev, Phase: detect.Raised,
		Start: start.UnixNano(), Time: start.Add(10 * time.Second).UnixNano(), Value: value, Baseline: 88,
	}
}

func with(t detect.Transition, p detect.Phase, sev detect.Severity) detect.Transition {
	t.Phase, t.Severity = p, sev
	t.Time += int64(time.Second)
	return t
}
