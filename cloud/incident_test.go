package cloud

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/notify"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// recorder is an HTTP server that records requests and answers with
// status (and body).
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	status int
	body   string
}

type recorded struct {
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T, status int, body string) *recorder {
	r := &recorder{status: status, body: body}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Header.Clone(), b})
		r.mu.Unlock()
		w.WriteHeader(r.status)
		io.WriteString(w, r.body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

const snsPublishResponse = `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>`

func setFakeAWS(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

// overheat publishes, for truck, 60 s of normal coolant then 30 s above
// the limit, and the edge's own alert for it on the alerts lane. It
// returns the excursion start.
func overheat(t *testing.T, cl mqtt.Client, truck string, t0 time.Time, seq0 uint64) int64 {
	val := func(i int) float64 {
		if i >= 60 {
			return 118
		}
		return 88
	}
	rs := series(sensors.CoolantTemp, seq0+1, seq0+90, t0, val)
	start := rs[60].Time
	publishBatch(t, cl, uplink.KindAlerts, uplink.Batch{Truck: truck, Alerts: []detect.Transition{{
		Seq: seq0 + 91, Truck: truck, Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
		Phase: detect.Raised, Start: start, Time: rs[70].Time, Value: 118,
	}}})
	for i := 0; i < len(rs); i += 30 {
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: truck, Readings: rs[i : i+30]})
	}
	return start
}

