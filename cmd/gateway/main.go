// Command gateway runs one truck's edge pipeline: it reads the truck's CAN
// buses and serial GNSS receivers, detects temperature excursions, drives
// the in-cab display, stores everything in a store-and-forward queue and
// uplinks it over MQTT.
//
//	gateway -truck truck-01 -data /var/lib/tankguard -can can0 -serial /dev/ttyUSB0 -broker tcp://broker:1883
//
// An optional JSON config file (-config) sets the detector ("detect", see
// detect.ParseConfig). Flags override the file.
//
// With -replay FILE (a candump -L log) the gateway feeds the log through
// its decoder, detector and queue; missing-data checks then run on the
// log's time, not the wall clock, and the gateway exits once the log ends
// (-replay-follow keeps it running).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/gateway"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// fileConfig is the JSON config file: the gateway's own fields plus the
// detector section in detect.ParseConfig's format.
type fileConfig struct {
	Truck   string          `json:"truck"`
	DataDir string          `json:"data_dir"`
	CAN     []string        `json:"can"`
	Serial  []string        `json:"serial"`
	Probe   []string        `json:"probe"`
	Replay  []string        `json:"replay"`
	Broker  string          `json:"broker"`
	TLSCert string          `json:"tls_cert"`
	TLSKey  string          `json:"tls_key"`
	TLSCA   string          `json:"tls_ca"`
	Cab     string          `json:"cab_listen"`
	CabHost []string        `json:"cab_hosts"`
	DBC     string          `json:"dbc_file"`
	Record  string          `json:"record_candump"`
	Detect  json.RawMessage `json:"detect"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		can, serial    listFlag
		probe, replay  listFlag
		cfgReplaySpeed float64
		cfgFile        = flag.String("config", "", "JSON config file")
		truck          = flag.String("truck", "", "truck id, e.g. truck-01")
		dataDir        = flag.String("data", "", "data directory for the store-and-forward queue")
		broker         = flag.String("broker", "", "MQTT broker URL (default tcp://127.0.0.1:1883)")
		cabListen      = flag.String("cab", "", `cab display listen address (default 127.0.0.1:8081; "off" disables)`)
		cabHosts       = flag.String("cab-hosts", "", "comma-separated host names or IPs the kiosk browser opens the cab display by, besides loopback and -cab's host (acknowledgements for any other Host are refused)")
		dbcFile        = flag.String("dbc", "", "DBC file (default: the built-in sensors/tankguard.dbc)")
		verbose        = flag.Bool("v", false, "debug logging")
		metricsAddr    = flag.String("metrics", "", "serve Prometheus metrics on this listen address at /metrics, e.g. 127.0.0.1:9101 (default off)")
		tlsCert        = flag.String("tls-cert", "", "client certificate (PEM) for mutual TLS with an ssl:// broker (tankguard-ca truck)")
		tlsKey         = flag.String("tls-key", "", "client key (PEM) for -tls-cert")
		tlsCA          = flag.String("tls-ca", "", "CA certificate (PEM) that signs the broker's certificate (default: system roots)")
		batchDelay     = flag.Duration("batch-delay", 0, "longest a reading waits to be batched with later ones while online (default 10s; larger compresses better)")
	)
	flag.Var(&can, "can", "CAN bus: interface name (can0) or tcp://127.0.0.1:PORT; repeatable or comma-separated")
	flag.Var(&probe, "probe", "serial cargo-tank probe port ($PTGCT lines, see sensors/PROTOCOLS.md); repeatable")
	flag.Var(&replay, "replay", "candump log file to replay through the CAN decoder; repeatable")
	flag.Float64Var(&cfgReplaySpeed, "replay-speed", 0, "replay pace: 0 as fast as possible, 1 real time")
	replayFollow := flag.Bool("replay-follow", false, "keep running after the -replay logs end (default: exit once they end and the uplink has sent what it can within -replay-drain)")
	replayDrain := flag.Duration("replay-drain", gateway.DefaultConfig().ReplayDrain, "after the -replay logs end, how long to wait for the uplink to send what is queued before exiting (the rest stays queued)")
	recordCandump := flag.String("record-candump", "", "record the live CAN buses to this file in candump -L format (replayable with -replay), rotated by size")
	recordMaxMB := flag.Int64("record-max-mb", sensors.DefaultRecordMaxBytes>>20, "rotate the -record-candump file at this size in MiB")
	recordKeep := flag.Int("record-keep", sensors.DefaultRecordKeep, "rotated -record-candump files to keep (FILE.1 .. FILE.N); the recording takes at most (N+1) × -record-max-mb")
	flag.Var(&serial, "serial", "NMEA serial port, e.g. /dev/ttyUSB0; repeatable or comma-separated")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := gateway.DefaultConfig()
	var fc fileConfig
	if *cfgFile != "" {
		b, err := os.ReadFile(*cfgFile)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fc); err != nil {
			return fmt.Errorf("config %s: %w", *cfgFile, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("config %s: trailing data after the JSON object", *cfgFile)
		}
		if len(fc.Detect) > 0 {
			if cfg.Detect, err = detect.ParseConfig(fc.Detect); err != nil {
				return fmt.Errorf("config %s: detect: %w", *cfgFile, err)
			}
		}
	}
	pick := func(flagV, fileV string) string {
		if flagV != "" {
			return flagV
		}
		return fileV
	}
	cfg.Truck = pick(*truck, fc.Truck)
	cfg.DataDir = pick(*dataDir, fc.DataDir)
	cfg.CAN = append([]string(nil), fc.CAN...)
	if len(can) > 0 {
		cfg.CAN = can
	}
	cfg.Serial = append([]string(nil), fc.Serial...)
	if len(serial) > 0 {
		cfg.Serial = serial
	}
	cfg.Probe = append([]string(nil), fc.Probe...)
	if len(probe) > 0 {
		cfg.Probe = probe
	}
	cfg.Replay = append([]string(nil), fc.Replay...)
	if len(replay) > 0 {
		cfg.Replay = replay
	}
	cfg.RecordCandump = pick(*recordCandump, fc.Record)
	cfg.RecordMaxBytes = *recordMaxMB << 20
	cfg.RecordKeep = *recordKeep
	if *recordKeep == 0 {
		cfg.RecordKeep = -1 // no rotated files
	}
	cfg.ReplaySpeed = cfgReplaySpeed
	cfg.ReplayFollow = *replayFollow
	cfg.ReplayDrain = *replayDrain
	if b := pick(*broker, fc.Broker); b != "" {
		cfg.Uplink.BrokerURL = b
	}
	if *batchDelay > 0 {
		cfg.Uplink.BatchDelay = *batchDelay
	}
	if cert, key, ca := pick(*tlsCert, fc.TLSCert), pick(*tlsKey, fc.TLSKey), pick(*tlsCA, fc.TLSCA); cert+key+ca != "" {
		var pems [3][]byte
		for i, f := range []string{cert, key, ca} {
			if f == "" {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read tls file: %w", err)
			}
			pems[i] = b
		}
		tc, err := uplink.TLSConfig(pems[0], pems[1], pems[2], "")
		if err != nil {
			return err
		}
		cfg.Uplink.TLS = tc
	}
	if c := pick(*cabListen, fc.Cab); c != "" {
		cfg.Cab.Listen = c
	}
	cfg.Cab.Hosts = fc.CabHost
	if *cabHosts != "" {
		cfg.Cab.Hosts = strings.Split(*cabHosts, ",")
	}
	if f := pick(*dbcFile, fc.DBC); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read dbc: %w", err)
		}
		cfg.DBC = b
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := gateway.New(cfg, log)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		wait, err := serveMetrics(ctx, *metricsAddr, gateway.NewMetrics(g).Handler(), log)
		if err != nil {
			return err
		}
		defer wait()
	}
	if c := g.Cab(); c != nil {
		go func() {
			select {
			case <-c.Ready():
				fmt.Printf("cab display: http://%s/\n", c.Addr())
			case <-ctx.Done():
			}
		}()
	}
	err = g.Run(ctx)
	stop() // Run also returns at the end of a replay: stop the metrics server too
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("gateway stopped", "truck", cfg.Truck, "cause", context.Cause(ctx))
	return nil
}
