package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gateway -replay of a 2021 recording with a 60 s coolant gap (the
// gateway package's testdata): one missing alert for the gap, raised and
// cleared, none at the end of the log; the process exits by itself (its
// metrics server too), and with -replay-follow keeps running until told
// to stop.
func TestReplayCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build gateway: %v\n%s", err, out)
	}
	args := func(data string, extra ...string) []string {
		return append([]string{"-truck", "truck-gap", "-data", filepath.Join(dir, data), "-cab", "off",
			"-broker", "tcp://127.0.0.1:1", "-metrics", "127.0.0.1:0", "-replay-drain", "0",
			"-replay", filepath.Join("..", "..", "gateway", "testdata", "coolant_gap60.log")}, extra...)
	}
	checkAlerts := func(log string) {
		t.Helper()
		var got []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "msg=alert") {
				f := strings.Fields(l)
				got = append(got, strings.Join(f[4:8], " ")) // phase signal kind severity
			}
		}
		want := []string{
			"phase=raised signal=coolant_temp kind=missing severity=warning",
			"phase=cleared signal=coolant_temp kind=missing severity=warning",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("alerts:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), log)
		}
	}

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args("once")...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gateway -replay: %v\n%s", err, stderr.String())
	}
	checkAlerts(stderr.String())

	stderr.Reset()
	cmd = exec.CommandContext(ctx, bin, args("follow", "-replay-follow")...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "replay finished") {
		select {
		case err := <-done:
			t.Fatalf("gateway -replay-follow exited: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay did not finish:\n%s", stderr.String())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("gateway -replay-follow exited after the log: %v\n%s", err, stderr.String())
	case <-time.After(2500 * time.Millisecond): // more than 2 wall-clock AdvanceIntervals
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("gateway -replay-follow after SIGTERM: %v\n%s", err, stderr.String())
	}
	checkAlerts(stderr.String())
}
