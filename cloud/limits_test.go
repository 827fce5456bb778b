package cloud

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// Hostile and broken payloads from one truck are rejected and counted
// while other trucks' data keeps flowing; the limits live in uplink.Decode
// (uplink.Limits) and the embedded broker's packet limit
// (cloud/broker: DefaultMaxPacketSize, tested there).

// zstdFrame compresses raw as one zstd frame.
func zstdFrame(t testing.TB, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// framed builds a batch payload by hand: magic, version, flags, declared
// body length, body.
func framed(version, flags byte, declared uint64, body []byte) []byte {
	p := []byte{'T', 'G', version, flags}
	p = binary.AppendUvarint(p, declared)
	return append(p, body...)
}

// hostilePayloads are payloads truck "H" sends; each must be rejected.
func hostilePayloads(t testing.TB) []struct {
	name    string
	payload []byte
} {
	t.Helper()
	t0 := time.Now()
	// A body claiming a million readings (uncompressed: truck, counts).
	manyBody := binary.AppendUvarint(nil, 1)
	manyBody = append(manyBody, 'H')
	manyBody = binary.AppendUvarint(manyBody, 1<<20)
	manyBody = binary.AppendUvarint(manyBody, 0)
	manyBody = binary.AppendUvarint(manyBody, 0)
	tooMany := framed(uplink.Version, 0, uint64(len(manyBody)), manyBody)
	good, err := uplink.Encode(uplink.Batch{Truck: "H", Readings: series(sensors.WheelSpeed, 1, 5, t0, func(int) float64 { return 50 })})
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<20) // 64 MiB of zeros: a few KiB compressed
	bomb := zstdFrame(t, zeros)
	if len(bomb) > uplink.MaxPayloadSize {
		t.Fatalf("bomb is %d bytes compressed; want it under the payload limit", len(bomb))
	}
	wrongVersion := slices.Clone(good)
	wrongVersion[2] = 99
	return []struct {
		name    string
		payload []byte
	}{
		{"garbage", []byte("\x00\xffnot a batch")},
		{"oversized (above the 128 KiB payload limit, below the packet limit)", bytes.Repeat([]byte{'x'}, uplink.MaxPayloadSize+1000)},
		{"decompression bomb declaring its true size", framed(uplink.Version, 1, uint64(len(zeros)), bomb)},
		{"decompression bomb declaring a small size", framed(uplink.Version, 1, 1000, bomb)},
		{"declared body of 2^60 bytes", framed(uplink.Version, 1, 1<<60, bomb[:100])},
		{"too many records", tooMany},
		{"unknown version", wrongVersion},
		{"unknown flags", framed(uplink.Version, 0x80, 3, []byte{1, 2, 3})},
		{"truncated", good[:len(good)/2]},
	}
}

