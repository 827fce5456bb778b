package uplink

import (
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// TestConfirmBeforeDelete runs a publisher with Confirm against a broker
// that acknowledges everything: nothing is deleted on PUBACK alone, what
// stays unconfirmed is sent again after ConfirmTimeout, and once a
// stand-in for the cloud confirms the payloads (after a malformed
// confirmation, counted and ignored) the queue drains.
func TestConfirmBeforeDelete(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	var confirming atomic.Bool
	var seen atomic.Int64
	err := br.srv.Subscribe(UpFilter, 99, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		seen.Add(1)
		if !confirming.Load() {
			return
		}
		truck, _, err := ParseTopic(pk.TopicName)
		p, eerr := EncodeDurable([]uint64{PayloadID(pk.Payload)})
		if err == nil && eerr == nil {
			br.srv.Publish(Topic(truck, KindDurable), p, false, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	q := openQueue(t)
	rs := testReadings(3000, 1_700_000_000e9)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	al := []detect.Transition{{Truck: "T-1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 1, Time: 2, Value: 110}}
	if err := q.Append(nil, al, nil); err != nil {
		t.Fatal(err)
	}
	p := runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-1", BatchDelay: 20 * time.Millisecond, MaxBatchReadings: 500, Window: 2,
		Confirm: true, ConfirmTimeout: 300 * time.Millisecond, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, q)
	waitFor(t, 10*time.Second, "a resend after the confirm timeout", func() bool { return p.State().ConfirmTimeouts >= 2 })
	if st := q.Stats(); st.Readings != len(rs) || st.Alerts != 1 {
		t.Fatalf("deleted without the cloud's confirmation: %d readings, %d alerts left", st.Readings, st.Alerts)
	}
	// A telemetry batch is whole blocks of 256: at most 500+255 readings.
	if u, most := p.State().Unconfirmed, 2*(500+255)+1; u == 0 || u > most {
		t.Errorf("unconfirmed %d records, want 1..%d (window of 2 batches, plus the alert)", u, most)
	}
	waitFor(t, 10*time.Second, "a malformed confirmation counted", func() bool {
		br.srv.Publish(Topic("T-1", KindDurable), []byte("junk"), false, 1)
		time.Sleep(20 * time.Millisecond)
		return p.State().BadConfirmations > 0
	})
	if st := q.Stats(); st.Readings != len(rs) {
		t.Fatalf("a malformed confirmation deleted %d readings", len(rs)-st.Readings)
	}
	confirming.Store(true)
	waitFor(t, 10*time.Second, "queue drained on confirmations", func() bool {
		st := q.Stats()
		return st.Readings == 0 && st.Alerts == 0
	})
	waitFor(t, 5*time.Second, "nothing unconfirmed", func() bool { return p.State().Unconfirmed == 0 })
}

func TestDurableRoundTrip(t *testing.T) {
	ids := []uint64{1, 1 << 63, 42}
	p, err := EncodeDurable(ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDurable(p)
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 1<<63 || got[2] != 42 {
		t.Fatalf("round trip %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("TGD\x02\x01"), p[:len(p)-1], append(append([]byte(nil), p...), 0), []byte("TGD\x01\x00")} {
		if _, err := DecodeDurable(bad); err == nil {
			t.Errorf("DecodeDurable(%q) accepted", bad)
		}
	}
	if _, err := EncodeDurable(nil); err == nil {
		t.Error("EncodeDurable(nil) accepted")
	}
}
