package console

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/incident"
)

// TestParallelSignInThrottled: bursts of parallel wrong passwords against
// the real HTTP handler are throttled, and the right password is refused
// while the lock-out lasts (issue 15, observation 1: 3 x 24 wrong passwords
// gave 72 x 401, 0 x 429, then the right password 200).
func TestParallelSignInThrottled(t *testing.T) {
	f := newFixture(t, Config{})
	codes := map[int]int{}
	for range 3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code := f.client(t).login("otto", "wrong-password")
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	if codes[401] > 5 || codes[429] == 0 || codes[401]+codes[429] != 72 {
		t.Errorf("72 parallel wrong passwords: %v; want at most 5 x 401 (the free failures), the rest 429", codes)
	}
	if code := f.client(t).login("otto", "otto-password"); code != http.StatusTooManyRequests {
		t.Errorf("right password during the lock-out: %d, want 429", code)
	}
	// The lock-out ends (the fixture's clock is the authenticator's).
	f.advance(2 * time.Minute)
	if code := f.client(t).login("otto", "otto-password"); code != 200 {
		t.Errorf("right password after the lock-out: %d, want 200", code)
	}
}

// TestSignInRedirectSameSiteOnly: the page goes, after sign-in, where the
// server says, and the server names only a same-site relative path
// (issue 15, observation 5: /login?next=/%5Cevil.example).
func TestSignInRedirectSameSiteOnly(t *testing.T) {
	f := newFixture(t, Config{})
	for _, tc := range []struct{ next, want string }{
		{"/trucks/T1?x=1#top", "/trucks/T1?x=1#top"},
		{"/", "/"},
		{"", "/"},
		{`/\evil.example`, "/"},
		{"//evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/..//evil.example", "/"},
		{"/a/..//evil.example", "/"},
		{"/%2e%2e//evil.example", "/"},
		{"/./%2Fevil.example", "/"},
		{"/trucks/T%201", "/trucks/T%201"},
	} {
		c := f.client(t)
		body := fmt.Sprintf(`{"name":"vera","password":"vera-password","next":%q}`, tc.next)
		code, resp, _ := c.do("POST", "/api/login", body)
		var got struct {
			Next string `json:"next"`
		}
		if code != 200 || json.Unmarshal([]byte(resp), &got) != nil || got.Next != tc.want {
			t.Errorf("next %q: %d %s, want 200 with next %q", tc.next, code, resp, tc.want)
		}
	}
	// The page uses the server's answer, not the query string.
	_, js, _ := f.client(t).do("GET", "/login.js", "")
	if !strings.Contains(js, ".next") {
		t.Errorf("login.js does not use the server's next: %s", js)
	}
}

// TestSessionCookieSecureOverTLS: served over TLS, the session cookie is
// Secure even if the config does not say so (issue 15, observation 11).
func TestSessionCookieSecureOverTLS(t *testing.T) {
	f := newFixture(t, Config{})
	ts := httptest.NewTLSServer(f.c.Handler())
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := hc.Post(ts.URL+"/api/login", "application/json", strings.NewReader(`{"name":"vera","password":"vera-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if sc := res.Header.Get("Set-Cookie"); res.StatusCode != 200 || !strings.Contains(sc, "Secure") {
		t.Fatalf("login over TLS: %d, Set-Cookie %q, want Secure", res.StatusCode, sc)
	}
	// Over plain HTTP (loopback) it stays usable: not Secure.
	_, _, h := f.client(t).do("POST", "/api/login", `{"name":"vera","password":"vera-password"}`)
	if sc := h.Get("Set-Cookie"); strings.Contains(sc, "Secure") {
		t.Errorf("plain HTTP cookie is Secure: %q", sc)
	}
}

// TestEventStreamWriteDeadline: a live client that stops reading is cut
// off by the per-event write deadline instead of holding its connection
// and goroutine forever (issue 15, observation 6).
func TestEventStreamWriteDeadline(t *testing.T) {
	f := newFixture(t, Config{EventWriteTimeout: 200 * time.Millisecond})
	closed := make(chan string, 16) // remote addresses of closed connections
	ts := httptest.NewUnstartedServer(f.c.Handler())
	ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- c.RemoteAddr().String()
		}
	}
	ts.Start()
	defer ts.Close()
	c := f.client(t)
	c.base = ts.URL
	if code := c.login("vera", "vera-password"); code != 200 {
		t.Fatalf("login %d", code)
	}
	u, _ := url.Parse(ts.URL)
	var cookie string
	for _, ck := range c.hc.Jar.Cookies(u) {
		cookie = ck.Name + "=" + ck.Value
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nAccept: text/event-stream\r\n\r\n", u.Host, cookie)
	head := make([]byte, 256)
	if _, err := conn.Read(head); err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 200") {
		t.Fatalf("events: %q %v", head, err)
	}
	// Then never read again, while the console pushes megabytes.
	big := incident.Incident{ID: "inc-big", Truck: "T1", State: incident.StateOpen}
	for i := range 5000 {
		big.History = append(big.History, incident.Event{At: time.Now(), Type: "changed", Detail: fmt.Sprintf("event %d of a long incident", i)})
	}
	for range 40 {
		f.c.IncidentChanged(big)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case a := <-closed:
			if a == conn.LocalAddr().String() {
				return
			}
		case <-deadline:
			t.Fatal("the stalled event stream's connection is still open 10 s later")
		}
	}
}
