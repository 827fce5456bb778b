package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestChaos runs the chaos scenario with real gateway and cloud processes
// and fails on any problem it finds (see Run). The short variant (make
// test) runs 3 trucks for 40 s; CHAOS=long (make chaos) runs 20 trucks
// for 4 minutes with a 40 s cloud outage. Both run the broker with mutual
// TLS, every gateway holding its own truck certificate.
func TestChaos(t *testing.T) {
	cfg := Config{Trucks: 3, Duration: 40 * time.Second, KillEvery: 1500 * time.Millisecond,
		CloudOutage: 5 * time.Second, Hazards: 1, Seed: 1, TLS: true}
	timeout := 4 * time.Minute
	if os.Getenv("CHAOS") == "long" {
		cfg = Config{Trucks: 20, Duration: 4 * time.Minute, KillEvery: time.Second,
			CloudOutage: 40 * time.Second, Hazards: 5, Seed: 1, TLS: true}
		timeout = 15 * time.Minute
	} else if testing.Short() {
		t.Skip("chaos run builds and runs the cloud and gateway binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir := t.TempDir()
	cfg.BinDir = filepath.Join(dir, "bin")
	cfg.WorkDir = filepath.Join(dir, "run")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", cfg.BinDir+"/", "../cloud", "../gateway", "../tankguard-ca").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	for _, p := range rep.Problems {
		t.Error(p)
	}
	// The run must actually have exercised what it claims.
	switch {
	case rep.GatewayKills < cfg.Trucks:
		t.Errorf("only %d gateway kills", rep.GatewayKills)
	case rep.CloudKills != 1 || rep.CloudRestarts != 1:
		t.Errorf("cloud kills %d, restarts %d; want 1 and 1", rep.CloudKills, rep.CloudRestarts)
	case rep.Synced == 0 || rep.Archived == 0 || rep.Sent == 0:
		t.Errorf("nothing flowed: %+v", rep)
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "tankguard-chaos-failed")
		os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(cfg.WorkDir)); err == nil {
			t.Logf("logs and data kept in %s", keep)
		}
	}
}
