package uplink

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

func TestMosquittoInterop(t *testing.T) {
	url := "tcp://" + mosquittotest.Start(t)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var status []string
	var decodeErrs int
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("cloud-test"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	tok := sub.SubscribeMultiple(map[string]byte{UpFilter: 1, StatusFilter: 1}, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		defer mu.Unlock()
		_, kind, err := ParseTopic(m.Topic())
		if err != nil {
			decodeErrs++
			return
		}
		if kind == KindStatus {
			status = append(status, string(m.Payload()))
			return
		}
		b, err := Decode(m.Payload(), DefaultLimits())
		if err != nil {
			decodeErrs++
			return
		}
		for _, r := range b.Readings {
			seen[r.Seq] = true
		}
		for _, a := range b.Alerts {
			seen[a.Seq] = true
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	q := openQueue(t)
	rs := testReadings(30000, 1_767_225_600_000_000_000)
	al := []detect.Transition{{Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised}}
	if err := q.Append(rs, al, nil); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(Config{BrokerURL: url, Truck: "T-m", MaxBatchReadings: 4096}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// A command from the cloud through mosquitto.
	waitFor(t, 10*time.Second, "online", func() bool { return p.State().Online })
	if tok := sub.Publish(Topic("T-m", KindCommand), 1, false, commandCases[1].payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case c := <-p.Commands():
		if c.Type != CommandConfigUpdate {
			t.Fatalf("command %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no command through mosquitto")
	}
	waitFor(t, 20*time.Second, "everything delivered through mosquitto", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == len(rs)+1
	})
	waitFor(t, 10*time.Second, "queue empty", func() bool { st := q.Stats(); return st.Readings+st.Alerts == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "offline status", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(status) >= 2 && status[len(status)-1] == StatusOffline
	})
	mu.Lock()
	defer mu.Unlock()
	if status[0] != StatusOnline || decodeErrs != 0 {
		t.Fatalf("status %v, %d decode errors", status, decodeErrs)
	}
}
