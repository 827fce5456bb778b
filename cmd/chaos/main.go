// Command chaos runs the whole tankguard system under faults and checks
// that nothing accepted is lost or duplicated: K simulated trucks
// (firmware-sim, in this process), one gateway process per truck and the
// cloud process with its embedded broker. During the run it SIGKILLs
// random gateways and restarts them, SIGKILLs the cloud (and with it the
// broker) and keeps it down longer than the gateways' reconnect backoff,
// and restarts the cloud cleanly once (a broker restart). At the end it
// checks:
//
//   - every record each gateway appended before its last completed sync
//     (its queue's last sequence number after a clean stop) is in the
//     archive exactly once (readings and edge alerts, its queue's seqs
//     FirstSeq..LastSeq), and every archived value is one the simulator
//     sent, in the order it sent them;
//   - no incident is notified twice (distinct notifications for the same
//     incident and event; redeliveries of one notification id, which a
//     receiver drops by id, are counted separately);
//   - incidents agree with the injected faults: each truck given an
//     overheat has one coolant incident, resolved if the overheat ended
//     (with no escalation after that), the others have none.
//
// With -mosquitto, Mosquitto (its default configuration) sits between the
// gateways and the cloud and is SIGKILLed too; the gateways delete only
// what the cloud confirmed durable, so nothing may be lost either.
//
// It prints the figures and each problem found, and exits 1 if there is
// any.
//
//	make chaos                         (20 trucks, embedded then Mosquitto, about 24 minutes)
//	bin/chaos -trucks 20 -duration 4m -bin bin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.Trucks, "trucks", 20, "simulated trucks, one gateway process each")
	flag.DurationVar(&cfg.Duration, "duration", 4*time.Minute, "how long faults are injected")
	flag.DurationVar(&cfg.KillEvery, "kill-every", time.Second, "mean interval between gateway SIGKILLs")
	flag.DurationVar(&cfg.CloudOutage, "cloud-outage", 40*time.Second, "how long the cloud (and broker) stays down after its SIGKILL; longer than the gateways' 30 s reconnect backoff ceiling")
	flag.IntVar(&cfg.CloudKills, "cloud-kills", 3, "cloud SIGKILLs: the first with -cloud-outage, the others down 3 s")
	flag.IntVar(&cfg.Hazards, "overheats", 5, "trucks given an engine overheat")
	flag.DurationVar(&cfg.HazardFor, "overheat-for", 90*time.Second, "how long each overheat lasts (0: to the end); an ended one must leave its incident resolved")
	flag.StringVar(&cfg.Mosquitto, "mosquitto", "", "path of a mosquitto binary to put between gateways and cloud (default config, no TLS) instead of the embedded broker")
	flag.IntVar(&cfg.BrokerKills, "broker-kills", 3, "with -mosquitto: how many times to SIGKILL it")
	flag.BoolVar(&cfg.TLS, "tls", true, "mutual TLS with per-truck certificates (needs the tankguard-ca binary)")
	flag.Int64Var(&cfg.Seed, "seed", 1, "random seed for the fault schedule and the simulator")
	flag.StringVar(&cfg.BinDir, "bin", "", "directory holding the cloud and gateway binaries (default: beside this one)")
	flag.StringVar(&cfg.WorkDir, "dir", "", "working directory (default: a new temporary directory, removed on success)")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(cfg Config) error {
	if cfg.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.BinDir = filepath.Dir(exe)
	}
	keep := cfg.WorkDir != ""
	if !keep {
		d, err := os.MkdirTemp("", "tankguard-chaos-")
		if err != nil {
			return err
		}
		cfg.WorkDir = d
	}
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, cfg.WorkDir)
	}
	fmt.Print(rep.String())
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%d problems (logs in %s)", len(rep.Problems), cfg.WorkDir)
	}
	if !keep {
		os.RemoveAll(cfg.WorkDir)
	}
	return nil
}
