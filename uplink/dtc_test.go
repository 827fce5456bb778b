package uplink

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/abc4logistics/tankguard/sensors"
)

var dtcDM1s = []sensors.DM1{
	{Source: 3, Time: 20, Lamps: sensors.Lamps{}},
	{Source: 0, Time: 10, Lamps: sensors.Lamps{AmberWarning: sensors.LampOn, Malfunction: sensors.LampNotAvailable},
		DTCs: []sensors.DTC{{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 127}}},
}

func TestDTCReportRoundTrip(t *testing.T) {
	r := NewDTCReport("T-1", 42, dtcDM1s)
	if r.ECUs[0].Source != 0 || r.ECUs[1].Source != 3 {
		t.Fatalf("ECUs not sorted by source: %+v", r.ECUs)
	}
	p, err := EncodeDTCReport(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDTCReport(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v\nwant %+v", got, r)
	}
	if want := `{"spn":110,"fmi":0,"oc":3}`; !strings.Contains(string(p), want) {
		t.Fatalf("payload %s does not contain %s", p, want)
	}
}

// TestDecodeDTCReportRejects names what a cloud does with reports it
// cannot use: a newer version is refused by version, not as garbage.
func TestDecodeDTCReportRejects(t *testing.T) {
	good, err := EncodeDTCReport(NewDTCReport("T-1", 42, dtcDM1s))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := []struct {
		name    string
		payload string
		want    error
	}{
		{"newer version", strings.Replace(s, `"v":1`, `"v":2`, 1), ErrVersion},
		{"newer version with fields this build does not know", `{"v":2,"truck":"T-1","mil_distance_km":12}`, ErrVersion},
		{"no version", `{"truck":"T-1","time":1,"ecus":[]}`, ErrVersion},
		{"unknown field", strings.Replace(s, `"time":42`, `"time":42,"x":1`, 1), ErrBadDTC},
		{"bad truck", strings.Replace(s, `"T-1"`, `"T 1"`, 1), ErrBadDTC},
		{"bad lamp", strings.Replace(s, `"amber_warning":"on"`, `"amber_warning":"blinking"`, 1), ErrBadDTC},
		{"SPN beyond 19 bits", strings.Replace(s, `"spn":110`, `"spn":524288`, 1), ErrBadDTC},
		{"FMI beyond 31", strings.Replace(s, `"fmi":1`, `"fmi":32`, 1), ErrBadDTC},
		{"ECUs out of order", strings.Replace(strings.Replace(s, `"source":0`, `"source":9`, 1), `"source":3`, `"source":1`, 1), ErrBadDTC},
		{"trailing data", s + "{}", ErrBadDTC},
		{"not JSON", "TG\x01", ErrBadDTC},
		{"too large", `{"v":1,"truck":"` + strings.Repeat("x", MaxDTCSize) + `"}`, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDTCReport([]byte(tc.payload))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBatchDecoderRejectsDTCReport: a DTC report is not a batch, so a
// decoder that does not know the topic kind refuses it by its magic.
func TestBatchDecoderRejectsDTCReport(t *testing.T) {
	p, err := EncodeDTCReport(NewDTCReport("T-1", 42, dtcDM1s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(p, DefaultLimits()); !errors.Is(err, ErrFormat) {
		t.Fatalf("Decode(DTC report) = %v, want ErrFormat", err)
	}
}

// TestPublisherSendsDTCs publishes reports to a broker, retained: the
// latest arrives, an equal one is not sent again, and after the broker
// restarts the current report is sent again on reconnect.
func TestPublisherSendsDTCs(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	q := openQueue(t)
	p := runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-1", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, q)
	dtcs := func() []DTCReport {
		br.mu.Lock()
		defer br.mu.Unlock()
		return append([]DTCReport(nil), br.dtcs...)
	}
	p.SetDTCs(NewDTCReport("", 1, dtcDM1s))
	waitFor(t, 10*time.Second, "first DTC report", func() bool { return len(dtcs()) == 1 && p.DTCsSent() })
	p.SetDTCs(NewDTCReport("", 2, dtcDM1s)) // same codes, later time: not sent
	cleared := []sensors.DM1{{Source: 0, Time: 30}, {Source: 3, Time: 30}}
	p.SetDTCs(NewDTCReport("", 3, cleared))
	waitFor(t, 10*time.Second, "cleared DTC report", func() bool { return len(dtcs()) == 2 && p.DTCsSent() })
	got := dtcs()
	if got[0].Time != 1 || len(got[0].ECUs[0].DTCs) != 2 || got[0].Truck != "T-1" {
		t.Fatalf("first report %+v", got[0])
	}
	if got[1].Time != 3 || len(got[1].ECUs[0].DTCs) != 0 {
		t.Fatalf("second report %+v", got[1])
	}
	if rm := br.srv.Topics.Messages(Topic("T-1", KindDTC)); len(rm) != 1 || !rm[0].FixedHeader.Retain {
		t.Fatalf("retained DTC messages on the broker: %d", len(rm))
	}
	// A restarted broker without persistence lost the retained report:
	// the reconnected publisher sends the current one again.
	br.stop()
	br.start(br.addr)
	waitFor(t, 10*time.Second, "DTC report after reconnect", func() bool { return len(dtcs()) == 3 })
	if got := dtcs()[2]; got.Time != 3 {
		t.Fatalf("report after reconnect %+v", got)
	}
	_, _, _, errs := br.snapshot()
	if len(errs) > 0 {
		t.Fatalf("decode errors: %v", errs)
	}
}

// FuzzDecodeDTCReport feeds arbitrary payloads to DecodeDTCReport: an
// error wrapping ErrBadDTC, ErrVersion or ErrTooLarge, or a report that
// re-encodes to one decoding the same. Seeded with a good report and the
// rejection table's payloads.
func FuzzDecodeDTCReport(f *testing.F) {
	good, err := EncodeDTCReport(NewDTCReport("T-1", 42, dtcDM1s))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"v":1`, `"v":2`, 1)))
	f.Add([]byte(`{"v":1,"truck":"T-1","time":1,"ecus":[]}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeDTCReport(p)
		if err != nil {
			if !errors.Is(err, ErrBadDTC) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		again, err := EncodeDTCReport(r)
		if err != nil {
			t.Fatalf("decoded report does not re-encode: %v", err)
		}
		r2, err := DecodeDTCReport(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v != %+v (%v)", r, r2, err)
		}
	})
}

// refuseDTC is a broker ACL that predates up/dtc: everything else allowed.
type refuseDTC struct{ mochi.HookBase }

func (*refuseDTC) ID() string { return "refuse-dtc" }
func (*refuseDTC) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (*refuseDTC) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (*refuseDTC) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return !write || !strings.HasSuffix(topic, "/"+KindDTC)
}

// TestPublisherGivesUpOnRefusedDTCs: a broker whose ACL refuses up/dtc
// drops the connection on each report (mochi, like AWS IoT Core, does so
// for MQTT 3.1.1). The publisher stops sending reports after two such
// connections, and the telemetry still all arrives.
func TestPublisherGivesUpOnRefusedDTCs(t *testing.T) {
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: discardLog()})
	if err := srv.AddHook(new(refuseDTC), nil); err != nil {
		t.Fatal(err)
	}
	addr := newLoopbackListener(t, srv)
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	readings := 0
	err := srv.Subscribe(UpFilter, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		if b, err := Decode(pk.Payload, DefaultLimits()); err == nil {
			mu.Lock()
			readings += len(b.Readings)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	q := openQueue(t)
	p := runPublisher(t, Config{BrokerURL: "tcp://" + addr, Truck: "T-1", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		BatchDelay: 20 * time.Millisecond}, q)
	p.SetDTCs(NewDTCReport("", 1, dtcDM1s))
	waitFor(t, 10*time.Second, "DTC reports given up", p.DTCsDisabled)
	if err := q.Append(testReadings(500, 1_700_000_000e9), nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "telemetry delivered", func() bool { mu.Lock(); defer mu.Unlock(); return readings == 500 })
	if st := p.State(); st.Connects > 4 {
		t.Errorf("%d connections: the refused reports made the publisher reconnect in a loop", st.Connects)
	}
}
