package buffer

import (
	"errors"
	"math"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

var blockCases = []struct {
	name string
	key  uint64
	rs   []sensors.Reading
}{
	{"one", 1, []sensors.Reading{{Seq: 1, Time: 5, Value: 1.5, Signal: sensors.CoolantTemp}}},
	{"gaps and odd values", 10, []sensors.Reading{
		{Seq: 12, Time: -5, Value: math.NaN(), Signal: sensors.CargoTemp, Flags: sensors.ClockUntrusted},
		{Seq: 13, Time: math.MaxInt64, Value: math.Inf(-1), Signal: sensors.CargoTemp},
		{Seq: 99, Time: math.MinInt64, Value: math.Copysign(0, -1), Signal: 255},
	}},
	{"compressed", 100, func() []sensors.Reading {
		rs := mkReadings(500, 1e18)
		for i := range rs {
			rs[i].Seq = 100 + uint64(i)
		}
		return rs
	}()},
}

func TestBlockRoundTrip(t *testing.T) {
	for _, tc := range blockCases {
		t.Run(tc.name, func(t *testing.T) {
			enc, _ := encodeBlock(nil, nil, tc.key, tc.rs, 0)
			got, _, err := decodeBlock(nil, nil, tc.key, enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.rs) {
				t.Fatalf("%d readings, want %d", len(got), len(tc.rs))
			}
			for i, w := range tc.rs {
				g := got[i]
				if g.Seq != w.Seq || g.Time != w.Time || g.Signal != w.Signal || g.Flags != w.Flags || math.Float64bits(g.Value) != math.Float64bits(w.Value) {
					t.Fatalf("reading %d: got %+v want %+v", i, g, w)
				}
			}
			// Any truncation is detected, never a panic or a short read.
			for n := 0; n < len(enc); n++ {
				if _, _, err := decodeBlock(nil, nil, tc.key, enc[:n]); !errors.Is(err, ErrCorruptRecord) {
					t.Fatalf("truncated to %d bytes: %v", n, err)
				}
			}
		})
	}
}

func FuzzDecodeBlock(f *testing.F) {
	for _, tc := range blockCases {
		enc, _ := encodeBlock(nil, nil, tc.key, tc.rs, 0)
		f.Add(tc.key, enc)
	}
	f.Fuzz(func(t *testing.T, key uint64, v []byte) {
		rs, _, err := decodeBlock(nil, nil, key, v)
		if err != nil {
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("untyped error %v", err)
			}
			if len(rs) != 0 {
				t.Fatal("readings returned with an error")
			}
			return
		}
		if _, err := parseBlockHeader(v); err != nil {
			t.Fatal("block decodes but its header does not")
		}
	})
}

func FuzzDecodePriority(f *testing.F) {
	al := detect.Transition{Truck: "T", Signal: 1, Kind: 2, Severity: 3, Phase: 1, Start: -1, Time: 2, Value: math.NaN(), ConfigHash: 7}
	ack := detect.Ack{Truck: "T", Signal: 2, Start: 1, Time: 2, By: "driver", Severity: 2}
	f.Add(encodeAlert(nil, &al))
	f.Add(encodeAck(nil, &ack))
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, v []byte) {
		var c Chunk
		err := decodePriority(&c, 1, v)
		if err != nil && !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && c.Len() != 1 {
			t.Fatalf("decoded %d records from one", c.Len())
		}
	})
}

func TestDamagedRecordSkippedCountedAndDeleted(t *testing.T) {
	q := openTest(t, Options{BlockReadings: 10})
	if err := q.Append(mkReadings(30, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	// Scribble over the middle block (seqs 11..20 of this queue).
	b := q.Stats().FirstSeq - 1
	err := q.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLane[Telemetry]).Put(seqKey(b+11), []byte{0, 5, 9, 1, 200, 1, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.Read(Telemetry, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Readings) != 20 || c.Skipped != 1 || c.First != b+1 || c.Last != b+30 {
		t.Fatalf("read %d readings, %d skipped, keys %d..%d", len(c.Readings), c.Skipped, c.First, c.Last)
	}
	// Reading it again (the uplink re-reads partial batches) does not
	// count it again.
	if c2, _ := q.Read(Telemetry, 0, 100); c2.Skipped != 1 {
		t.Fatalf("second read skipped %d", c2.Skipped)
	}
	if st := q.Stats(); st.CorruptRecords != 1 {
		t.Fatalf("CorruptRecords %d, want 1", st.CorruptRecords)
	}
	if err := q.Delete(Telemetry, c.First, c.Last); err != nil {
		t.Fatal(err)
	}
	if c, _ := q.Read(Telemetry, 0, 100); c.Len()+c.Skipped != 0 {
		t.Fatal("damaged record not deleted with its chunk")
	}
}

func TestHugeAppendCommitsAndWaits(t *testing.T) {
	q := openTest(t, Options{MaxPendingReadings: 4096, BlockReadings: 1024})
	rs := mkReadings(100_000, 0)
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.SyncedSeq != st.FirstSeq-1+100_000 || st.Readings != 100_000 || st.Pending != 0 {
		t.Fatalf("over MaxPendingReadings Append should commit before returning: %+v", st)
	}
}
