package dedup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// DefaultMaxRanges bounds how many disjoint ranges a Set keeps above its
// floor before it gives up waiting for the oldest gap.
const DefaultMaxRanges = 4096

// ErrCorrupt reports a persisted Set that cannot be decoded.
var ErrCorrupt = errors.New("dedup: corrupt set")

type span struct{ lo, hi uint64 } // inclusive, lo > floor+1

// Set is the set of sequence numbers seen for one truck. The zero value is
// an empty set that keeps at most DefaultMaxRanges ranges. It is not safe
// for concurrent use.
type Set struct {
	floor  uint64
	spans  []span
	max    int
	forgot uint64
}

// NewSet returns an empty set keeping at most maxRanges ranges above the
// floor (DefaultMaxRanges if maxRanges < 1).
func NewSet(maxRanges int) *Set { return &Set{max: maxRanges} }

// Floor returns the highest seq h such that every seq in 1..h was seen.
func (s *Set) Floor() uint64 { return s.floor }

// Max returns the highest seq seen (0 if none).
func (s *Set) Max() uint64 {
	if n := len(s.spans); n > 0 {
		return s.spans[n-1].hi
	}
	return s.floor
}

// Forgotten returns how many never-seen seqs were given up on because the
// set exceeded its range limit; a later arrival of one of them is treated
// as a duplicate.
func (s *Set) Forgotten() uint64 { return s.forgot }

// Seen reports whether seq was added before. Seq 0 is always reported as
// seen: it is not a valid sequence number.
func (s *Set) Seen(seq uint64) bool {
	if seq <= s.floor {
		return true
	}
	i := sort.Search(len(s.spans), func(i int) bool { return s.spans[i].hi >= seq })
	return i < len(s.spans) && s.spans[i].lo <= seq
}

// Add records seq and reports whether it was new.
func (s *Set) Add(seq uint64) bool {
	if seq <= s.floor {
		return false
	}
	n := len(s.spans)
	// Fast path: the next seq of the newest run.
	if n > 0 && s.spans[n-1].hi+1 == seq {
		s.spans[n-1].hi = seq
		return true
	}
	if n == 0 && seq == s.floor+1 {
		s.floor = seq
		return true
	}
	i := sort.Search(n, func(i int) bool { return s.spans[i].hi+1 >= seq })
	if i < n && s.spans[i].lo <= seq && seq <= s.spans[i].hi {
		return false
	}
	switch {
	case i < n && s.spans[i].hi+1 == seq: // extends span i upwards
		s.spans[i].hi = seq
		if i+1 < n && s.spans[i+1].lo == seq+1 {
			s.spans[i].hi = s.spans[i+1].hi
			s.spans = append(s.spans[:i+1], s.spans[i+2:]...)
		}
	case i < n && s.spans[i].lo == seq+1: // extends span i downwards
		s.spans[i].lo = seq
	default:
		s.spans = append(s.spans, span{})
		copy(s.spans[i+1:], s.spans[i:])
		s.spans[i] = span{seq, seq}
	}
	s.normalize()
	return true
}

// normalize folds a span touching the floor into it and enforces the
// range limit.
func (s *Set) normalize() {
	for len(s.spans) > 0 && s.spans[0].lo <= s.floor+1 {
		s.floor = max(s.floor, s.spans[0].hi)
		s.spans = s.spans[1:]
	}
	limit := s.max
	if limit < 1 {
		limit = DefaultMaxRanges
	}
	for len(s.spans) > limit {
		s.forgot += s.spans[0].lo - s.floor - 1
		s.floor = s.spans[0].hi
		s.spans = s.spans[1:]
	}
}

// MarshalBinary encodes the set for storage.
func (s *Set) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 24+len(s.spans)*6)
	b = binary.AppendUvarint(b, s.floor)
	b = binary.AppendUvarint(b, s.forgot)
	b = binary.AppendUvarint(b, uint64(len(s.spans)))
	prev := s.floor
	for _, sp := range s.spans {
		b = binary.AppendUvarint(b, sp.lo-prev)
		b = binary.AppendUvarint(b, sp.hi-sp.lo)
		prev = sp.hi
	}
	return b, nil
}

// UnmarshalBinary replaces s with the set encoded in b. The range limit
// is kept.
func (s *Set) UnmarshalBinary(b []byte) error {
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, ErrCorrupt
		}
		b = b[n:]
		return v, nil
	}
	floor, err := next()
	if err != nil {
		return err
	}
	forgot, err := next()
	if err != nil {
		return err
	}
	count, err := next()
	if err != nil {
		return err
	}
	if count > uint64(len(b)) { // each span takes at least 2 bytes
		return fmt.Errorf("%w: %d ranges in %d bytes", ErrCorrupt, count, len(b))
	}
	spans := make([]span, 0, count)
	prev := floor
	for range count {
		d, err := next()
		if err != nil {
			return err
		}
		l, err := next()
		if err != nil {
			return err
		}
		lo := prev + d
		hi := lo + l
		if d < 2 || lo < prev || hi < lo {
			return fmt.Errorf("%w: bad range", ErrCorrupt)
		}
		spans = append(spans, span{lo, hi})
		prev = hi
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	s.floor, s.forgot, s.spans = floor, forgot, spans
	return nil
}
