package cloud

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
)

// TestInvalidBucketRefusedAtStart: a bucket name S3 cannot have is
// refused by New, naming the field, instead of failing every flush.
func TestInvalidBucketRefusedAtStart(t *testing.T) {
	for _, archive := range []string{"s3://Fleet_Archive/prod", "s3://ab/prod", "s3://fleet..archive"} {
		_, err := New(Config{DataDir: t.TempDir(), Archive: archive}, nil)
		if err == nil || !strings.Contains(err.Error(), "archive") || !strings.Contains(err.Error(), "bucket") {
			t.Errorf("archive %s: err %v, want it refused naming archive and bucket", archive, err)
		}
	}
}

// startupLog is a log sink safe for concurrent writes.
type startupLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *startupLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *startupLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLifecycleNotSupportedWarnsOnce: versitygw answers the lifecycle
// rule with 501; the cloud says so once, as a warning, and counts no
// archive error.
func TestLifecycleNotSupportedWarnsOnce(t *testing.T) {
	endpoint := s3test.Versity(t)
	s3test.Bucket(t, s3test.Client(endpoint), "fleet")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var logs startupLog
	c, err := New(Config{DataDir: t.TempDir(), BrokerListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", BrokerPlainTCP: true,
		Archive: "s3://fleet/tankguard", S3: S3Config{Endpoint: endpoint, PathStyle: true, GlacierAfterDays: 30}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("cloud ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("cloud not ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := logs.String()
	var warns int
	for line := range strings.Lines(text) {
		if strings.Contains(line, "lifecycle") {
			if strings.Contains(line, "level=ERROR") {
				t.Errorf("lifecycle logged as an error: %s", line)
			}
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "does not support lifecycle rules") {
				warns++
			}
		}
	}
	if warns != 1 {
		t.Errorf("%d lifecycle warnings, want 1:\n%s", warns, text)
	}
	if s := c.Stats(); s.ArchiveErrors != 0 {
		t.Errorf("archive errors %d, want 0", s.ArchiveErrors)
	}
}
