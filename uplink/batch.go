package uplink

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// Batch is what one MQTT message carries: readings, alert transitions and
// alert acknowledgements of one truck, each with its per-truck Seq.
// Readings are in strictly increasing Seq order (Seq >= 1). Alerts and
// Acks from a gateway are in Seq order too; the cloud's re-detected alerts
// have Seq 0, so the format checks neither for them.
type Batch struct {
	Truck    string
	Readings []sensors.Reading
	Alerts   []detect.Transition
	Acks     []detect.Ack
}

// Limits bound what Decode accepts from the outside world. A zero field
// means the DefaultLimits value.
type Limits struct {
	// MaxPayload is the largest payload accepted, in bytes on the wire.
	MaxPayload int
	// MaxDecompressed is the largest body accepted after zstd
	// decompression; at most HardMaxDecompressed.
	MaxDecompressed int
	// MaxRecords is the most readings plus alerts plus acks in one batch.
	MaxRecords int
}

// HardMaxDecompressed caps Limits.MaxDecompressed.
const HardMaxDecompressed = 16 << 20

// DefaultLimits are the limits the cloud uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{MaxPayload: MaxPayloadSize, MaxDecompressed: 4 << 20, MaxRecords: MaxBatchRecords}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPayload <= 0 {
		l.MaxPayload = d.MaxPayload
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = d.MaxDecompressed
	}
	l.MaxDecompressed = min(l.MaxDecompressed, HardMaxDecompressed)
	if l.MaxRecords <= 0 {
		l.MaxRecords = d.MaxRecords
	}
	return l
}

// Wire format version 1 (see PROTOCOL.md):
//
//	"TG" version=1 flags uvarint(bodyLen) body
//
// flags bit 0: body is one zstd frame; bit 1: every alert record ends
// with uvarint(active kinds) (detect.Transition.Active; set only when an
// alert in the batch has any, so other batches are what they always were);
// other bits must be 0.
const (
	magic0, magic1 = 'T', 'G'
	// Version is the batch format version Encode writes and Decode accepts.
	Version   = 1
	flagZstd  = 1 << 0
	flagKinds = 1 << 1
	maxString = 128

	modeXOR      = 0
	modeDelta    = 1
	modeDeltaDod = 2
	maxScale2    = 16
	maxScale10   = 9
	maxExact     = 1 << 53
)

var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
)

