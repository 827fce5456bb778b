package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console"
)

// TestHalfSentRequestsClosed: the cloud's HTTP server closes connections
// whose request body never finishes arriving (issue 15, observation 6: 20
// of 20 half-sent POSTs were still open after 25 s).
func TestHalfSentRequestsClosed(t *testing.T) {
	c := startCloud(t, t.TempDir(), func(cfg *Config) { cfg.Console.ReadTimeout = time.Second })
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		conn, err := net.Dial("tcp", c.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":", c.HTTPAddr())
		conns[i] = conn
	}
	open := 0
	deadline := time.Now().Add(8 * time.Second)
	for _, conn := range conns {
		conn.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, conn) // until the server closes it
		if errors.Is(err, os.ErrDeadlineExceeded) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d half-sent requests still open 8 s later (read timeout 1 s)", open, n)
	}
}

// TestPlainBrokerWarned: the embedded broker on plain TCP is allowed only
// with broker_plain_tcp and then warned about at every start (issue 15,
// observation 7).
func TestPlainBrokerWarned(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), BrokerListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Console: console.Config{Users: testUsers}}
	if _, err := New(cfg, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("plain TCP without broker_plain_tcp: %v, want a config error", err)
	}
	cfg.BrokerPlainTCP = true
	for start := range 2 {
		var buf syncBuffer
		c, err := New(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		select {
		case <-c.Ready():
		case err := <-done:
			t.Fatalf("start %d: %v", start, err)
		}
		cancel()
		<-done
		if s := buf.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "INSECURE") || !strings.Contains(s, "plain TCP") {
			t.Errorf("start %d logged no plain-TCP warning:\n%s", start, s)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
