package console

import (
	"math"
	"slices"
	"strconv"
)

// point is one history step of one truck: the highest temperatures and
// the last speed measured in the step, and the normal bands (edges
// including the detector's margin) at its end. NaN: nothing measured.
type point struct {
	t                       uint32 // step start, Unix seconds
	coolant, cargo, speed   float32
	coolLo, coolHi, cargoLo float32
	cargoHi                 float32
}

var nan32 = float32(math.NaN())

func newPoint(t uint32) point {
	return point{t, nan32, nan32, nan32, nan32, nan32, nan32, nan32}
}

// history is one truck's chart data: points in time order, one per step,
// at most max of them. Not safe for concurrent use (the Console's mutex
// guards it).
type history struct {
	step uint32 // seconds
	max  int
	pts  []point
}

// at returns the point of the step holding Unix second sec, inserting it
// if needed; nil if it is older than the history keeps.
func (h *history) at(sec int64) *point {
	if sec < 0 || sec > math.MaxUint32 {
		return nil
	}
	t := uint32(sec) / h.step * h.step
	n := len(h.pts)
	if n > 0 && h.pts[n-1].t == t {
		return &h.pts[n-1]
	}
	if n == 0 || h.pts[n-1].t < t {
		if n >= h.max {
			h.pts = slices.Delete(h.pts, 0, n-h.max+1)
		}
		if len(h.pts) == cap(h.pts) { // grow by doubling, but never past max
			grown := make([]point, len(h.pts), min(max(2*cap(h.pts), 64), h.max))
			copy(grown, h.pts)
			h.pts = grown
		}
		h.pts = append(h.pts, newPoint(t))
		// Drop what fell out of the window (after a long silence).
		newest := t
		cut := 0
		for cut < len(h.pts) && newest-h.pts[cut].t >= uint32(h.max)*h.step {
			cut++
		}
		h.pts = slices.Delete(h.pts, 0, cut)
		return &h.pts[len(h.pts)-1]
	}
	// Late data (a truck uploading its backlog): find or insert its step.
	if h.pts[n-1].t-t >= uint32(h.max)*h.step {
		return nil
	}
	i, found := slices.BinarySearchFunc(h.pts, t, func(p point, t uint32) int {
		switch {
		case p.t < t:
			return -1
		case p.t > t:
			return 1
		}
		return 0
	})
	if !found {
		h.pts = slices.Insert(h.pts, i, newPoint(t))
		if len(h.pts) > h.max {
			h.pts = slices.Delete(h.pts, 0, 1)
			i--
		}
	}
	return &h.pts[i]
}

func maxNaN(a, b float32) float32 {
	if a != a || b > a {
		return b
	}
	return a
}

// appendSeries appends the JSON object of h's points since Unix second
// from to b: {"step":s,"t":[...],"coolant":[...],...}, null for NaN.
func (h *history) appendJSON(b []byte, from int64) []byte {
	start, _ := slices.BinarySearchFunc(h.pts, from, func(p point, t int64) int {
		if int64(p.t) < t {
			return -1
		}
		return 1
	})
	pts := h.pts[start:]
	b = append(b, `{"step":`...)
	b = strconv.AppendUint(b, uint64(h.step), 10)
	col := func(name string, f func(p *point) float32) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":[`...)
		for i := range pts {
			if i > 0 {
				b = append(b, ',')
			}
			v := f(&pts[i])
			if v != v {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendFloat(b, float64(v), 'f', -1, 32)
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"t":[`...)
	for i := range pts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(pts[i].t), 10)
	}
	b = append(b, ']')
	col("coolant", func(p *point) float32 { return p.coolant })
	col("cargo", func(p *point) float32 { return p.cargo })
	col("speed", func(p *point) float32 { return p.speed })
	col("coolant_lo", func(p *point) float32 { return p.coolLo })
	col("coolant_hi", func(p *point) float32 { return p.coolHi })
	col("cargo_lo", func(p *point) float32 { return p.cargoLo })
	col("cargo_hi", func(p *point) float32 { return p.cargoHi })
	return append(b, '}')
}