func codecs() (*zstd.Encoder, *zstd.Decoder) {
	zOnce.Do(func() {
		var err error
		zEnc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic(err) // only invalid options
		}
		zDec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(HardMaxDecompressed), zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
	})
	return zEnc, zDec
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Encode returns the wire form of b: version 1, zstd-compressed. It
// reports ErrInvalidBatch if b breaks the rules in Batch (truck id,
// readings' Seq at least 1 and strictly increasing, known signals, kinds
// and phases, at most MaxBatchRecords records, strings at most 128 bytes).
// It does not bound the payload size: the publisher splits batches whose
// payload exceeds its MaxPayload. Safe for concurrent use; the caller owns
// the result.
func Encode(b Batch) ([]byte, error) {
	if err := checkBatch(&b); err != nil {
		return nil, fmt.Errorf("uplink encode: %w", err)
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body := (*bp)[:0]
	body = appendString(body, b.Truck)
	body = binary.AppendUvarint(body, uint64(len(b.Readings)))
	body = binary.AppendUvarint(body, uint64(len(b.Alerts)))
	body = binary.AppendUvarint(body, uint64(len(b.Acks)))
	body = encodeReadings(body, b.Readings)
	var flags byte = flagZstd
	for i := range b.Alerts {
		if b.Alerts[i].Active != 0 {
			flags |= flagKinds
		}
	}
	for i := range b.Alerts {
		body = encodeAlert(body, &b.Alerts[i], flags&flagKinds != 0)
	}
	for i := range b.Acks {
		body = encodeAck(body, &b.Acks[i])
	}
	*bp = body
	out := make([]byte, 0, 16+len(body)/2)
	out = append(out, magic0, magic1, Version, flags)
	out = binary.AppendUvarint(out, uint64(len(body)))
	enc, _ := codecs()
	return enc.EncodeAll(body, out), nil
}

func checkBatch(b *Batch) error {
	if !ValidTruckID(b.Truck) {
		return fmt.Errorf("truck %q: %w", b.Truck, ErrInvalidBatch)
	}
	if n := len(b.Readings) + len(b.Alerts) + len(b.Acks); n > MaxBatchRecords {
		return fmt.Errorf("%d records > %d: %w", n, MaxBatchRecords, ErrInvalidBatch)
	}
	var prev uint64
	for i, r := range b.Readings {
		if r.Seq <= prev {
			return fmt.Errorf("reading %d: seq %d not above %d: %w", i, r.Seq, prev, ErrInvalidBatch)
		}
		if !r.Signal.Valid() {
			return fmt.Errorf("reading %d: %v: %w", i, r.Signal, ErrInvalidBatch)
		}
		prev = r.Seq
	}
	// Alerts and acks from a gateway come in Seq order; the cloud's own
	// re-detected alerts have Seq 0. Neither order nor Seq is checked.
	for i, a := range b.Alerts {
		if (a.Truck != "" && a.Truck != b.Truck) || !a.Signal.Valid() || !validKind(a.Kind) || !validSeverity(a.Severity) || !validPhase(a.Phase) {
			return fmt.Errorf("alert %d (seq %d): bad truck, signal, kind, severity or phase: %w", i, a.Seq, ErrInvalidBatch)
		}
	}
	for i, a := range b.Acks {
		if (a.Truck != "" && a.Truck != b.Truck) || !a.Signal.Valid() || !validSeverity(a.Severity) || !validBy(a.By) {
			return fmt.Errorf("ack %d (seq %d): bad truck, signal, severity or by: %w", i, a.Seq, ErrInvalidBatch)
		}
	}
	return nil
}

func validKind(k detect.Kind) bool {
	return k != detect.KindInvalid && !strings.HasPrefix(k.String(), "kind(")
}

func validSeverity(s detect.Severity) bool { return !strings.HasPrefix(s.String(), "severity(") }

func validPhase(p detect.Phase) bool {
	return p != detect.PhaseInvalid && !strings.HasPrefix(p.String(), "phase(")
}

func validBy(s string) bool { return len(s) <= maxString && utf8.ValidString(s) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func appendZ(dst []byte, v int64) []byte { return binary.AppendUvarint(dst, zigzag(v)) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// timeUnit returns the largest e <= 9 such that every time is a multiple
// of 10^e ns.
func timeUnit(rs []sensors.Reading) int {
	e := 9
	for _, r := range rs {
		for e > 0 && r.Time%pow10[e] != 0 {
			e--
		}
		if e == 0 {
			break
		}
	}
	return e
}

func scale(a, b int) float64 { return float64(int64(1)<<a) * float64(pow10[b]) }

// findScale returns the smallest scale 2^a*10^b with which every value of
// signal s in rs round-trips exactly as float64(q)/scale with |q| < 2^53.
func findScale(rs []sensors.Reading, s sensors.Signal) (a, b int, ok bool) {
	best := math.Inf(1)
	for b2 := 0; b2 <= maxScale10; b2++ {
	next:
		for a2 := 0; a2 <= maxScale2; a2++ {
			sc := scale(a2, b2)
			if sc >= best {
				break
			}
			for _, r := range rs {
				if r.Signal != s {
					continue
				}
				q := math.Round(r.Value * sc)
				if !(math.Abs(q) < maxExact) || math.Float64bits(q/sc) != math.Float64bits(r.Value) {
					continue next
				}
			}
			best, a, b, ok = sc, a2, b2, true
			break
		}
	}
	return a, b, ok
}

// encodeReadings writes the readings section: time unit, seqs, signal and
// flag columns, then per signal present (ascending) its time column and
// value column.
func encodeReadings(dst []byte, rs []sensors.Reading) []byte {
	if len(rs) == 0 {
		return dst
	}
	e := timeUnit(rs)
	unit := pow10[e]
	dst = append(dst, byte(e))
	dst = binary.AppendUvarint(dst, rs[0].Seq)
	for i := 1; i < len(rs); i++ {
		dst = binary.AppendUvarint(dst, rs[i].Seq-rs[i-1].Seq-1)
	}
	var present [256]bool
	for _, r := range rs {
		dst = append(dst, byte(r.Signal))
		present[r.Signal] = true
	}
	for _, r := range rs {
		dst = append(dst, byte(r.Flags))
	}
	for s := range present {
		if !present[s] {
			continue
		}
		sig := sensors.Signal(s)
		// Times: first absolute, then delta, then delta of delta.
		var times deltaCoder
		for _, r := range rs {
			if r.Signal == sig {
				dst = appendZ(dst, times.next(r.Time/unit, true))
			}
		}
		dst = encodeValues(dst, rs, sig)
	}
	return dst
}

func encodeValues(dst []byte, rs []sensors.Reading, sig sensors.Signal) []byte {
	a, b, ok := findScale(rs, sig)
	if !ok {
		dst = append(dst, modeXOR)
		var prev uint64
		for _, r := range rs {
			if r.Signal == sig {
				v := math.Float64bits(r.Value)
				dst = binary.AppendUvarint(dst, v^prev)
				prev = v
			}
		}
		return dst
	}
	sc := scale(a, b)
	// Pick delta or delta-of-delta by encoded size.
	var costD, costDD int
	var cd, cdd deltaCoder
	for _, r := range rs {
		if r.Signal != sig {
			continue
		}
		q := int64(math.Round(r.Value * sc))
		first := cd.n == 0
		d, dd := cd.next(q, false), cdd.next(q, true)
		if !first {
			costD += uvarintLen(zigzag(d))
			costDD += uvarintLen(zigzag(dd))
		}
	}
	mode := byte(modeDelta)
	if costDD < costD {
		mode = modeDeltaDod
	}
	dst = append(dst, mode, byte(a), byte(b))
	var values deltaCoder
	for _, r := range rs {
		if r.Signal == sig {
			dst = appendZ(dst, values.next(int64(math.Round(r.Value*sc)), mode == modeDeltaDod))
		}
	}
	return dst
}

// deltaCoder turns a series into what the batch format stores: the first
// value, then deltas, or (dod) the first delta and then deltas of deltas.
type deltaCoder struct {
	n           int
	prev, prevD int64
}

// next returns what to store for v, the series' next value.
func (c *deltaCoder) next(v int64, dod bool) int64 {
	out, d := v, v-c.prev
	switch {
	case c.n == 0:
	case c.n == 1 || !dod:
		out = d
	default:
		out = d - c.prevD
	}
	if c.n > 0 {
		c.prevD = d
	}
	c.prev = v
	c.n++
	return out
}

func appendF64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func encodeAlert(dst []byte, t *detect.Transition, kinds bool) []byte {
	dst = binary.AppendUvarint(dst, t.Seq)
	dst = append(dst, byte(t.Signal), byte(t.Kind), byte(t.Severity), byte(t.Phase))
	dst = binary.AppendVarint(dst, t.Start)
	dst = binary.AppendVarint(dst, t.Time)
	dst = appendF64(dst, t.Value)
	dst = appendF64(dst, t.Baseline)
	dst = binary.LittleEndian.AppendUint64(dst, t.ConfigHash)
	if kinds {
		dst = binary.AppendUvarint(dst, uint64(t.Active))
	}
	return dst
}

func encodeAck(dst []byte, a *detect.Ack) []byte {
	dst = binary.AppendUvarint(dst, a.Seq)
	dst = append(dst, byte(a.Signal), byte(a.Severity))
	dst = binary.AppendVarint(dst, a.Start)
	dst = binary.AppendVarint(dst, a.Time)
	return appendString(dst, a.By)
}

// Decode parses a payload from the wire, enforcing lim (zero fields mean
// DefaultLimits). Errors wrap ErrTooLarge (size, decompressed size or
// record count over lim), ErrVersion (unknown version), ErrFormat
// (malformed bytes) or ErrInvalidBatch (well-formed but breaking the
// rules in Batch), and are *DecodeError values naming the field. Safe for
// concurrent use; the caller owns the result.
func Decode(payload []byte, lim Limits) (Batch, error) {
	lim = lim.withDefaults()
	if len(payload) > lim.MaxPayload {
		return Batch{}, decodeErr("payload", 0, ErrTooLarge, "%d bytes > %d", len(payload), lim.MaxPayload)
	}
	if len(payload) < 5 || payload[0] != magic0 || payload[1] != magic1 {
		return Batch{}, decodeErr("magic", 0, ErrFormat, "not a tankguard batch")
	}
	if payload[2] != Version {
		return Batch{}, decodeErr("version", 2, ErrVersion, "version %d, want %d", payload[2], Version)
	}
	flags := payload[3]
	if flags&^(flagZstd|flagKinds) != 0 {
		return Batch{}, decodeErr("flags", 3, ErrFormat, "unknown flags %#x", flags)
	}
	rawLen, n := binary.Uvarint(payload[4:])
	if n <= 0 {
		return Batch{}, decodeErr("body length", 4, ErrFormat, "bad varint")
	}
	if rawLen > uint64(lim.MaxDecompressed) {
		return Batch{}, decodeErr("body length", 4, ErrTooLarge, "%d bytes decompressed > %d", rawLen, lim.MaxDecompressed)
	}
	body := payload[4+n:]
	if flags&flagZstd != 0 {
		_, dec := codecs()
		out, err := dec.DecodeAll(body, make([]byte, 0, int(rawLen)))
		if err != nil {
			return Batch{}, decodeErr("zstd body", 4+n, ErrFormat, "%v", err)
		}
		body = out
	}
	if uint64(len(body)) != rawLen {
		return Batch{}, decodeErr("body length", 4, ErrFormat, "body is %d bytes, header says %d", len(body), rawLen)
	}
	d := decoder{p: body, kinds: flags&flagKinds != 0}
	return d.batch(lim)
}

// decoder reads a decompressed body, remembering the first error.
type decoder struct {
	p     []byte
	off   int
	err   error
	kinds bool // alert records carry active kinds (flag bit 1)
}

func (d *decoder) fail(field string, kind error, format string, args ...any) {
	if d.err == nil {
		d.err = decodeErr(field, d.off, kind, format, args...)
	}
	d.p = nil
}

func (d *decoder) uvarint(field string) uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail(field, ErrFormat, "bad varint")
		return 0
	}
	d.p, d.off = d.p[n:], d.off+n
	return v
}

func (d *decoder) zvarint(field string) int64 {
	u := d.uvarint(field)
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) varint(field string) int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.fail(field, ErrFormat, "bad varint")
		return 0
	}
	d.p, d.off = d.p[n:], d.off+n
	return v
}