func TestIncidentNotifyAndAck(t *testing.T) {
	setFakeAWS(t)
	hook := newRecorder(t, 200, "")
	snsSrv := newRecorder(t, 200, snsPublishResponse)
	c := startCloud(t, t.TempDir(), func(c *Config) {
		c.Notify.Webhooks = []WebhookConfig{{URL: hook.URL, Secret: "s3cret"}}
		c.Notify.SNSTopicARN = "arn:aws:sns:us-east-1:123456789012:fleet"
		c.Notify.SNSEndpoint = snsSrv.URL
		c.Notify.RetryInitial = 10 * time.Millisecond
	})
	cl := dial(t, c.BrokerAddr(), "sim")
	cmds := make(chan []byte, 4)
	if tok := cl.Subscribe(uplink.Topic("T9", uplink.KindCommand), 1, func(_ mqtt.Client, m mqtt.Message) { cmds <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	start := overheat(t, cl, "T9", time.Now().Add(-10*time.Minute).UTC().Truncate(time.Second), 0)

	var inc incident.Incident
	waitFor(t, "incident with both sources", func() bool {
		l := c.List()
		if len(l) > 1 {
			t.Fatalf("%d incidents for one excursion: %+v", len(l), l)
		}
		if len(l) == 1 && len(l[0].Sources) == 2 {
			inc = l[0]
			return true
		}
		return false
	})
	if inc.State != incident.StateOpen || inc.Severity != "critical" || inc.Start.UnixNano() != start {
		t.Fatalf("incident %+v", inc)
	}
	waitFor(t, "opened notifications", func() bool { return len(hook.requests()) >= 1 && len(snsSrv.requests()) >= 1 })

	// Webhook: signed JSON, one per state change.
	r := hook.requests()[0]
	if err := notify.Verify("s3cret", r.body, r.header.Get(notify.HeaderSignature), time.Now(), 0); err != nil {
		t.Fatalf("bad signature %q", r.header.Get(notify.HeaderSignature))
	}
	var n incident.Notification
	if err := json.Unmarshal(r.body, &n); err != nil || n.Event != incident.EventOpened || n.Incident.ID != inc.ID || n.Incident.Truck != "T9" {
		t.Fatalf("webhook body %s: %v", r.body, err)
	}
	// SNS: AWS Query protocol Publish with filterable attributes.
	form, err := url.ParseQuery(string(snsSrv.requests()[0].body))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("Action") != "Publish" || form.Get("TopicArn") != "arn:aws:sns:us-east-1:123456789012:fleet" {
		t.Fatalf("sns request %v", form)
	}
	attrs := map[string]string{}
	for i := 1; i <= 10; i++ {
		p := "MessageAttributes.entry." + itoa(i)
		if name := form.Get(p + ".Name"); name != "" {
			attrs[name] = form.Get(p + ".Value.StringValue")
		}
	}
	for k, v := range map[string]string{"truck": "T9", "severity": "critical", "kind": "limit", "signal": "coolant_temp", "event": "opened"} {
		if attrs[k] != v {
			t.Errorf("sns attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
	// events lists every grouped event, for filter policies on any of them.
	var grouped []string
	if err := json.Unmarshal([]byte(attrs["events"]), &grouped); err != nil || len(grouped) == 0 || grouped[0] != "opened" {
		t.Errorf("sns attribute events = %q, want a JSON array starting with opened", attrs["events"])
	}

	// Operator acknowledges in the console: incident acknowledged, the
	// truck gets an alert_ack command, the webhook hears it once.
	post := func(path, body string) int {
		resp, err := http.DefaultClient.Do(authed("POST", "http://"+c.HTTPAddr()+path, bytes.NewBufferString(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/incidents/"+inc.ID+"/ack", `{}`); code != 200 {
		t.Fatalf("ack: %d", code)
	}
	select {
	case p := <-cmds:
		var cmd uplink.Command
		if err := json.Unmarshal(p, &cmd); err != nil || cmd.Type != uplink.CommandAlertAck || cmd.Ack.By != "alice" || cmd.Ack.Start != start || cmd.Ack.Signal != "coolant_temp" {
			t.Fatalf("command %s: %v", p, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no command sent to the truck")
	}
	waitFor(t, "acknowledged notification", func() bool { return len(hook.requests()) == 2 })
	if got, _ := c.Incident(inc.ID); got.State != incident.StateAcknowledged || got.AckedBy != "alice" || got.AckedAt == nil {
		t.Fatalf("after ack %+v", got)
	}
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"second ack conflicts", "/api/incidents/" + inc.ID + "/ack", `{}`, 409},
		{"unknown incident", "/api/incidents/inc-404/ack", `{}`, 404},
		{"who is the signed-in user, not the body", "/api/incidents/" + inc.ID + "/ack", `{"by":"bob"}`, 400},
		{"bad json", "/api/incidents/" + inc.ID + "/ack", `{"note":`, 400},
		{"resolve while still critical is refused", "/api/incidents/" + inc.ID + "/resolve", ``, 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := post(tc.path, tc.body); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
	if s := c.Stats(); s.ConsoleBadRequests != 2 || s.Commands != 1 {
		t.Errorf("stats %+v", s)
	}
	// The refused resolve changed nothing. The engine cools down: the edge
	// clears its alert, the cloud sees normal readings, and the incident
	// resolves by itself.
	if got, _ := c.Incident(inc.ID); got.State != incident.StateAcknowledged || got.ResolvedAt != nil {
		t.Fatalf("after the refused resolve: %+v", got)
	}
	t1 := time.Unix(0, start).Add(30 * time.Second)
	publishBatch(t, cl, uplink.KindAlerts, uplink.Batch{Truck: "T9", Alerts: []detect.Transition{{
		Seq: 200, Truck: "T9", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
		Phase: detect.Cleared, Start: start, Time: t1.Add(20 * time.Second).UnixNano(), Value: 88,
	}}})
	cool := series(sensors.CoolantTemp, 201, 260, t1, func(int) float64 { return 88 })
	for i := 0; i < len(cool); i += 30 {
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "T9", Readings: cool[i : i+30]})
	}
	waitFor(t, "resolved notification", func() bool { return len(hook.requests()) == 3 })
	time.Sleep(200 * time.Millisecond)
	var events []string
	ids := map[string]bool{}
	for _, r := range hook.requests() {
		var n incident.Notification
		json.Unmarshal(r.body, &n)
		events = append(events, n.Event)
		if ids[n.ID] {
			t.Errorf("notification %s delivered twice", n.ID)
		}
		ids[n.ID] = true
	}
	if len(events) != 3 || events[0] != "opened" || events[1] != "acknowledged" || events[2] != "resolved" {
		t.Fatalf("webhook events %v", events)
	}
}

func TestWebhookRetriesThenDeadLetters(t *testing.T) {
	hook := newRecorder(t, 503, "busy")
	c := startCloud(t, t.TempDir(), func(c *Config) {
		c.Notify.Webhooks = []WebhookConfig{{URL: hook.URL, Secret: "k"}}
		c.Notify.Attempts = 3
		c.Notify.RetryInitial = 5 * time.Millisecond
		c.Notify.RetryMax = 20 * time.Millisecond
	})
	cl := dial(t, c.BrokerAddr(), "sim")
	overheat(t, cl, "T8", time.Now().Add(-10*time.Minute).UTC().Truncate(time.Second), 0)
	waitFor(t, "dead letter", func() bool { return c.Stats().NotifyDead == 1 })
	reqs := hook.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.header.Get(notify.HeaderDelivery) != reqs[0].header.Get(notify.HeaderDelivery) {
			t.Fatal("delivery id changed between retries")
		}
	}
	dl, err := c.DeadLetters()
	if err != nil || len(dl) != 1 || dl[0].Attempts != 3 || dl[0].Notification.Event != "opened" {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	inc, _ := c.Incident(dl[0].Notification.Incident.ID)
	if len(inc.Notifications) != 1 || inc.Notifications[0].Result == "ok" {
		t.Fatalf("notification log %+v", inc.Notifications)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
