package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Observation 7 of issue 18: in make demo there was no way to see the
// offline behaviour; stopping the cloud ended the whole demo. This runs
// the demo binary with one truck, takes the truck out of coverage and
// back from the terminal, then stops and starts the cloud, watching the
// cab's fleet-link state; the demo runs on throughout.
func TestDemoCoverageCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo's binaries")
	}
	tb := time.Now()
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", ".", "../cloud", "../gateway", "../firmware-sim", "../tankguard-ca").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Logf("built in %.1f s", time.Since(tb).Seconds())
	cabPort := freePort(t)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "demo"), "-trucks", "1", "-overheat", "", "-var", t.TempDir(),
		"-console", "127.0.0.1:0", "-broker", "127.0.0.1:0", "-cab-port", fmt.Sprint(cabPort))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out lines
	go out.read(stdout)
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	}()

	t0 := time.Now()
	wait := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		defer func() { t.Logf("%5.1f s: %s", time.Since(t0).Seconds(), what) }()
		deadline := time.Now().Add(limit)
		for !cond() {
			select {
			case err := <-exited:
				t.Fatalf("the demo exited (%v) while waiting for %s", err, what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", limit, what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("the demo to print how to go out of coverage", 60*time.Second, func() bool { return out.has("offline truck-01") && out.has("cloud stop") })
	cab := fmt.Sprintf("http://127.0.0.1:%d/api/state", cabPort)
	online := func(want bool) func() bool {
		return func() bool {
			resp, err := http.Get(cab)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var st struct {
				Status struct {
					Uplink struct{ Online bool } `json:"uplink"`
				} `json:"status"`
			}
			return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Status.Uplink.Online == want
		}
	}
	say := func(line string) {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatalf("type %q: %v", line, err)
		}
	}
	wait("truck-01's fleet link", 30*time.Second, online(true))

	say("offline truck-01")
	wait("truck-01 out of coverage on its cab", 10*time.Second, online(false))
	time.Sleep(time.Second)
	say("online truck-01")
	wait("truck-01 back in coverage", 40*time.Second, online(true))

	say("cloud stop")
	wait("the cloud stopped", 20*time.Second, func() bool { return out.has("the cloud is stopped") })
	wait("truck-01 offline without its cloud", 10*time.Second, online(false))
	say("cloud start")
	wait("truck-01 back with the restarted cloud", 60*time.Second, online(true))

	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		t.Logf("%5.1f s: demo stopped", time.Since(t0).Seconds())
		if err != nil {
			t.Errorf("demo exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop on Ctrl-C")
	}
	if !out.has("demo stopped") {
		t.Error("no 'demo stopped' line")
	}
}

// lines collects a process's output. Safe for concurrent use.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.b.WriteString(sc.Text() + "\n")
		l.mu.Unlock()
	}
}

func (l *lines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
