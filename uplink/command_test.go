package uplink

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

var commandCases = []struct {
	name    string
	payload string
	want    error // nil: valid
}{
	{"alert ack", `{"v":1,"id":"c-1","type":"alert_ack","ack":{"signal":"coolant_temp","start":100,"time":200,"by":"ops-anna","severity":"critical"}}`, nil},
	{"config update", `{"v":1,"id":"c-2","type":"config_update","config":{"coolant":{"high_limit":104}}}`, nil},
	{"not json", `hello`, ErrBadCommand},
	{"empty", ``, ErrBadCommand},
	{"version 2", `{"v":2,"id":"c","type":"config_update","config":{}}`, ErrBadCommand},
	{"no id", `{"v":1,"type":"config_update","config":{}}`, ErrBadCommand},
	{"long id", `{"v":1,"id":"` + strings.Repeat("x", 65) + `","type":"config_update","config":{}}`, ErrBadCommand},
	{"unknown type", `{"v":1,"id":"c","type":"reboot"}`, ErrBadCommand},
	{"unknown field", `{"v":1,"id":"c","type":"config_update","config":{},"extra":1}`, ErrBadCommand},
	{"trailing data", `{"v":1,"id":"c","type":"config_update","config":{}} {}`, ErrBadCommand},
	{"config not object", `{"v":1,"id":"c","type":"config_update","config":[1]}`, ErrBadCommand},
	{"ack without body", `{"v":1,"id":"c","type":"alert_ack"}`, ErrBadCommand},
	{"ack and config", `{"v":1,"id":"c","type":"alert_ack","ack":{"signal":"coolant_temp","start":1,"time":2,"by":"x","severity":"warning"},"config":{}}`, ErrBadCommand},
	{"ack unknown signal", `{"v":1,"id":"c","type":"alert_ack","ack":{"signal":"oil","start":1,"time":2,"by":"x","severity":"warning"}}`, ErrBadCommand},
	{"ack unknown severity", `{"v":1,"id":"c","type":"alert_ack","ack":{"signal":"coolant_temp","start":1,"time":2,"by":"x","severity":"doom"}}`, ErrBadCommand},
	{"ack no by", `{"v":1,"id":"c","type":"alert_ack","ack":{"signal":"coolant_temp","start":1,"time":2,"by":"","severity":"warning"}}`, ErrBadCommand},
	{"too large", `{"v":1,"id":"c","type":"config_update","config":{"x":"` + strings.Repeat("a", MaxCommandSize) + `"}}`, ErrTooLarge},
}

func TestDecodeCommand(t *testing.T) {
	for _, tc := range commandCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tc.payload))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				p, err := EncodeCommand(c)
				if err != nil {
					t.Fatal(err)
				}
				c2, err := DecodeCommand(p)
				if err != nil || c2.ID != c.ID || c2.Type != c.Type || string(c2.Config) != string(c.Config) {
					t.Fatalf("re-encode: %+v %v", c2, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommandDetectAck(t *testing.T) {
	c, err := DecodeCommand([]byte(commandCases[0].payload))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.DetectAck("T1")
	if err != nil {
		t.Fatal(err)
	}
	want := detect.Ack{Truck: "T1", Signal: sensors.CoolantTemp, Start: 100, Time: 200, By: "ops-anna", Severity: detect.SeverityCritical, Origin: detect.AckFleet}
	if a != want {
		t.Fatalf("got %+v want %+v", a, want)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, tc := range commandCases {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeCommand(p)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, err := EncodeCommand(c); err != nil {
			t.Fatalf("valid command does not re-encode: %v", err)
		}
	})
}

func TestPublisherDeliversCommands(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	q := openQueue(t)
	p := runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-9"}, q)
	waitFor(t, 10*time.Second, "online", func() bool { return p.State().Online })
	topic := Topic("T-9", KindCommand)
	for _, pl := range []string{commandCases[0].payload, "garbage", commandCases[0].payload, commandCases[1].payload} {
		if err := br.srv.Publish(topic, []byte(pl), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	var got []Command
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case c := <-p.Commands():
			got = append(got, c)
		case <-timeout:
			t.Fatalf("got %d commands, want 2", len(got))
		}
	}
	ids := map[string]bool{got[0].ID: true, got[1].ID: true}
	if !ids["c-1"] || !ids["c-2"] {
		t.Fatalf("got commands %+v", got)
	}
	waitFor(t, 5*time.Second, "counters", func() bool {
		st := p.State()
		return st.CommandsRejected == 1 && st.CommandsDuplicate == 1 && st.CommandsReceived == 2
	})
}
