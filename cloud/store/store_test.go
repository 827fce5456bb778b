package store

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestFlushRangeSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(&Commit{Staged: [][]byte{[]byte("aa"), []byte("bb"), []byte("cc")}, Dedup: map[string][]byte{"T": {1}}}); err != nil {
		t.Fatal(err)
	}
	first, last, ok, err := db.BeginFlush(4) // "aa"+"bb" reach 4 bytes
	if err != nil || !ok || first != 1 || last != 2 {
		t.Fatalf("BeginFlush = %d %d %v %v", first, last, ok, err)
	}
	// More records arrive; then the process "crashes" before FinishFlush.
	if err := db.Apply(&Commit{Staged: [][]byte{[]byte("dd")}}); err != nil {
		t.Fatal(err)
	}
	inst := db.Instance()
	db.Close()

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Instance() != inst || len(inst) != 16 {
		t.Fatalf("instance %q after reopen, was %q", db.Instance(), inst)
	}
	f2, l2, ok, err := db.BeginFlush(1 << 20)
	if err != nil || !ok || f2 != 1 || l2 != 2 {
		t.Fatalf("after reopen BeginFlush = %d %d %v %v, want the same range 1-2", f2, l2, ok, err)
	}
	var got []string
	if err := db.Staged(f2, l2, func(_ uint64, v []byte) error { got = append(got, string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"aa", "bb"}) {
		t.Fatalf("staged %q", got)
	}
	if err := db.FinishFlush(f2, l2); err != nil {
		t.Fatal(err)
	}
	f3, l3, ok, _ := db.BeginFlush(1 << 20)
	if !ok || f3 != 3 || l3 != 4 {
		t.Fatalf("next range %d-%d %v, want 3-4", f3, l3, ok)
	}
	if d, _ := db.Dedup("T"); !slices.Equal(d, []byte{1}) {
		t.Fatalf("dedup %v", d)
	}
	n, _, _ := db.StagedStats()
	if n != 2 {
		t.Fatalf("staged %d, want 2", n)
	}
}
