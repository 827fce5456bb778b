package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/abc4logistics/tankguard/cloud/incident"
)

func TestWebhookDeliver(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int // answers in order; the last repeats
		wantAttempts int
		wantErr      bool
	}{
		{"ok at once", []int{200}, 1, false},
		{"retried then ok", []int{503, 500, 204}, 3, false},
		{"permanent 400", []int{400}, 1, true},
		{"429 is retried", []int{429, 200}, 2, false},
		{"gives up", []int{502}, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			var sigOK atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				sigOK.Store(Verify("sekrit", body, r.Header.Get(HeaderSignature), time.Now(), 0) == nil && r.Header.Get(HeaderDelivery) == "inc-1/1")
				i := int(n.Add(1)) - 1
				w.WriteHeader(tc.statuses[min(i, len(tc.statuses)-1)])
			}))
			defer srv.Close()
			w := &Webhook{URL: srv.URL, Secret: "sekrit"}
			a, err := Deliver(context.Background(), w, incident.Notification{ID: "inc-1/1", Event: "opened"}, Retry{Attempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond})
			if a != tc.wantAttempts || (err != nil) != tc.wantErr {
				t.Fatalf("attempts %d err %v; want %d, error %v", a, err, tc.wantAttempts, tc.wantErr)
			}
			if !sigOK.Load() {
				t.Fatal("signature or delivery header wrong")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	at := time.Unix(1_800_000_000, 0)
	sig := Sign("k", at, body)
	if !strings.HasPrefix(sig, "t=1800000000,v1=") {
		t.Fatalf("header %q, want t=...,v1=...", sig)
	}
	for _, tc := range []struct {
		name   string
		secret string
		body   []byte
		header string
		now    time.Time
		ok     bool
	}{
		{"right", "k", body, sig, at.Add(time.Minute), true},
		{"clock a little behind", "k", body, sig, at.Add(-time.Minute), true},
		{"rotation: one of two v1 matches", "k", body, sig + ",v1=" + strings.Repeat("ab", 32), at, true},
		{"other secret", "other", body, sig, at, false},
		{"other body", "k", []byte(`{"id":"y"}`), sig, at, false},
		{"replayed after the tolerance", "k", body, sig, at.Add(DefaultTolerance + time.Second), false},
		{"from the future", "k", body, sig, at.Add(-DefaultTolerance - time.Second), false},
		{"time changed", "k", body, strings.Replace(sig, "t=1800000000", "t=1800000600", 1), at.Add(10 * time.Minute), false},
		{"no time", "k", body, sig[strings.Index(sig, "v1="):], at, false},
		{"old style", "k", body, "sha256=" + sig[strings.Index(sig, "v1=")+3:], at, false},
		{"empty", "k", body, "", at, false},
	} {
		err := Verify(tc.secret, tc.body, tc.header, tc.now, 0)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrSignature)) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestCapturedWebhookReplayRefused: a webhook captured off the wire and
// replayed after the tolerance fails verification, while the original
// passes (issue 15, observation 10: signatures carried no timestamp).
func TestCapturedWebhookReplayRefused(t *testing.T) {
	var header string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		header = r.Header.Get(HeaderSignature)
	}))
	defer srv.Close()
	sent := time.Now()
	w := &Webhook{URL: srv.URL, Secret: "sekrit", Now: func() time.Time { return sent }}
	if err := w.Send(context.Background(), incident.Notification{ID: "inc-1/1", Event: "opened"}); err != nil {
		t.Fatal(err)
	}
	if err := Verify("sekrit", body, header, sent.Add(time.Second), 0); err != nil {
		t.Fatalf("the delivered webhook does not verify: %v", err)
	}
	if err := Verify("sekrit", body, header, sent.Add(time.Hour), 0); !errors.Is(err, ErrSignature) {
		t.Errorf("the same request replayed an hour later: %v, want refused", err)
	}
}

func TestSNSPublishRequest(t *testing.T) {
	tests := []struct {
		name      string
		topic     string
		wantDedup bool
	}{
		{"standard topic", "arn:aws:sns:us-east-1:123456789012:fleet", false},
		{"fifo topic", "arn:aws:sns:us-east-1:123456789012:fleet.fifo", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				form, _ = url.ParseQuery(string(b))
				io.WriteString(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m</MessageId></PublishResult></PublishResponse>`)
			}))
			defer srv.Close()
			client := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
			s := &SNS{Client: client, TopicARN: tc.topic}
			n := incident.Notification{ID: "inc-00000007/2", Event: "changed", Incident: incident.Summary{Truck: "T1", Severity: "critical", Kind: "limit", Signal: "coolant_temp"}}
			if err := s.Send(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			if form.Get("Action") != "Publish" || form.Get("TopicArn") != tc.topic {
				t.Fatalf("request %v", form)
			}
			if got := form.Get("MessageDeduplicationId") == "inc-00000007/2" && form.Get("MessageGroupId") == "T1"; got != tc.wantDedup {
				t.Fatalf("dedup/group ids %q %q", form.Get("MessageDeduplicationId"), form.Get("MessageGroupId"))
			}
		})
	}
}
