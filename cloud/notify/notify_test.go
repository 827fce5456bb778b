package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
				sigOK.Store(Verify("sekrit", body, r.Header.Get(HeaderSignature)) && r.Header.Get(HeaderDelivery) == "inc-1/1")
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
	sig := Sign("k", body)
	if !Verify("k", body, sig) || Verify("other", body, sig) || Verify("k", []byte(`{"id":"y"}`), sig) {
		t.Fatal("Verify disagrees with Sign")
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
