package broker

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
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

// Observation 8 of issue 18: the broker logged WARN lines with an empty
// message (mochi's listeners log a failed connection that way). A client
// that hangs up before CONNECT gets a warning that says what happened.
func TestBrokerLogsNoEmptyMessage(t *testing.T) {
	var out syncBuffer
	b, err := Start(Options{Listen: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x10, 0x7f}) // a CONNECT header, then hang up
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "level=WARN") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning logged for the broken connection; log:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(line, `msg=""`) || strings.Contains(line, "msg= ") {
			t.Errorf("log line with an empty message: %s", line)
		}
		if strings.Contains(line, "level=WARN") && !strings.Contains(line, "mqtt client connection ended") {
			t.Logf("warning: %s", line)
		}
	}
}
