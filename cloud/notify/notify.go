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
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/abc4logistics/tankguard/cloud/incident"
)

// Webhook headers.
const (
	HeaderSignature = "X-Tankguard-Signature" // "t=<unix seconds>,v1=<hex HMAC-SHA256>": see Sign and Verify
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
	// Now is the clock that stamps signatures (nil: time.Now).
	Now func() time.Time
}

// Name implements Sender.
func (w *Webhook) Name() string { return "webhook " + w.URL }

// Escalation implements Sender.
func (w *Webhook) Escalation() bool { return w.EscalationOnly }

// DefaultTolerance is how far a webhook's signed time may be from the
// receiver's clock for Verify to accept it: a captured request replayed
// later than this is refused. Receivers drop repeats within it by the
// HeaderDelivery id (the same on every retry of one notification).
const DefaultTolerance = 5 * time.Minute

// ErrSignature reports a webhook signature that Verify refused; the
// wrapping error says why (malformed, wrong, or outside the tolerance).
var ErrSignature = errors.New("notify: bad webhook signature")

// Sign returns the HeaderSignature value for body sent at t:
//
//	t=<Unix seconds>,v1=<hex HMAC-SHA256 over "<Unix seconds>." + body, keyed by secret>
//
// The time is signed with the body, so a receiver can refuse a replay
// (Verify). Each delivery attempt is signed afresh.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a webhook's HeaderSignature value against its raw body
// and secret, as a receiver must: the header has a "t" and at least one
// "v1" (several are allowed, for secret rotation), one v1 equals
// HMAC-SHA256(secret, t + "." + body) (compared in constant time), and t
// is within tolerance of now (DefaultTolerance if tolerance <= 0).
// Otherwise it returns an error wrapping ErrSignature.
func Verify(secret string, body []byte, header string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed element %q", ErrSignature, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one t", ErrSignature)
			}
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid t (signed time)", ErrSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrSignature)
	}
	want := mac(secret, ts, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return fmt.Errorf("%w: signature does not match the body and secret", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %v from now, outside the tolerance of %v (a replay?)", ErrSignature, d.Round(time.Second), tolerance)
	}
	return nil
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
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req.Header.Set(HeaderSignature, Sign(w.Secret, now(), body))
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
