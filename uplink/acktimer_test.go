package uplink

import (
	"testing"
	"time"
)

// TestIdleAfterAckOutlivesPublishTimeout: once every flight is
// acknowledged, a publish-timeout timer armed for one of them must not
// end (or crash) the session when the truck then goes quiet for longer
// than PublishTimeout, e.g. engine off with the broker still connected.
// Found by the 1000-truck load test (index out of range in session).
func TestIdleAfterAckOutlivesPublishTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	q, c, _ := runSession(t, Config{BatchDelay: time.Millisecond, MaxBatchReadings: 100, PublishTimeout: timeout})
	if err := q.Append(testReadings(10, 1e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "first publish", func() bool { return len(c.snapshot()) == 1 })
	close(c.snapshot()[0].tok.done)
	waitFor(t, 10*time.Second, "queue drained", func() bool { return q.Stats().Readings == 0 })
	time.Sleep(3 * timeout) // quiet, longer than the publish timeout
	if err := q.Append(testReadings(10, 2e18), nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the session still publishing", func() bool { return len(c.snapshot()) == 2 })
}
