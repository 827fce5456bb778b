// Package mosquittotest runs Debian's Mosquitto broker for interop tests:
// on a free loopback port, with TCP_NODELAY, no persistence, logging to a
// buffer shown when the test fails. Only tests import it.
//
// Started as root, mosquitto drops to user mosquitto, so the configuration
// lives in a world-readable directory.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bin returns the mosquitto binary. It skips the test when there is none,
// unless the CI environment variable is set, which makes it a failure.
func Bin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto); required under CI")
	}
	t.Skip("mosquitto is not installed")
	return ""
}

// Defaults are the lines every broker started here gets after the
// caller's: no persistence, log to stdout, and queues deep enough for
// backlog tests.
const Defaults = "set_tcp_nodelay true\npersistence false\nlog_dest stdout\nmax_queued_messages 100000\n"

// Start runs mosquitto with an anonymous plain listener on a free loopback
// port until the test ends and returns its host:port.
func Start(t testing.TB, extra ...string) string {
	t.Helper()
	return StartConf(t, func(port, _ string) string {
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n", port)
		for _, e := range extra {
			conf += e + "\n"
		}
		return conf
	})
}

// StartConf runs mosquitto with the configuration conf returns for the free
// port chosen and a world-readable directory for its files (Defaults are
// appended), until the test ends, and returns 127.0.0.1:port.
func StartConf(t testing.TB, conf func(port, dir string) string) string {
	t.Helper()
	Bin(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	return StartConfOn(t, port, conf)
}

// StartConfOn is StartConf on a port the caller chose (for a client
// started before its broker).
func StartConfOn(t testing.TB, port string, conf func(port, dir string) string) string {
	t.Helper()
	bin := Bin(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	dir, err := os.MkdirTemp("", "tankguard-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf(port, dir)+Defaults), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	out := &logBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s:\n%s", addr, out.String())
		}
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Broker is a mosquitto process the test can SIGKILL and start again on
// the same port (see Run).
type Broker struct {
	t     testing.TB
	bin   string
	path  string
	addr  string
	mu    sync.Mutex
	cmd   *exec.Cmd
	out   *logBuffer
	kills int
}

// Run starts mosquitto on a free loopback port with an anonymous plain
// listener, then Defaults, then lines (which override Defaults, e.g.
// "max_queued_messages 20" or "persistence true"; "%DIR%" in a line
// becomes a world-readable directory for its files). It is killed when
// the test ends.
func Run(t testing.TB, lines ...string) *Broker {
	t.Helper()
	b := &Broker{t: t, bin: Bin(t)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(b.addr)
	dir, err := os.MkdirTemp("", "tankguard-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n", port) + Defaults
	for _, l := range lines {
		conf += strings.ReplaceAll(l, "%DIR%", dir) + "\n"
	}
	b.path = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(b.path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			t.Logf("mosquitto log (%d kills):\n%s", b.kills, b.out.String())
		}
	})
	b.Start()
	return b
}

// Addr returns the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Start starts the broker (again) and waits until it listens.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	if b.out == nil {
		b.out = &logBuffer{}
	}
	cmd := exec.Command(b.bin, "-c", b.path)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not listen on %s:\n%s", b.addr, b.out.String())
		}
	}
}

// Kill SIGKILLs the broker and waits for it to exit; Start runs it again.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.cmd = nil
	b.kills++
}

// Log returns what the broker logged so far.
func (b *Broker) Log() string { return b.out.String() }