func TestHostilePayloadsDoNotAffectOtherTrucks(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	hostile := hostilePayloads(t)
	for _, h := range hostile {
		_, err := uplink.Decode(h.payload, c.Config().Limits)
		if err == nil {
			t.Fatalf("%s: uplink.Decode accepted it", h.name)
		}
		t.Logf("%s: %v", h.name, err)
	}
	const goodTrucks, batches, per = 3, 30, 20
	t0 := time.Now().Add(-time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, goodTrucks+1)
	for g := range goodTrucks {
		cl := dial(t, c.BrokerAddr(), fmt.Sprintf("good-%d", g))
		truck := fmt.Sprintf("G%d", g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				from := uint64(b*per + 1)
				p, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: series(sensors.CoolantTemp, from, from+per-1, t0.Add(time.Duration(b*per)*time.Second), func(int) float64 { return 85 })})
				if err != nil {
					errs <- err
					return
				}
				if tok := cl.Publish(uplink.Topic(truck, uplink.KindTelemetry), 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					errs <- fmt.Errorf("%s batch %d: not acknowledged: %v", truck, b, tok.Error())
					return
				}
			}
		}()
	}
	hcl := dial(t, c.BrokerAddr(), "hostile")
	const rounds = 3
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			for _, h := range hostile {
				// Each is acknowledged (so a broken gateway does not resend
				// it forever) and its connection stays up.
				if tok := hcl.Publish(uplink.Topic("H", uplink.KindTelemetry), 1, false, h.payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					errs <- fmt.Errorf("hostile %s: not acknowledged: %v", h.name, tok.Error())
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !hcl.IsConnectionOpen() {
		t.Error("the hostile truck's connection was dropped; bad payloads should only be rejected")
	}
	want := uint64(goodTrucks * batches * per)
	waitFor(t, "every good reading archived", func() bool {
		return c.Stats().Readings == want && c.Stats().ArchiveRows >= want
	})
	if got, w := c.Stats().BadPayloads, uint64(rounds*len(hostile)); got != w {
		t.Errorf("bad payloads counted = %d, want %d", got, w)
	}
	for g := range goodTrucks {
		truck := fmt.Sprintf("G%d", g)
		if got := archivedSeqs(t, c.ArchiveDir(), truck); !slices.Equal(got, seqRange(1, batches*per)) {
			t.Errorf("%s: archived %d readings, want seqs 1..%d exactly once", truck, len(got), batches*per)
		}
	}
	if got := archivedSeqs(t, c.ArchiveDir(), "H"); len(got) != 0 {
		t.Errorf("hostile truck: %d readings archived, want none", len(got))
	}
}

// TestFloodingTruckDoesNotStarveOthers: one truck publishes full-size
// batches as fast as the broker takes them; three others, publishing one
// batch at a time and waiting for each PUBACK, must all finish while the
// flood is still going. The embedded broker calls the ingest hook from
// each client's own connection goroutine and a client's next packet is
// read only after the hook returns, so each client has at most one
// message in each ingest commit, whatever it sends.
func TestFloodingTruckDoesNotStarveOthers(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	t0 := time.Now().Add(-24 * time.Hour)

	flood := dial(t, c.BrokerAddr(), "flood")
	var flooded atomic.Int64
	stop := make(chan struct{})
	floodDone := make(chan error, 1)
	go func() {
		seq := uint64(1)
		var toks []interface{ WaitTimeout(time.Duration) bool }
		defer func() {
			for _, tok := range toks {
				tok.WaitTimeout(10 * time.Second)
			}
		}()
		for {
			select {
			case <-stop:
				floodDone <- nil
				return
			default:
			}
			const n = 4096
			rs := make([]sensors.Reading, n)
			for i := range rs {
				rs[i] = sensors.Reading{Seq: seq, Time: t0.Add(time.Duration(seq) * 10 * time.Millisecond).UnixNano(), Signal: sensors.CoolantTemp, Value: float64(seq%97) + 0.25}
				seq++
			}
			p, err := uplink.Encode(uplink.Batch{Truck: "FLOOD", Readings: rs})
			if err != nil {
				floodDone <- err
				return
			}
			// Fire and forget, up to 64 unacknowledged: as hard as paho
			// lets one client push.
			tok := flood.Publish(uplink.Topic("FLOOD", uplink.KindTelemetry), 1, false, p)
			toks = append(toks, tok)
			if len(toks) >= 64 {
				toks[0].WaitTimeout(30 * time.Second)
				toks = toks[1:]
			}
			flooded.Add(1)
		}
	}()
	waitFor(t, "the flood to start", func() bool { return c.Stats().Readings > 0 })

	const goodTrucks, batches, per = 3, 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, goodTrucks)
	for g := range goodTrucks {
		cl := dial(t, c.BrokerAddr(), fmt.Sprintf("good-%d", g))
		truck := fmt.Sprintf("G%d", g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				from := uint64(b*per + 1)
				p, _ := uplink.Encode(uplink.Batch{Truck: truck, Readings: series(sensors.WheelSpeed, from, from+per-1, t0.Add(time.Duration(b*per)*time.Second), func(int) float64 { return 60 })})
				if tok := cl.Publish(uplink.Topic(truck, uplink.KindTelemetry), 1, false, p); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					errs <- fmt.Errorf("%s batch %d: not acknowledged during the flood: %v", truck, b, tok.Error())
					return
				}
			}
		}()
	}
	wg.Wait()
	atEnd := flooded.Load()
	close(stop)
	if err := <-floodDone; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("flooder sent %d batches of 4096 readings while the others sent %d batches each", atEnd, batches)
	if after := flooded.Load(); after == 0 {
		t.Fatal("the flood never ran")
	}
	for g := range goodTrucks {
		truck := fmt.Sprintf("G%d", g)
		waitFor(t, truck+" archived", func() bool { return len(archivedSeqs(t, c.ArchiveDir(), truck)) == batches*per })
	}
}

// TestOversizedPacketCountedInCloudStats: a packet above the broker's
// limit disconnects only its sender, before the broker reads it, and shows
// in the cloud's counters (Stats.Broker, served at /api/stats).
func TestOversizedPacketCountedInCloudStats(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	big := dial(t, c.BrokerAddr(), "big")
	good := dial(t, c.BrokerAddr(), "good")
	big.Publish(uplink.Topic("H", uplink.KindTelemetry), 1, false, make([]byte, 1<<20)).WaitTimeout(2 * time.Second)
	waitFor(t, "oversized packet counted", func() bool { return c.Stats().Broker.OversizedPackets == 1 && !big.IsConnectionOpen() })
	p, err := uplink.Encode(uplink.Batch{Truck: "G", Readings: series(sensors.WheelSpeed, 1, 10, time.Now(), func(int) float64 { return 50 })})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, good, uplink.Topic("G", uplink.KindTelemetry), p)
	waitFor(t, "the other truck's readings", func() bool { return c.Stats().Readings == 10 })
	if got := c.Stats().Messages; got != 1 {
		t.Errorf("messages = %d, want 1 (the oversized one never reached ingest)", got)
	}
}