func (d *decoder) bytes(field string, n int) []byte {
	if n < 0 || len(d.p) < n {
		d.fail(field, ErrFormat, "truncated")
		return nil
	}
	b := d.p[:n]
	d.p, d.off = d.p[n:], d.off+n
	return b
}

func (d *decoder) byte(field string) byte {
	b := d.bytes(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) u64(field string) uint64 {
	b := d.bytes(field, 8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *decoder) str(field string) string {
	n := d.uvarint(field)
	if n > maxString {
		d.fail(field, ErrInvalidBatch, "%d bytes > %d", n, maxString)
		return ""
	}
	return string(d.bytes(field, int(n)))
}

// Minimum encoded sizes, used to reject counts the body cannot hold
// before allocating for them.
const minReading, minAlert, minAck = 4, 30, 6

func (d *decoder) batch(lim Limits) (Batch, error) {
	var b Batch
	b.Truck = d.str("truck")
	if d.err == nil && !ValidTruckID(b.Truck) {
		d.fail("truck", ErrInvalidBatch, "bad truck id %q", b.Truck)
	}
	nr, na, nk := d.uvarint("reading count"), d.uvarint("alert count"), d.uvarint("ack count")
	if d.err != nil {
		return Batch{}, d.err
	}
	if nr > uint64(lim.MaxRecords) || na > uint64(lim.MaxRecords) || nk > uint64(lim.MaxRecords) || nr+na+nk > uint64(lim.MaxRecords) {
		return Batch{}, decodeErr("record count", d.off, ErrTooLarge, "%d readings + %d alerts + %d acks > %d", nr, na, nk, lim.MaxRecords)
	}
	if nr*minReading+na*minAlert+nk*minAck > uint64(len(d.p)) {
		return Batch{}, decodeErr("record count", d.off, ErrFormat, "counts need more than the %d bytes left", len(d.p))
	}
	b.Readings = d.readings(int(nr))
	if na > 0 {
		b.Alerts = make([]detect.Transition, 0, na)
	}
	for i := 0; i < int(na) && d.err == nil; i++ {
		t := detect.Transition{Truck: b.Truck}
		t.Seq = d.uvarint("alert seq")
		t.Signal = sensors.Signal(d.byte("alert signal"))
		t.Kind = detect.Kind(d.byte("alert kind"))
		t.Severity = detect.Severity(d.byte("alert severity"))
		t.Phase = detect.Phase(d.byte("alert phase"))
		t.Start = d.varint("alert start")
		t.Time = d.varint("alert time")
		t.Value = math.Float64frombits(d.u64("alert value"))
		t.Baseline = math.Float64frombits(d.u64("alert baseline"))
		t.ConfigHash = d.u64("alert config hash")
		if d.kinds {
			k := d.uvarint("alert active kinds")
			if d.err == nil && k > 0xffff {
				d.fail("alert active kinds", ErrFormat, "alert %d: active kinds %#x out of range", i, k)
			}
			t.Active = detect.Kinds(k)
		}
		if d.err == nil && (!t.Signal.Valid() || !validKind(t.Kind) || !validSeverity(t.Severity) || !validPhase(t.Phase)) {
			d.fail("alert", ErrInvalidBatch, "alert %d: signal %d, kind %d, severity %d, phase %d", i, t.Signal, t.Kind, t.Severity, t.Phase)
		}
		b.Alerts = append(b.Alerts, t)
	}
	if nk > 0 {
		b.Acks = make([]detect.Ack, 0, nk)
	}
	for i := 0; i < int(nk) && d.err == nil; i++ {
		a := detect.Ack{Truck: b.Truck}
		a.Seq = d.uvarint("ack seq")
		a.Signal = sensors.Signal(d.byte("ack signal"))
		a.Severity = detect.Severity(d.byte("ack severity"))
		a.Start = d.varint("ack start")
		a.Time = d.varint("ack time")
		a.By = d.str("ack by")
		if d.err == nil && (!a.Signal.Valid() || !validSeverity(a.Severity) || !utf8.ValidString(a.By)) {
			d.fail("ack", ErrInvalidBatch, "ack %d: signal %d, severity %d or by", i, a.Signal, a.Severity)
		}
		b.Acks = append(b.Acks, a)
	}
	if d.err == nil && len(d.p) != 0 {
		d.fail("trailer", ErrFormat, "%d bytes after the last record", len(d.p))
	}
	if d.err != nil {
		return Batch{}, d.err
	}
	return b, nil
}

func (d *decoder) readings(n int) []sensors.Reading {
	if n == 0 {
		return nil
	}
	e := int(d.byte("time unit"))
	if d.err == nil && e > 9 {
		d.fail("time unit", ErrFormat, "10^%d ns", e)
	}
	rs := make([]sensors.Reading, n)
	seq := d.uvarint("first seq")
	if d.err == nil && seq == 0 {
		d.fail("first seq", ErrInvalidBatch, "seq 0")
	}
	rs[0].Seq = seq
	for i := 1; i < n && d.err == nil; i++ {
		gap := d.uvarint("seq delta")
		if gap >= math.MaxUint64-seq {
			d.fail("seq delta", ErrInvalidBatch, "seq overflow")
		}
		seq += gap + 1
		rs[i].Seq = seq
	}
	sigs := d.bytes("signals", n)
	flags := d.bytes("flags", n)
	if d.err != nil {
		return nil
	}
	var present [256]bool
	for i := range rs {
		s := sensors.Signal(sigs[i])
		if !s.Valid() {
			d.fail("signals", ErrInvalidBatch, "reading %d: unknown signal %d", i, sigs[i])
			return nil
		}
		rs[i].Signal, rs[i].Flags = s, sensors.Flags(flags[i])
		present[s] = true
	}
	unit := pow10[min(e, 9)]
	for s := range present {
		if !present[s] {
			continue
		}
		sig := sensors.Signal(s)
		var k int
		var t, dt int64
		for i := range rs {
			if rs[i].Signal != sig {
				continue
			}
			v := d.zvarint("time")
			switch k {
			case 0:
				t = v
			case 1:
				dt = v
				t += dt
			default:
				dt += v
				t += dt
			}
			if t > math.MaxInt64/unit || t < math.MinInt64/unit {
				d.fail("time", ErrInvalidBatch, "reading %d: time overflows", i)
				return nil
			}
			rs[i].Time = t * unit
			k++
		}
		d.values(rs, sig)
		if d.err != nil {
			return nil
		}
	}
	return rs
}

func (d *decoder) values(rs []sensors.Reading, sig sensors.Signal) {
	mode := d.byte("value mode")
	if d.err != nil {
		return
	}
	if mode == modeXOR {
		var prev uint64
		for i := range rs {
			if rs[i].Signal == sig {
				prev ^= d.uvarint("value")
				rs[i].Value = math.Float64frombits(prev)
			}
		}
		return
	}
	if mode != modeDelta && mode != modeDeltaDod {
		d.fail("value mode", ErrFormat, "mode %d", mode)
		return
	}
	a, b := int(d.byte("value scale")), int(d.byte("value scale"))
	if d.err == nil && (a > maxScale2 || b > maxScale10) {
		d.fail("value scale", ErrFormat, "2^%d*10^%d", a, b)
	}
	if d.err != nil {
		return
	}
	sc := scale(a, b)
	var k int
	var q, dq int64
	for i := range rs {
		if rs[i].Signal != sig {
			continue
		}
		v := d.zvarint("value")
		switch {
		case k == 0:
			q = v
		case k == 1 || mode == modeDelta:
			dq = v
			q += dq
		default:
			dq += v
			q += dq
		}
		if q >= maxExact || q <= -maxExact {
			d.fail("value", ErrInvalidBatch, "reading %d: value out of range", i)
			return
		}
		rs[i].Value = float64(q) / sc
		k++
	}
}
