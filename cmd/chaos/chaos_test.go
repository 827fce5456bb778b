package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// TestChaos runs the chaos scenario with real gateway and cloud processes
// and fails on any problem it finds (see Run). The short variant (make
// test) runs 3 trucks for 40 s with the embedded broker; CHAOS=long (make
// chaos) runs 20 trucks with the embedded broker (4 minutes, a 40 s cloud
// outage) and then with Mosquitto in between (16 minutes, a 10-minute
// cloud outage that overflows Mosquitto's default 1,000-message queue, 3
// Mosquitto SIGKILLs without persistence); CHAOS=mosquitto runs a short
// Mosquitto variant. The embedded runs use mutual TLS, every gateway
// holding its own truck certificate. Overheats end before the run does,
// so each incident must also be resolved, with no escalation afterwards.
func TestChaos(t *testing.T) {
	type variant struct {
		name    string
		cfg     Config
		timeout time.Duration
	}
	short := variant{"embedded", Config{Trucks: 3, Duration: 40 * time.Second, KillEvery: 1500 * time.Millisecond,
		CloudOutage: 5 * time.Second, Hazards: 1, HazardFor: 20 * time.Second, Seed: 1, TLS: true}, 4 * time.Minute}
	var variants []variant
	switch os.Getenv("CHAOS") {
	case "long":
		variants = []variant{
			{"embedded", Config{Trucks: 20, Duration: 4 * time.Minute, KillEvery: time.Second,
				CloudOutage: 40 * time.Second, CloudKills: 3, Hazards: 5, HazardFor: 90 * time.Second, Seed: 1, TLS: true}, 15 * time.Minute},
			{"mosquitto", Config{Trucks: 20, Duration: 16 * time.Minute, KillEvery: 4 * time.Second,
				CloudOutage: 10 * time.Minute, CloudKills: 3, Hazards: 5, HazardFor: 90 * time.Second, Seed: 2, BrokerKills: 3}, 30 * time.Minute},
		}
	case "mosquitto":
		variants = []variant{{"mosquitto", Config{Trucks: 3, Duration: 60 * time.Second, KillEvery: 1500 * time.Millisecond,
			CloudOutage: 20 * time.Second, Hazards: 1, HazardFor: 20 * time.Second, Seed: 1, BrokerKills: 2}, 5 * time.Minute}}
	default:
		if testing.Short() {
			t.Skip("chaos run builds and runs the cloud and gateway binaries")
		}
		variants = []variant{short}
	}
	binDir := filepath.Join(t.TempDir(), "bin")
	if out, err := exec.Command("go", "build", "-o", binDir+"/", "../cloud", "../gateway", "../tankguard-ca").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cfg := v.cfg
			if v.name == "mosquitto" {
				cfg.Mosquitto = mosquittotest.Bin(t)
			}
			runChaos(t, cfg, binDir, v.timeout)
		})
	}
}

func runChaos(t *testing.T, cfg Config, binDir string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cfg.BinDir = binDir
	cfg.WorkDir = filepath.Join(t.TempDir(), "run")
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
	case rep.CloudKills != max(cfg.CloudKills, 1) || rep.CloudRestarts != 1:
		t.Errorf("cloud kills %d, restarts %d; want %d and 1", rep.CloudKills, rep.CloudRestarts, max(cfg.CloudKills, 1))
	case rep.BrokerKillsDone != cfg.BrokerKills:
		t.Errorf("broker kills %d, want %d", rep.BrokerKillsDone, cfg.BrokerKills)
	case rep.Synced == 0 || rep.Archived == 0 || rep.Sent == 0:
		t.Errorf("nothing flowed: %+v", rep)
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "tankguard-chaos-failed-"+rep.Broker)
		os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(cfg.WorkDir)); err == nil {
			t.Logf("logs and data kept in %s", keep)
		}
	}
}
