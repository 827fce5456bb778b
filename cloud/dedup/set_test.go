package dedup

import (
	"encoding/binary"
	"testing"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name      string
		add       []uint64
		wantNew   int
		wantFloor uint64
		seen      []uint64
		unseen    []uint64
	}{
		{name: "in order", add: []uint64{1, 2, 3, 4}, wantNew: 4, wantFloor: 4, seen: []uint64{0, 1, 4}, unseen: []uint64{5}},
		{name: "duplicates", add: []uint64{1, 2, 2, 1, 3}, wantNew: 3, wantFloor: 3, seen: []uint64{2}, unseen: []uint64{4}},
		{name: "two lanes interleaved", add: []uint64{1, 2, 4, 5, 7, 3, 8, 6}, wantNew: 8, wantFloor: 8, unseen: []uint64{9}},
		{name: "gap stays open", add: []uint64{1, 2, 5, 6}, wantNew: 4, wantFloor: 2, seen: []uint64{5, 6}, unseen: []uint64{3, 4, 7}},
		{name: "merge across spans", add: []uint64{10, 12, 11, 14, 13}, wantNew: 5, wantFloor: 0, seen: []uint64{10, 14}, unseen: []uint64{9, 15}},
		{name: "redelivery of an old batch", add: []uint64{1, 2, 3, 4, 5, 6, 2, 3, 4}, wantNew: 6, wantFloor: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet(0)
			n := 0
			for _, q := range tc.add {
				if s.Add(q) {
					n++
				}
			}
			if n != tc.wantNew || s.Floor() != tc.wantFloor {
				t.Fatalf("new=%d floor=%d, want new=%d floor=%d", n, s.Floor(), tc.wantNew, tc.wantFloor)
			}
			for _, q := range tc.seen {
				if !s.Seen(q) {
					t.Errorf("Seen(%d) = false", q)
				}
			}
			for _, q := range tc.unseen {
				if s.Seen(q) {
					t.Errorf("Seen(%d) = true", q)
				}
			}
			b, _ := s.MarshalBinary()
			var r Set
			if err := r.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			for _, q := range append(tc.seen, tc.unseen...) {
				if r.Seen(q) != s.Seen(q) {
					t.Errorf("after round trip Seen(%d) differs", q)
				}
			}
		})
	}
}

func TestSetRangeLimit(t *testing.T) {
	s := NewSet(2)
	for _, q := range []uint64{2, 4, 6} { // three gaps: 1, 3, 5
		s.Add(q)
	}
	if s.Floor() != 2 || s.Forgotten() != 1 {
		t.Fatalf("floor=%d forgotten=%d, want 2 and 1", s.Floor(), s.Forgotten())
	}
	if !s.Add(3) || s.Floor() != 4 {
		t.Fatalf("late 3 not accepted, floor=%d", s.Floor())
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     {},
		"truncated": {5, 0, 3, 2},
		"trailing":  {1, 0, 0, 9},
	} {
		t.Run(name, func(t *testing.T) {
			var s Set
			if err := s.UnmarshalBinary(b); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

// FuzzSet checks the Set against a map for any order of adds, and that its
// encoding round-trips.
func FuzzSet(f *testing.F) {
	f.Add([]byte{1, 2, 4, 5, 7, 3, 8, 6}, uint8(0))
	f.Add([]byte{10, 12, 11, 14, 13, 10}, uint8(2))
	f.Fuzz(func(t *testing.T, seqs []byte, limit uint8) {
		s := NewSet(int(limit%8) + 1)
		model := map[uint64]bool{}
		for i := 0; i+1 < len(seqs); i += 2 {
			q := uint64(binary.BigEndian.Uint16(seqs[i:])%512) + 1
			got := s.Add(q)
			if got && model[q] {
				t.Fatalf("Add(%d) new twice", q)
			}
			model[q] = true
			if !s.Seen(q) {
				t.Fatalf("Seen(%d) false after Add", q)
			}
		}
		if s.Forgotten() == 0 {
			for q := uint64(1); q <= 513; q++ {
				if s.Seen(q) != model[q] {
					t.Fatalf("Seen(%d)=%v, model %v", q, s.Seen(q), model[q])
				}
			}
		}
		b, _ := s.MarshalBinary()
		var r Set
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		for q := uint64(1); q <= 513; q++ {
			if r.Seen(q) != s.Seen(q) {
				t.Fatalf("round trip differs at %d", q)
			}
		}
	})
}

// FuzzUnmarshal checks that no input crashes the decoder.
func FuzzUnmarshal(f *testing.F) {
	s := NewSet(0)
	for _, q := range []uint64{1, 2, 5, 9, 10} {
		s.Add(q)
	}
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Add([]byte{5, 0, 3, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Set
		_ = s.UnmarshalBinary(b)
	})
}
