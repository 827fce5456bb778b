// Command firmware-sim simulates trucks: J1939 CAN buses (loopback TCP or
// SocketCAN) and NMEA pseudo-terminals, with scenario faults and a
// ground-truth record of every value emitted.
//
//	firmware-sim -trucks 5 -manifest var/sim.json -truth var/truth.csv -overheat truck-01@60s
//
// It prints the manifest (JSON) to stdout once every truck is ready and
// stops cleanly, flushing the truth file, on SIGINT or SIGTERM.
//
// With -offline it runs in simulated time, as fast as the CPU allows, with
// no sockets or terminals, and writes the same candump, truth and faults
// files a live run with -no-serial writes, byte for byte:
//
//	firmware-sim -offline -duration 10h -start 2026-06-21T10:00:00Z -scenario S \
//	    -candump out.log -truth truth.csv -faults faults.csv
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "firmware-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg        firmwaresim.Config
		scenario   = flag.String("scenario", "", "scenario JSON file (see firmware-sim/testdata/scenario.json)")
		overheat   multiFlag
		warm       = flag.Bool("warm", false, "start every truck's engine warm (default for trucks not in the scenario)")
		verbose    = flag.Bool("v", false, "debug logging")
		printMan   = flag.Bool("print-manifest", true, "print the manifest JSON to stdout when ready")
		noSerialFl = flag.Bool("no-serial", false, "do not create NMEA pseudo-terminals")
		offline    = flag.Bool("offline", false, "run in simulated time, without sockets or terminals (needs -duration)")
		duration   = flag.Duration("duration", 0, "with -offline: how much simulated time to run")
		startFl    = flag.String("start", "", "with -offline: the trucks' start, RFC 3339 (default: now)")
	)
	flag.IntVar(&cfg.Trucks, "trucks", firmwaresim.DefaultTrucks, "number of trucks")
	flag.StringVar(&cfg.IDPrefix, "prefix", firmwaresim.DefaultIDPrefix, "truck id prefix (ids are PREFIX01, PREFIX02, ...)")
	flag.StringVar(&cfg.CAN, "can", "", "SocketCAN interfaces, comma-separated, one per truck (default: loopback TCP per truck)")
	flag.Int64Var(&cfg.Seed, "seed", 0, "random seed (default: the scenario's, else 1)")
	flag.StringVar(&cfg.TruthPath, "truth", "", "write every emitted value to this CSV file")
	flag.StringVar(&cfg.CandumpPath, "candump", "", "write every frame sent to this candump log (candump -l format; interface = truck id)")
	flag.StringVar(&cfg.FaultsPath, "faults", "", "write each scheduled fault (truck,kind,signal,start,end,hazard) to this CSV file")
	flag.StringVar(&cfg.ManifestPath, "manifest", "", "write the manifest JSON to this file when ready")
	flag.Var(&overheat, "overheat", "inject an engine overheat: TRUCK@OFFSET, e.g. truck-01@60s (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	cfg.NoSerial = *noSerialFl

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *scenario != "" {
		b, err := os.ReadFile(*scenario)
		if err != nil {
			return fmt.Errorf("read scenario: %w", err)
		}
		if cfg.Scenario, err = firmwaresim.ParseScenario(b); err != nil {
			return fmt.Errorf("%s: %w", *scenario, err)
		}
	}
	if *warm {
		t := true
		cfg.Scenario.Default.Warm = &t
		for id, ts := range cfg.Scenario.Trucks {
			if ts.Warm == nil {
				ts.Warm = &t
				cfg.Scenario.Trucks[id] = ts
			}
		}
	}
	for _, spec := range overheat {
		if err := cfg.Scenario.AddFaultFlag(firmwaresim.FaultOverheat, spec); err != nil {
			return err
		}
	}
	if err := cfg.Scenario.ValidateTrucks(cfg.IDPrefix, cfg.Trucks); err != nil {
		return err
	}
	if *offline {
		return runOffline(cfg, *duration, *startFl)
	}
	if *duration != 0 || *startFl != "" {
		return errors.New("-duration and -start need -offline")
	}
	if *printMan {
		cfg.OnReady = func(m firmwaresim.Manifest) {
			b, _ := json.Marshal(m)
			fmt.Println(string(b))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := firmwaresim.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// runOffline simulates cfg's trucks for d from start (RFC 3339, default
// now) in simulated time and writes the configured files.
func runOffline(cfg firmwaresim.Config, d time.Duration, start string) error {
	if d <= 0 {
		return errors.New("-offline needs -duration, e.g. -duration 10h")
	}
	if cfg.CAN != "" {
		return errors.New("-offline uses no bus; drop -can")
	}
	if cfg.ManifestPath != "" {
		return errors.New("-offline has no manifest; drop -manifest")
	}
	t0 := time.Now()
	if start != "" {
		var err error
		if t0, err = time.Parse(time.RFC3339Nano, start); err != nil {
			return fmt.Errorf("-start %q: want RFC 3339, e.g. 2026-06-21T10:00:00Z", start)
		}
	}
	cfg.NoSerial = true
	s, err := firmwaresim.New(cfg)
	if err != nil {
		return err
	}
	begin := time.Now()
	readings := 0
	if _, err := s.Simulate(t0, d, func(smp *firmwaresim.Sample) { readings += len(smp.Readings) }); err != nil {
		return err
	}
	cfg.Logger.Info("offline run done", "trucks", cfg.Trucks, "simulated", d, "readings", readings, "wall", time.Since(begin).Round(time.Millisecond))
	return nil
}
