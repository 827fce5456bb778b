package cab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// ackReq posts an acknowledgement of key with the given Host and headers
// (name, value pairs) and returns the status.
func ackReq(t *testing.T, base, host, body string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/ack", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestAckOnlyFromOwnPageAndHost: the driver's acknowledgement is taken
// only for the display's own host names and only from its own page; a
// page on a rebinding name (Host: evil.example with a matching Origin) is
// refused (issue 15, observation 4: it got 200 and was stored as the
// driver's ack).
func TestAckOnlyFromOwnPageAndHost(t *testing.T) {
	s, ts, sink := newTestServer(t, Config{Hosts: []string{"kiosk.cab"}})
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)
	s.Transition(tr)
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	body := ackBody(tr.Key(), detect.SeverityCritical)
	for _, tc := range []struct {
		name, host string
		hdr        []string
		want       int
	}{
		{"DNS rebinding: foreign Host with a matching Origin", "evil.example" + port, []string{"Origin", "http://evil.example" + port}, 403},
		{"foreign Host, same-origin fetch", "evil.example" + port, []string{"Sec-Fetch-Site", "same-origin"}, 403},
		{"no Origin and no Sec-Fetch-Site", "", nil, 403},
		{"cross-site fetch", "", []string{"Sec-Fetch-Site", "cross-site", "Origin", ts.URL}, 403},
		{"foreign Origin", "", []string{"Origin", "http://example.com"}, 403},
		{"null Origin", "", []string{"Origin", "null"}, 403},
	} {
		if got := ackReq(t, ts.URL, tc.host, body, tc.hdr...); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := len(sink.all()); n != 0 {
		t.Fatalf("refused requests produced %d acks", n)
	}
	if s.soundLocked() != detect.SeverityCritical {
		t.Fatal("a refused request silenced the alarm")
	}
	// The configured kiosk name, and loopback, are the display's own.
	if got := ackReq(t, ts.URL, "kiosk.cab"+port, body, "Origin", "http://kiosk.cab"+port, "Sec-Fetch-Site", "same-origin"); got != 200 {
		t.Errorf("kiosk host: %d, want 200", got)
	}
	u, _ := url.Parse(ts.URL)
	s.Transition(raised(sensors.CargoTemp, detect.KindLimit, detect.SeverityCritical, t0, 60))
	if got := ackReq(t, ts.URL, "", ackBody(alertKey("T1", sensors.CargoTemp, t0.UnixNano()), detect.SeverityCritical), "Origin", "http://"+u.Host); got != 200 {
		t.Errorf("loopback with its Origin: %d, want 200", got)
	}
}

// TestRemoteAckNamedDriverDoesNotSilence: a fleet user whose name is
// "driver" acknowledging in the console does not silence the cab; only
// the cab button does (issue 15, observation 3).
func TestRemoteAckNamedDriverDoesNotSilence(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	ev := openEvents(t, ts.URL)
	ev.next("state")
	tr := raised(sensors.CoolantTemp, detect.KindLimit, detect.SeverityCritical, t0, 120)
	s.Transition(tr)
	ev.next("alert")
	a := detect.Ack{Truck: "T1", Signal: tr.Signal, Start: tr.Start, Time: t0.Add(time.Minute).UnixNano(), By: "driver", Severity: detect.SeverityCritical}
	if !s.RemoteAck(a) {
		t.Fatal("remote ack not matched")
	}
	got := decode[alertEventJSON](t, ev.next("alert").Data)
	if got.Sound != "critical" || got.Alert.DriverAck != nil {
		t.Errorf("a console user named driver: sound %q, driver ack %+v; want still critical, no driver ack", got.Sound, got.Alert.DriverAck)
	}
	if got.Alert.RemoteAck == nil || got.Alert.RemoteAck.By != "driver" {
		t.Errorf("remote ack shown as %+v, want by the fleet user \"driver\"", got.Alert.RemoteAck)
	}
}

// TestHalfSentRequestClosed: the display's server closes a connection
// whose request body never finishes (issue 15, observation 6), while an
// event stream stays open past the read timeout.
func TestHalfSentRequestClosed(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", ReadTimeout: 300 * time.Millisecond, Heartbeat: 100 * time.Millisecond}, "T1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Ready()
	ev := openEvents(t, "http://"+s.Addr())
	defer ev.close()
	ev.next("state")
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/ack HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"key\":", s.Addr())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a half-sent request is still open 5 s later (read timeout 300 ms)")
	}
	// The stream, older than the read timeout, is still connected.
	time.Sleep(500 * time.Millisecond)
	if n := s.Stats().Clients; n != 1 {
		t.Errorf("%d event streams connected after the read timeout, want 1", n)
	}
	ev.next("ping")
}
