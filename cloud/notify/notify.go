package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/abc4logistics/tankguard/cloud/incident"
)

// Webhook headers.
const (
	HeaderSignature = "X-Tankguard-Signature" // "sha256=" + hex HMAC-SHA256 of the body with the webhook's secret
	HeaderDelivery  = "X-Tankguard-Delivery"  // the notification id; the same on every retry
	HeaderEvent     = "X-Tankguard-Event"     // the notification event
)

// Sender delivers one notification once. Implementations are safe for
// concurrent use.
type Sender interface {
	// Name identifies the channel in logs and the notification log.
	Name() string
	// Escalation reports whether the channel gets only escalations.
	Escalation() bool
	Send(ctx context.Context, n incident.Notification) error
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Deliver stops retrying.
func Permanent(err error) error { return permanent{err} }

// Retry is a retry policy: Attempts tries in all, waiting Initial, then
// doubling up to Max, between them.
type Retry struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

// Deliver sends n through s, retrying per r. It returns the attempts made
// and the last error (nil on success).
func Deliver(ctx context.Context, s Sender, n incident.Notification, r Retry) (int, error) {
	wait := r.Initial
	var err error
	for attempt := 1; ; attempt++ {
		err = s.Send(ctx, n)
		if err == nil {
			return attempt, nil
		}
		var p permanent
		if errors.As(err, &p) || attempt >= r.Attempts {
			return attempt, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, r.Max)
	}
}

// Webhook posts notifications as JSON to URL, signed with Secret.
type Webhook struct {
	URL    string
	Secret string
	// EscalationOnly: only escalations go to this webhook.
	EscalationOnly bool
	Client         *http.Client // nil: a client with a 10 s timeout
}

// Name implements Sender.
func (w *Webhook) Name() string { return "webhook " + w.URL }

// Escalation implements Sender.
func (w *Webhook) Escalation() bool { return w.EscalationOnly }

// Sign returns the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret.
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Send implements Sender. A 2xx answer is success; 4xx other than 408 and
// 429 is permanent; anything else is retried.
func (w *Webhook) Send(ctx context.Context, n incident.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", w.URL, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	req.Header.Set(HeaderDelivery, n.ID)
	req.Header.Set(HeaderEvent, n.Event)
	cl := w.Client
	if cl == nil {
		cl = defaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.URL, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 429:
		return Permanent(fmt.Errorf("webhook %s: %s", w.URL, resp.Status))
	}
	return fmt.Errorf("webhook %s: %s", w.URL, resp.Status)
}

// SNS publishes notifications to an SNS topic. The message is the
// notification JSON; attributes truck, severity, kind, signal, event and
// events (a String.Array of every grouped event) allow subscription
// filter policies. On a FIFO topic (ARN ending in
// ".fifo") the notification id is the deduplication id and the truck the
// message group, so a resend after a crash is dropped by SNS.
type SNS struct {
	Client         *sns.Client
	TopicARN       string
	EscalationOnly bool
}

// Name implements Sender.
func (s *SNS) Name() string { return "sns " + s.TopicARN }

// Escalation implements Sender.
func (s *SNS) Escalation() bool { return s.EscalationOnly }

// Send implements Sender.
func (s *SNS) Send(ctx context.Context, n incident.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return Permanent(err)
	}
	attr := func(v string) snstypes.MessageAttributeValue {
		if v == "" {
			v = "none"
		}
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	subject := fmt.Sprintf("tankguard %s: %s %s %s %s", n.Event, n.Incident.Truck, n.Incident.Severity, n.Incident.Kind, n.Incident.Signal)
	if len(subject) > 100 {
		subject = subject[:100]
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(s.TopicARN),
		Message:  aws.String(string(body)),
		Subject:  aws.String(subject),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"truck":    attr(n.Incident.Truck),
			"severity": attr(n.Incident.Severity),
			"kind":     attr(n.Incident.Kind),
			"signal":   attr(n.Incident.Signal),
			"event":    attr(n.Event),
			// Every event grouped into this message, for filter policies
			// that match any of them.
			"events": {DataType: aws.String("String.Array"), StringValue: aws.String(eventsJSON(n))},
		},
	}
	if strings.HasSuffix(s.TopicARN, ".fifo") {
		in.MessageGroupId = aws.String(n.Incident.Truck)
		in.MessageDeduplicationId = aws.String(n.ID)
	}
	_, err = s.Client.Publish(ctx, in)
	if err != nil {
		return fmt.Errorf("sns publish %s: %w", s.TopicARN, err)
	}
	return nil
}

// eventsJSON is n.Events as a JSON array (n.Event if empty).
func eventsJSON(n incident.Notification) string {
	ev := n.Events
	if len(ev) == 0 {
		ev = []string{n.Event}
	}
	b, _ := json.Marshal(ev) // strings always encode
	return string(b)
}
