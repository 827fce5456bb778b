package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserSignInStaysOnSite: in a real browser, signing in from a
// crafted /login?next=... link lands on the console, never on another
// host (issue 15, observation 5: /login?next=/%5Cevil.example sent the
// browser to evil.example).
func TestBrowserSignInStaysOnSite(t *testing.T) {
	e := start(t, 0, area{}, nil)
	ctx := newBrowser(t, 1000, 700)
	u, _ := url.Parse(e.url)
	for _, next := range []string{"/%5Cevil.example", "//evil.example", "/%2F%2Fevil.example", "https://evil.example/", "/%09/evil.example", "/..//evil.example"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/login?next="+next)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the sign-in page", `!!document.getElementById('name')`, 10*time.Second)
		if err := chromedp.Do(ctx,
			chromedp.SetValue(chromedp.ID("name"), "vera"),
			chromedp.SetValue(chromedp.ID("password"), "vera-password"),
			chromedp.Click(chromedp.ID("signin")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "leaving the sign-in page", `location.pathname !== '/login'`, 10*time.Second)
		time.Sleep(300 * time.Millisecond) // a redirect chain, if any, settles
		if host := eval[string](t, ctx, `location.host`); host != u.Host {
			t.Errorf("next=%s: signed in and landed on host %q, want the console %q", next, host, u.Host)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/login")); err != nil {
			t.Fatal(err)
		}
		eval[any](t, ctx, `fetch('/api/logout', {method: 'POST'}).then(() => true)`)
	}
}
