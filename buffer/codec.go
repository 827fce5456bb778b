package buffer

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// On-disk record formats (private to this package; the wire format lives in
// uplink). Keys are 8-byte big-endian sequence numbers.
//
// Telemetry block (key = seq of its first reading as first stored):
//
//	byte    flags (blockZstd, blockThinned)
//	uvarint count
//	uvarint span      last seq - key
//	varint  firstTime Unix ns of the first reading
//	uvarint rawLen    body length before compression
//	body: per reading uvarint(seq-prev) (prev starts at key), byte signal,
//	      byte flags, varint(time-prevTime), uvarint(bits(value) XOR bits of
//	      the previous value of the same signal)
//
// Priority record (key = seq): byte recAlert or recAck, then the fields.
const (
	blockZstd    = 1 << 0
	blockThinned = 1 << 1

	recAlert = 1
	recAck   = 2

	minCompress = 128
	maxBodyLen  = 64 << 20
)

var (
	zencOnce sync.Once
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
)

func zstdCodec() (*zstd.Encoder, *zstd.Decoder) {
	zencOnce.Do(func() {
		var err error
		zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // only on invalid options
		}
		zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxBodyLen))
		if err != nil {
			panic(err)
		}
	})
	return zenc, zdec
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// encodeBlock appends the stored form of rs (seq-ordered, rs[0].Seq >= key)
// to dst. scratch is reused for the raw body.
func encodeBlock(dst, scratch []byte, key uint64, rs []sensors.Reading, flags byte) (out, scratchOut []byte) {
	var prevVal [256]uint64
	body := scratch[:0]
	prevSeq, prevTime := key, rs[0].Time
	for _, r := range rs {
		body = binary.AppendUvarint(body, r.Seq-prevSeq)
		prevSeq = r.Seq
		body = append(body, byte(r.Signal), byte(r.Flags))
		body = binary.AppendVarint(body, r.Time-prevTime)
		prevTime = r.Time
		b := math.Float64bits(r.Value)
		body = binary.AppendUvarint(body, b^prevVal[r.Signal])
		prevVal[r.Signal] = b
	}
	if len(body) >= minCompress {
		flags |= blockZstd
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	dst = binary.AppendUvarint(dst, rs[len(rs)-1].Seq-key)
	dst = binary.AppendVarint(dst, rs[0].Time)
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	if flags&blockZstd != 0 {
		enc, _ := zstdCodec()
		dst = enc.EncodeAll(body, dst)
	} else {
		dst = append(dst, body...)
	}
	return dst, body
}

// blockHeader is the uncompressed head of a telemetry block.
type blockHeader struct {
	flags     byte
	count     int
	span      uint64
	firstTime int64
	rawLen    int
	body      []byte
}

func parseBlockHeader(v []byte) (blockHeader, error) {
	var h blockHeader
	if len(v) < 1 {
		return h, fmt.Errorf("empty block: %w", ErrCorruptRecord)
	}
	h.flags = v[0]
	p := v[1:]
	count, n := binary.Uvarint(p)
	if n <= 0 || count == 0 || count > 1<<20 {
		return h, fmt.Errorf("block count: %w", ErrCorruptRecord)
	}
	p = p[n:]
	span, n := binary.Uvarint(p)
	if n <= 0 {
		return h, fmt.Errorf("block span: %w", ErrCorruptRecord)
	}
	p = p[n:]
	ft, n := binary.Varint(p)
	if n <= 0 {
		return h, fmt.Errorf("block time: %w", ErrCorruptRecord)
	}
	p = p[n:]
	raw, n := binary.Uvarint(p)
	if n <= 0 || raw > maxBodyLen {
		return h, fmt.Errorf("block length: %w", ErrCorruptRecord)
	}
	h.count, h.span, h.firstTime, h.rawLen, h.body = int(count), span, ft, int(raw), p[n:]
	return h, nil
}

// decodeBlock appends the readings of the block stored under key to dst.
// scratch is reused for decompression.
func decodeBlock(dst []sensors.Reading, scratch []byte, key uint64, v []byte) ([]sensors.Reading, []byte, error) {
	h, err := parseBlockHeader(v)
	if err != nil {
		return dst, scratch, err
	}
	body := h.body
	if h.flags&blockZstd != 0 {
		_, dec := zstdCodec()
		scratch, err = dec.DecodeAll(h.body, scratch[:0])
		if err != nil {
			return dst, scratch, fmt.Errorf("block body: %v: %w", err, ErrCorruptRecord)
		}
		body = scratch
	}
	if len(body) != h.rawLen {
		return dst, scratch, fmt.Errorf("block body length %d, header says %d: %w", len(body), h.rawLen, ErrCorruptRecord)
	}
	var prevVal [256]uint64
	prevSeq, prevTime := key, h.firstTime
	start := len(dst)
	for i := 0; i < h.count; i++ {
		ds, n := binary.Uvarint(body)
		if n <= 0 || len(body) < n+2 {
			return dst[:start], scratch, fmt.Errorf("block reading %d: %w", i, ErrCorruptRecord)
		}
		body = body[n:]
		sig, fl := body[0], body[1]
		body = body[2:]
		dt, n := binary.Varint(body)
		if n <= 0 {
			return dst[:start], scratch, fmt.Errorf("block reading %d time: %w", i, ErrCorruptRecord)
		}
		body = body[n:]
		xv, n := binary.Uvarint(body)
		if n <= 0 {
			return dst[:start], scratch, fmt.Errorf("block reading %d value: %w", i, ErrCorruptRecord)
		}
		body = body[n:]
		prevSeq += ds
		prevTime += dt
		prevVal[sig] ^= xv
		dst = append(dst, sensors.Reading{Seq: prevSeq, Time: prevTime, Value: math.Float64frombits(prevVal[sig]), Signal: sensors.Signal(sig), Flags: sensors.Flags(fl)})
	}
	if len(body) != 0 || prevSeq-key != h.span {
		return dst[:start], scratch, fmt.Errorf("block trailer: %w", ErrCorruptRecord)
	}
	return dst, scratch, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendF64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func encodeAlert(dst []byte, t *detect.Transition) []byte {
	dst = append(dst, recAlert)
	dst = appendString(dst, t.Truck)
	dst = append(dst, byte(t.Signal), byte(t.Kind), byte(t.Severity), byte(t.Phase))
	dst = binary.AppendVarint(dst, t.Start)
	dst = binary.AppendVarint(dst, t.Time)
	dst = appendF64(dst, t.Value)
	dst = appendF64(dst, t.Baseline)
	return binary.LittleEndian.AppendUint64(dst, t.ConfigHash)
}

func encodeAck(dst []byte, a *detect.Ack) []byte {
	dst = append(dst, recAck)
	dst = appendString(dst, a.Truck)
	dst = append(dst, byte(a.Signal), byte(a.Severity))
	dst = binary.AppendVarint(dst, a.Start)
	dst = binary.AppendVarint(dst, a.Time)
	return appendString(dst, a.By)
}

// recReader reads fields from a stored priority record, remembering the
// first error.
type recReader struct {
	p   []byte
	err error
}

func (r *recReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", what, ErrCorruptRecord)
	}
	r.p = nil
}

func (r *recReader) byte(what string) byte {
	if len(r.p) < 1 {
		r.fail(what)
		return 0
	}
	b := r.p[0]
	r.p = r.p[1:]
	return b
}

func (r *recReader) varint(what string) int64 {
	v, n := binary.Varint(r.p)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *recReader) u64(what string) uint64 {
	if len(r.p) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.p)
	r.p = r.p[8:]
	return v
}

