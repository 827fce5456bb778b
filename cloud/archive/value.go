package archive

import (
	"math"
	"slices"
)

// readingRecord is how a reading is stored in Parquet. Value is split so
// that the usual sensor values (integers, decimal and binary fractions
// such as J1939's 1/256 or 1e-7) are stored as delta-encoded integers,
// exactly (IEEE double arithmetic, as Athena computes it):
//
//	ValueDiv > 0: Value = ValueQ / ValueDiv
//	ValueDiv < 0: Value = ValueQ * (1 / -ValueDiv)   (values made by multiplying, as a DBC decoder does)
//	ValueDiv = 0: Value = ValueRaw                    (no exact integer form)
//
// See AthenaDDL's readings_v view. The divisor set (2^a * 10^b) is the
// one the uplink codec uses.
type readingRecord struct {
	Truck    string  `parquet:"truck,dict"`
	Signal   string  `parquet:"signal,dict"`
	Seq      int64   `parquet:"seq,delta"`
	TimeNS   int64   `parquet:"time_ns,delta"`
	ValueQ   int64   `parquet:"value_q,delta"`
	ValueDiv float64 `parquet:"value_div,dict"`
	ValueRaw float64 `parquet:"value_raw,split"`
	Flags    int32   `parquet:"flags"`
}

// divisors are the candidate scales 2^a * 10^b, in increasing order.
var divisors = func() []float64 {
	var d []float64
	for b, p10 := 0, 1.0; b <= 9; b, p10 = b+1, p10*10 {
		for a := 0; a <= 20; a++ {
			d = append(d, p10*float64(int64(1)<<a))
		}
	}
	slices.Sort(d)
	return slices.Compact(d)
}()

// exact reports whether v has the integer form q of mode div (see
// readingRecord), with q small enough to be exact.
func exact(v, div float64) (int64, bool) {
	sc := math.Abs(div)
	f := math.Round(v * sc)
	if !(math.Abs(f) < 1<<53) {
		return 0, false
	}
	if div > 0 {
		return int64(f), math.Float64bits(f/sc) == math.Float64bits(v)
	}
	return int64(f), math.Float64bits(f*(1/sc)) == math.Float64bits(v)
}

// divisorFor returns the mode (see readingRecord) with the smallest scale
// that represents every value of rs exactly, or 0. Values that made a
// candidate fail are tried first on the next ones, so a group is scanned
// in full only by candidates that already pass those.
func divisorFor(rs []Reading) float64 {
	var witnesses []float64
	fits := func(v, div float64) bool { _, ok := exact(v, div); return ok }
	for _, sc := range divisors {
	modes:
		for _, div := range [2]float64{sc, -sc} {
			for _, w := range witnesses {
				if !fits(w, div) {
					continue modes
				}
			}
			for i := range rs {
				if !fits(rs[i].Value, div) {
					if len(witnesses) < 16 {
						witnesses = append(witnesses, rs[i].Value)
					}
					continue modes
				}
			}
			return div
		}
	}
	return 0
}

// toRecords appends the records of one (truck, signal) group to out.
func toRecords(out []readingRecord, rs []Reading) []readingRecord {
	div := divisorFor(rs)
	for _, r := range rs {
		rec := readingRecord{Truck: r.Truck, Signal: r.Signal, Seq: r.Seq, TimeNS: r.TimeNS, Flags: r.Flags}
		if div != 0 {
			rec.ValueQ, _ = exact(r.Value, div)
			rec.ValueDiv = div
		} else {
			rec.ValueRaw = r.Value
		}
		out = append(out, rec)
	}
	return out
}

func (rec readingRecord) reading() Reading {
	v := rec.ValueRaw
	switch {
	case rec.ValueDiv > 0:
		v = float64(rec.ValueQ) / rec.ValueDiv
	case rec.ValueDiv < 0:
		v = float64(rec.ValueQ) * (1 / -rec.ValueDiv)
	}
	return Reading{Truck: rec.Truck, Signal: rec.Signal, Seq: rec.Seq, TimeNS: rec.TimeNS, Value: v, Flags: rec.Flags}
}
