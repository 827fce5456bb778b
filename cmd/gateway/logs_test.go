package main

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// logfmtKeys returns the keys of one slog text line, in order.
func logfmtKeys(line string) []string {
	var keys []string
	inQuote, start := false, true
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"' && (i == 0 || line[i-1] != '\\'):
			inQuote = !inQuote
		case c == ' ' && !inQuote:
			start = true
		case start && !inQuote:
			if j := strings.IndexByte(line[i:], '='); j > 0 && !strings.ContainsAny(line[i:i+j], " \"") {
				keys = append(keys, line[i:i+j])
			}
			start = false
		}
	}
	return keys
}

// Observation 8 of issue 18: the gateway's lines repeated attributes
// (component=uplink component=uplink) and it exited silently on Ctrl-C.
// The real binary, on a simulated truck and a cloud, logs each attribute
// once per line, no empty message, and a last line when it stops.
func TestGatewayLogsOnceAndSaysStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build gateway: %v\n%s", err, out)
	}
	ccfg := cloud.DefaultConfig()
	ccfg.DataDir = filepath.Join(dir, "cloud")
	ccfg.BrokerListen, ccfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	ccfg.BrokerPlainTCP = true // loopback only, for this test
	c, err := cloud.New(ccfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cloudCtx, cloudStop := context.WithCancel(ctx)
	cloudDone := make(chan struct{})
	go func() { c.Run(cloudCtx); close(cloudDone) }()
	defer func() { cloudStop(); <-cloudDone }()
	<-c.Ready()
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		firmwaresim.Run(simCtx, firmwaresim.Config{Trucks: 1, Seed: 3, OnReady: func(m firmwaresim.Manifest) { ready <- m }})
	}()
	defer func() { simStop(); <-simDone }()
	truck := (<-ready).Trucks[0]

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-truck", truck.ID, "-data", filepath.Join(dir, "gw"), "-can", truck.CAN, "-serial", truck.Serial,
		"-broker", "tcp://"+c.BrokerAddr(), "-cab", "127.0.0.1:0", "-batch-delay", "200ms")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.Stats().Readings == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no reading reached the cloud; gateway log:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway exit: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	components := map[string]bool{}
	for _, l := range lines {
		seen := map[string]bool{}
		for _, k := range logfmtKeys(l) {
			if seen[k] {
				t.Errorf("attribute %s twice: %s", k, l)
			}
			seen[k] = true
		}
		if strings.Contains(l, `msg="" `) || strings.HasSuffix(l, `msg=""`) {
			t.Errorf("empty message: %s", l)
		}
		if i := strings.Index(l, "component="); i >= 0 {
			components[strings.Fields(l[i:])[0]] = true
		}
	}
	if !components["component=uplink"] || !components["component=can"] {
		t.Errorf("log has components %v, want at least the uplink's and the CAN source's lines; log:\n%s", components, stderr.String())
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, `msg="gateway stopped"`) || !strings.Contains(last, "truck="+truck.ID) {
		t.Errorf("last line %q, want the gateway saying it stopped", last)
	}
}
