package sensors

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collector gathers emitted readings; safe for concurrent use.
type collector struct {
	mu sync.Mutex
	rs []Reading
}

func (c *collector) emit(rs []Reading) {
	c.mu.Lock()
	c.rs = append(c.rs, rs...)
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rs)
}

func (c *collector) get() []Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Reading(nil), c.rs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFrames(t *testing.T, c net.Conn, frames ...can.Frame) {
	t.Helper()
	tx := socketcan.NewTransmitter(c)
	for _, f := range frames {
		if err := tx.TransmitFrame(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCANSourceReconnectsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fixed := time.Unix(1700000000, 0)
	src := &CANSource{
		Addr:       "tcp://" + ln.Addr().String(),
		Decoder:    mustDecoder(t),
		Now:        func() time.Time { return fixed },
		Flags:      func(int64) Flags { return ClockUntrusted },
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
	}
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return src.Run(ctx, got.emit) })

	// First connection: a coolant frame, garbage PGN, then the bus drops
	// in the middle of a frame.
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, c1, decodeCases[0].frame, decodeCases[15].frame)
	c1.Write([]byte{1, 2, 3}) // partial frame
	waitFor(t, "first reading", func() bool { return got.len() == 1 })
	c1.Close()

	// Second connection after the reconnect: speed and cargo.
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, c2, decodeCases[9].frame, decodeCases[13].frame)
	waitFor(t, "three readings", func() bool { return got.len() == 3 })

	cancel()
	if err := g.Wait(); err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	c2.Close()
	want := []Signal{CoolantTemp, WheelSpeed, CargoTemp}
	for i, r := range got.get() {
		if r.Signal != want[i] || r.Time != fixed.UnixNano() || r.Flags != ClockUntrusted {
			t.Errorf("reading %d = %+v, want %s at %d untrusted", i, r, want[i], fixed.UnixNano())
		}
	}
	s := src.Stats()
	if s.Connects != 2 || s.Disconnects != 1 || s.Frames != 4 {
		t.Errorf("stats %+v, want 2 connects, 1 disconnect, 4 frames", s)
	}
	if d := src.Decoder.Stats(); d.UnknownPGN != 1 {
		t.Errorf("decoder stats %+v, want 1 unknown PGN", d)
	}
}

func TestCANSourceRetriesUnreachableBus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: dials fail
	src := &CANSource{Addr: "tcp://" + addr, Decoder: mustDecoder(t), MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func([]Reading) {}) }()
	waitFor(t, "dial errors", func() bool { return src.Stats().DialErrors >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestParseCANAddr(t *testing.T) {
	for _, tc := range []struct {
		name, addr, network, address string
		bad                          bool
	}{
		{"loopback tcp", "tcp://127.0.0.1:1234", "tcp", "127.0.0.1:1234", false},
		{"socketcan", "can0", "can", "can0", false},
		{"vcan", "vcan12", "can", "vcan12", false},
		{"udp refused", "udp://239.0.0.1:1", "", "", true},
		{"tcp without port", "tcp://127.0.0.1", "", "", true},
		{"empty", "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, a, err := ParseCANAddr(tc.addr)
			if tc.bad {
				if !errors.Is(err, ErrBadAddress) {
					t.Fatalf("err = %v, want ErrBadAddress", err)
				}
				return
			}
			if err != nil || n != tc.network || a != tc.address {
				t.Fatalf("= %q %q %v", n, a, err)
			}
		})
	}
}

func TestNMEASourceFromPTY(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminals: %v", err)
		}
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	src := &NMEASource{Port: slave.Name(), ReadTimeout: 50 * time.Millisecond}
	var fixes []GNSSFix
	src.OnFix = func(f GNSSFix, _ int64) { fixes = append(fixes, f) }
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, got.emit) }()
	waitFor(t, "port open", func() bool { return src.SerialStats().Opens == 1 })

	input := "\x00\x7fgarbage\r\n" + // noise on the line
		nmeaCases[0].line + // RMC: 3 readings
		"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n" + // bad checksum
		sentence("GPGSV,1,1,00") + "\r\n" + // ignored
		nmeaCases[3].line + "\r\n" // GGA: 2 readings
	if _, err := master.Write([]byte(input)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 readings", func() bool { return got.len() == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := src.Stats()
	if s.Used != 2 || s.Garbage != 1 || s.Checksum != 1 || s.Ignored != 1 || s.Readings != 5 {
		t.Errorf("stats %+v", s)
	}
	if len(fixes) != 1 || !fixes[0].Valid {
		t.Errorf("fixes %+v", fixes)
	}
}

func TestNMEASourceReopensMissingPort(t *testing.T) {
	src := &NMEASource{Port: "/nonexistent/tty", MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func([]Reading) {}) }()
	waitFor(t, "open errors", func() bool { return src.SerialStats().OpenErrors >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/nonexistent/tty"); err == nil {
		t.Fatal("test assumption broken")
	}
}

// TestCANSourcesShareDecoder reads two buses at once through one decoder,
// as a gateway with a powertrain and a body bus does.
func TestCANSourcesShareDecoder(t *testing.T) {
	dec := mustDecoder(t)
	var got collector
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	var conns []net.Conn
	for bus := 0; bus < 2; bus++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		src := &CANSource{Addr: "tcp://" + ln.Addr().String(), Decoder: dec}
		g.Go(func() error { return src.Run(ctx, got.emit) })
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	const n = 500
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := decodeCases[0].frame // coolant on bus 0
			if i == 1 {
				f = decodeCases[9].frame // speed on bus 1
			}
			tx := socketcan.NewTransmitter(c)
			for j := 0; j < n; j++ {
				if err := tx.TransmitFrame(context.Background(), f); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "all readings", func() bool { return got.len() == 2*n })
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.Close()
	}
	counts := map[Signal]int{}
	for _, r := range got.get() {
		counts[r.Signal]++
	}
	if counts[CoolantTemp] != n || counts[WheelSpeed] != n {
		t.Fatalf("counts %v", counts)
	}
	if s := dec.Stats(); s.Frames != 2*n || s.Readings != 2*n {
		t.Fatalf("decoder stats %+v", s)
	}
}

// TestCANSourceMissingInterface: a SocketCAN interface that does not exist
// (no vcan on this machine) is retried, never fatal.
func TestCANSourceMissingInterface(t *testing.T) {
	src := &CANSource{Addr: "tgnone0", Decoder: mustDecoder(t), MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func([]Reading) {}) }()
	waitFor(t, "dial errors", func() bool { return src.Stats().DialErrors >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