func (r *recReader) str(what string) string {
	n, k := binary.Uvarint(r.p)
	if k <= 0 || n > uint64(len(r.p)-k) {
		r.fail(what)
		return ""
	}
	s := string(r.p[k : k+int(n)])
	r.p = r.p[k+int(n):]
	return s
}

// decodePriority decodes a stored priority record into c.
func decodePriority(c *Chunk, seq uint64, v []byte) error {
	r := recReader{p: v}
	switch r.byte("record type") {
	case recAlert:
		t := detect.Transition{Seq: seq}
		t.Truck = r.str("alert truck")
		t.Signal = sensors.Signal(r.byte("alert signal"))
		t.Kind = detect.Kind(r.byte("alert kind"))
		t.Severity = detect.Severity(r.byte("alert severity"))
		t.Phase = detect.Phase(r.byte("alert phase"))
		t.Start = r.varint("alert start")
		t.Time = r.varint("alert time")
		t.Value = math.Float64frombits(r.u64("alert value"))
		t.Baseline = math.Float64frombits(r.u64("alert baseline"))
		t.ConfigHash = r.u64("alert config hash")
		if r.err != nil {
			return r.err
		}
		c.Alerts = append(c.Alerts, t)
	case recAck:
		a := detect.Ack{Seq: seq}
		a.Truck = r.str("ack truck")
		a.Signal = sensors.Signal(r.byte("ack signal"))
		a.Severity = detect.Severity(r.byte("ack severity"))
		a.Start = r.varint("ack start")
		a.Time = r.varint("ack time")
		a.By = r.str("ack by")
		if r.err != nil {
			return r.err
		}
		c.Acks = append(c.Acks, a)
	default:
		if r.err != nil {
			return r.err
		}
		return fmt.Errorf("record type %d: %w", v[0], ErrCorruptRecord)
	}
	if len(r.p) != 0 {
		return fmt.Errorf("record trailer: %w", ErrCorruptRecord)
	}
	return nil
}
