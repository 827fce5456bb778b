package cloud

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// childEnv carries a JSON Config to a re-executed test binary, which then
// runs only the cloud (see TestMain).
const childEnv = "TANKGUARD_CLOUD_CHILD_CONFIG"

func runChild(cfgJSON string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		select {
		case <-c.Ready():
			fmt.Println("READY")
		case <-ctx.Done():
		}
	}()
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is the cloud running in a separate process.
type child struct {
	cmd *exec.Cmd
}

func startChild(t *testing.T, cfg Config) *child {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "READY" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child cloud exited before ready")
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child cloud not ready")
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	}
}

func (c *child) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child cloud: %v", err)
	}
}

// TestSIGKILLMidStream kills the cloud process with SIGKILL while trucks
// publish, restarts it, and checks that every reading a truck got a PUBACK
// for is archived exactly once, that the open incident is still open, and
// that no notification was delivered twice.
func TestSIGKILLMidStream(t *testing.T) {
	hook := newRecorder(t, 200, "")
	dir := t.TempDir()
	cfg := Config{
		DataDir:        dir,
		BrokerListen:   s3test.FreeAddr(t),
		BrokerPlainTCP: true,
		HTTPListen:     s3test.FreeAddr(t),
		Console:        console.Config{Users: testUsers},
		FlushInterval:  100 * time.Millisecond,
		Notify:         NotifyConfig{Webhooks: []WebhookConfig{{URL: hook.URL, Secret: "k"}}, RetryInitial: 50 * time.Millisecond},
	}
	proc := startChild(t, cfg)

	const trucks, batches, per = 3, 150, 40
	var acked atomic.Int64
	pubDone := make(chan error, 1)
	go func() { pubDone <- publishStream(cfg.BrokerListen, trucks, batches, per, &acked) }()

	// Kill once an incident exists and its notification is recorded as
	// delivered, while the stream is still running.
	var opened incident.Incident
	waitFor(t, "incident notified", func() bool {
		var l []incident.Incident
		getJSON(t, "http://"+cfg.HTTPListen+"/api/incidents", &l)
		for _, inc := range l {
			if len(inc.Notifications) > 0 {
				opened = inc
				return true
			}
		}
		return false
	})
	// The console shows the delivery before its bbolt commit ends; give
	// the commit time. (A kill between a webhook's 2xx and that commit
	// would resend with the same X-Tankguard-Delivery id: at-least-once.)
	time.Sleep(300 * time.Millisecond)
	if acked.Load() >= trucks*batches {
		t.Fatal("stream finished before the kill; make it longer")
	}
	proc.kill()
	killedAt := acked.Load()
	time.Sleep(200 * time.Millisecond)
	proc = startChild(t, cfg)
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publisher did not finish")
	}
	t.Logf("killed after %d of %d batches were acknowledged", killedAt, trucks*batches)

	var after incident.Incident
	getJSON(t, "http://"+cfg.HTTPListen+"/api/incidents", &[]incident.Incident{})
	waitFor(t, "incident after restart", func() bool {
		var l []incident.Incident
		getJSON(t, "http://"+cfg.HTTPListen+"/api/incidents", &l)
		for _, inc := range l {
			if inc.ID == opened.ID {
				after = inc
				return true
			}
		}
		return false
	})
	if after.State != incident.StateOpen {
		t.Errorf("incident %s is %s after restart, want open", after.ID, after.State)
	}
	proc.stop(t) // clean stop: final flush

	rows, err := archive.ReadReadings(dir + "/archive")
	if err != nil {
		t.Fatal(err)
	}
	perTruck := map[string][]int64{}
	for _, r := range rows {
		perTruck[r.Truck] = append(perTruck[r.Truck], r.Seq)
	}
	for i := range trucks {
		truck := fmt.Sprintf("K%d", i)
		seqs := perTruck[truck]
		slices.Sort(seqs)
		if !slices.Equal(seqs, seqRange(1, batches*per)) {
			t.Errorf("truck %s: %d readings archived, want %d exactly once (first diff at %d)", truck, len(seqs), batches*per, firstDiff(seqs, seqRange(1, batches*per)))
		}
	}
	ids := map[string]int{}
	openedPerIncident := map[string]int{}
	for _, r := range hook.requests() {
		var n incident.Notification
		if err := json.Unmarshal(r.body, &n); err != nil {
			t.Fatal(err)
		}
		ids[n.ID]++
		if n.Event == incident.EventOpened {
			openedPerIncident[n.Incident.ID]++
		}
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("notification %s delivered %d times", id, n)
		}
	}
	for id, n := range openedPerIncident {
		if n != 1 {
			t.Errorf("incident %s opened-notified %d times", id, n)
		}
	}
	if openedPerIncident[opened.ID] != 1 {
		t.Errorf("incident %s not notified", opened.ID)
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// publishStream sends batches for trucks K0..K{n-1} like a gateway: each
// batch is resent until the broker acknowledges it. K0's coolant overheats
// from its 3rd batch on and stays hot.
func publishStream(addr string, trucks, batches, per int, acked *atomic.Int64) error {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("crash-sim").
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	cl := mqtt.NewClient(opts)
	cl.Connect()
	defer cl.Disconnect(100)
	// One reading a second: they start far enough back to end before now
	// (readings ahead of the cloud's clock are quarantined).
	t0 := time.Now().Add(-time.Duration(batches*per)*time.Second - time.Minute).UTC().Truncate(time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for b := range batches {
		// Paced (at least 20 ms a round, so 3 s in all) so that the stream
		// is still running when the test kills the cloud, however fast the
		// machine.
		time.Sleep(20 * time.Millisecond)
		for k := range trucks {
			truck := fmt.Sprintf("K%d", k)
			from := uint64(b*per + 1)
			val := func(i int) float64 {
				if k == 0 && b >= 2 {
					return 120
				}
				return 85
			}
			p, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: series(sensors.CoolantTemp, from, from+uint64(per)-1, t0.Add(time.Duration(b*per)*time.Second), val)})
			if err != nil {
				return err
			}
			for {
				if time.Now().After(deadline) {
					return fmt.Errorf("batch %d of %s never acknowledged", b, truck)
				}
				tok := cl.Publish(uplink.Topic(truck, uplink.KindTelemetry), 1, false, p)
				if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			acked.Add(1)
		}
	}
	return nil
}
