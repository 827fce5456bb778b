package console

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
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
