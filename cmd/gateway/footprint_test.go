package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/broker"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/uplink"
)

// The footprint benchmarks measure what the truck's ARM box pays for the
// gateway: the size of the static stripped arm64 binary, and the resident
// memory and CPU of the real gateway binary with one simulated truck's
// sensors flowing into it and an embedded broker taking its uplink. Their
// targets (issue 9) are 12 MB, 24 MB and 2 % of one core; they are
// figures, not pass/fail checks.
//
//	go test ./cmd/gateway -run '^$' -bench Footprint -count 3
//
// FOOTPRINT_WINDOW (a duration, default 20s) sets the sampling window.

// buildGateway builds this command into dir for goos/goarch the way
// `make cross` does and returns the binary's path.
func buildGateway(tb testing.TB, dir, goarch string) string {
	tb.Helper()
	bin := filepath.Join(dir, "gateway-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if goarch == "arm" {
		cmd.Env = append(cmd.Env, "GOARM=7")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", goarch, err, out)
	}
	return bin
}

func BenchmarkFootprintBinaryARM64(b *testing.B) {
	b.ReportAllocs()
	dir := b.TempDir()
	var size int64
	for b.Loop() {
		st, err := os.Stat(buildGateway(b, dir, "arm64"))
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.ReportMetric(float64(size)/1e6, "gateway_arm64_binary_mb:MB")
}

// procSample is one reading of /proc/PID: resident set and CPU ticks.
type procSample struct {
	rssKB  int64
	anonKB int64 // RssAnon: heap, stacks; the rest of VmRSS is mapped files (binary text, bbolt)
	ticks  int64 // utime + stime, in clock ticks
	at     time.Time
}

// clockTicks is USER_HZ; 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		for _, field := range []struct {
			prefix string
			into   *int64
		}{{"VmRSS:", &s.rssKB}, {"RssAnon:", &s.anonKB}} {
			if v, ok := strings.CutPrefix(sc.Text(), field.prefix); ok {
				if f := strings.Fields(v); len(f) > 0 {
					*field.into, _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	s.ticks = ut + stt
	return s, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkFootprintOneTruck starts the gateway binary (host architecture,
// built like the ARM one) against one simulated truck (firmware-sim
// in-process: CAN over loopback TCP and NMEA on a pseudo-terminal) and an
// in-process embedded broker, with the cab display and /metrics served as
// the Debian package's unit runs it, lets it settle for 5 s, then samples the
// process every second over the window. It reports the median VmRSS, the
// peak VmRSS and the CPU used over the window as a percentage of one core.
func BenchmarkFootprintOneTruck(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	b.ReportAllocs()
	window := 20 * time.Second
	if s := os.Getenv("FOOTPRINT_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("FOOTPRINT_WINDOW: %v", err)
		}
		window = d
	}
	dir := b.TempDir()
	bin := buildGateway(b, dir, runtime.GOARCH)
	var rss, anon, peak, cpu []float64
	for b.Loop() {
		r := measureOneTruck(b, bin, filepath.Join(dir, fmt.Sprintf("run-%d", len(rss))), window)
		rss, anon, peak, cpu = append(rss, r.rssMB), append(anon, r.anonMB), append(peak, r.peakMB), append(cpu, r.cpuPct)
	}
	b.ReportMetric(median(rss), "gateway_idle_rss_mb:MB")
	b.ReportMetric(median(peak), "gateway_peak_rss_mb:MB")
	b.ReportMetric(median(anon), "gateway_idle_rss_anon_mb:MB")
	b.ReportMetric(median(cpu), "gateway_cpu_percent_one_truck:%")
}

type footprint struct{ rssMB, anonMB, peakMB, cpuPct float64 }

func measureOneTruck(b *testing.B, bin, dir string, window time.Duration) footprint {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	var published atomic.Int64
	brk, err := broker.Start(broker.Options{Listen: "127.0.0.1:0",
		Match:     func(string) bool { return true },
		Intercept: func(string, []byte) error { published.Add(1); return nil }}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer brk.Close()
	// Stand in for the cloud's durable confirmations, so the gateway
	// deletes what it sent as it would in the field.
	conf := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + brk.Addr()).SetClientID("confirmer"))
	if tok := conf.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("confirmer connect: %v", tok.Error())
	}
	defer conf.Disconnect(100)
	tok := conf.Subscribe(uplink.UpFilter, 1, func(c paho.Client, m paho.Message) {
		truck, _, err := uplink.ParseTopic(m.Topic())
		if p, eerr := uplink.EncodeDurable([]uint64{uplink.PayloadID(m.Payload())}); err == nil && eerr == nil {
			c.Publish(uplink.Topic(truck, uplink.KindDurable), 1, false, p)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("confirmer subscribe: %v", tok.Error())
	}

	ready := make(chan firmwaresim.Manifest, 1)
	simDone := make(chan error, 1)
	warm := true
	var sc firmwaresim.Scenario
	sc.Default.Warm = &warm
	go func() {
		simDone <- firmwaresim.Run(ctx, firmwaresim.Config{Trucks: 1, Scenario: sc, Seed: 3,
			OnReady: func(m firmwaresim.Manifest) { ready <- m }})
	}()
	defer func() { cancel(); <-simDone }()
	var m firmwaresim.Manifest
	select {
	case m = <-ready:
	case err := <-simDone:
		b.Fatalf("firmware-sim stopped: %v", err)
	case <-time.After(30 * time.Second):
		b.Fatal("firmware-sim not ready")
	}
	t := m.Trucks[0]
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-truck", t.ID, "-data", dir, "-can", t.CAN, "-serial", t.Serial,
		"-broker", "tcp://"+brk.Addr(), "-cab", "127.0.0.1:0", "-metrics", "127.0.0.1:0")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	sleep := func(d time.Duration) {
		select {
		case err := <-exited:
			b.Fatalf("gateway exited: %v\n%s", err, stderr.String())
		case <-time.After(d):
		}
	}
	sleep(5 * time.Second) // connect, open the queue, warm the detector
	first, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	var rss, anon []float64
	var peak float64
	last := first
	for time.Since(first.at) < window {
		sleep(time.Second)
		if last, err = readProc(pid); err != nil {
			b.Fatal(err)
		}
		mb := float64(last.rssKB) / 1024
		rss = append(rss, mb)
		anon = append(anon, float64(last.anonKB)/1024)
		peak = max(peak, mb)
	}
	cpu := float64(last.ticks-first.ticks) / clockTicks / last.at.Sub(first.at).Seconds() * 100
	if published.Load() == 0 {
		b.Fatalf("gateway published nothing to the broker\n%s", stderr.String())
	}
	return footprint{rssMB: median(rss), anonMB: median(anon), peakMB: peak, cpuPct: cpu}
}
