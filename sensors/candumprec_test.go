package sensors

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.einride.tech/can"
	"golang.org/x/sync/errgroup"
)

// TestCANSourceRecordsBus records a live bus (SocketCAN frames over TCP)
// carrying coolant frames and a BAM DM1, then replays the recording: the
// replay yields the same readings and the same DM1 as the live source.
func TestCANSourceRecordsBus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus.candump")
	rec, err := NewCandumpRecorder(CandumpRecorderConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clock := time.Unix(1767225600, 0)
	var liveDM1 []DM1
	src := &CANSource{Addr: "tcp://" + ln.Addr().String(), Decoder: mustDecoder(t), Record: rec,
		Now:   func() time.Time { clock = clock.Add(50 * time.Millisecond); return clock },
		OnDM1: func(m DM1) { liveDM1 = append(liveDM1, m) }}
	var live collector
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return src.Run(ctx, live.emit) })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	frames := []can.Frame{frame(0x18FEEE00, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)}
	frames = AppendBAM(frames, 0, PGNDM1, dm1Data)
	frames = append(frames, frame(0x18FEEE00, 131, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF))
	for _, f := range frames {
		writeFrames(t, c, f) // one read, one timestamp each
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "live readings and DM1", func() bool { return live.len() == 2 && src.DM1Stats().Received == 1 })
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if st := rec.Stats(); st.Frames != uint64(len(frames)) || st.Errors != 0 {
		t.Fatalf("recorder stats %+v, want %d frames", st, len(frames))
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var replayed collector
	var replayDM1 []DM1
	r := &CandumpReplay{Log: f, Decoder: mustDecoder(t), Interface: "can0", OnDM1: func(m DM1) { replayDM1 = append(replayDM1, m) }}
	if err := r.Run(context.Background(), replayed.emit); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Malformed != 0 || st.Frames != uint64(len(frames)) {
		t.Fatalf("replay stats %+v", st)
	}
	if !reflect.DeepEqual(replayed.get(), live.get()) {
		t.Fatalf("replayed readings %+v\nlive %+v", replayed.get(), live.get())
	}
	if !reflect.DeepEqual(replayDM1, liveDM1) || len(replayDM1) != 1 || len(replayDM1[0].DTCs) != 3 {
		t.Fatalf("replayed DM1 %+v\nlive %+v", replayDM1, liveDM1)
	}
}

// TestCandumpRecorderRotates records far more than the size bound: the
// files never exceed it, Keep old files survive, and together they hold
// the newest frames in order, every line parseable.
func TestCandumpRecorderRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus.candump")
	const maxBytes, keep = 4096, 2
	rec, err := NewCandumpRecorder(CandumpRecorderConfig{Path: path, MaxBytes: maxBytes, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000 // about 50 bytes a line: 50 KB, 12 files' worth
	for i := range n {
		f := frame(0x18FEEE00, byte(i), byte(i>>8), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
		rec.Record("can0", f, int64(1767225600+i)*1e9)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	st := rec.Stats()
	if st.Frames != n || st.Errors != 0 || st.Rotations < 10 {
		t.Fatalf("stats %+v", st)
	}
	var got []CandumpRecord
	for _, name := range []string{path + ".2", path + ".1", path} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s is %d bytes, more than %d", name, fi.Size(), maxBytes)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			r, err := ParseCandumpLine(sc.Text())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = append(got, r)
		}
		f.Close()
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists: Keep is %d", path, keep)
	}
	if len(got) < 2*maxBytes/60 {
		t.Fatalf("only %d frames kept", len(got))
	}
	for i, r := range got {
		want := n - len(got) + i
		if r.Time != int64(1767225600+want)*1e9 || r.Frame.Data[0] != byte(want) || r.Frame.Data[1] != byte(want>>8) {
			t.Fatalf("frame %d = %+v, want number %d", i, r, want)
		}
	}
}

func TestCandumpRecorderConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg CandumpRecorderConfig
		ok  bool
	}{
		{CandumpRecorderConfig{}, false},
		{CandumpRecorderConfig{Path: filepath.Join(dir, "a"), MaxBytes: 100}, false},
		{CandumpRecorderConfig{Path: filepath.Join(dir, "missing", "a")}, false},
		{CandumpRecorderConfig{Path: filepath.Join(dir, "b")}, true},
	} {
		r, err := NewCandumpRecorder(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err %v", tc.cfg, err)
		}
		if r != nil {
			r.Close()
		}
	}
}

// BenchmarkCandumpRecord measures recording one frame.
func BenchmarkCandumpRecord(b *testing.B) {
	rec, err := NewCandumpRecorder(CandumpRecorderConfig{Path: filepath.Join(b.TempDir(), "bus"), MaxBytes: 1 << 20, Keep: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	f := frame(0x18FEEE00, 130, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		rec.Record("can0", f, i*1e6)
	}
}

// TestAppendFrameMatchesString checks the allocation-free frame text
// against einride's Frame.String.
func TestAppendFrameMatchesString(t *testing.T) {
	frames := []can.Frame{
		frame(0x18FEEE00, 130, 0xFF, 0, 1, 0xAB, 0xCD, 0xEF, 0x10),
		{ID: 0x123, Length: 3, Data: can.Data{0xde, 0xad, 0xbe}},
		{ID: 0x7FF},
		{ID: 0x18EAFF00, IsExtended: true, IsRemote: true},
		{ID: 0x18EAFF00, IsExtended: true, IsRemote: true, Length: 3},
		{ID: 0x1FFFFFFF, IsExtended: true, Length: 8, Data: can.Data{1, 2, 3, 4, 5, 6, 7, 8}},
		{ID: 0x5, IsExtended: true, Length: 1},
	}
	for _, f := range frames {
		if got, want := string(appendFrame(nil, f)), f.String(); got != want {
			t.Errorf("appendFrame = %q, String = %q", got, want)
		}
	}
}
