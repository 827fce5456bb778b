package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// TestScaleCPU runs the firmware-sim binary with many trucks at their real
// rates, drains every CAN bus and terminal like gateways would, and reports
// the simulator's CPU use (user+system seconds per wall second, from
// /proc/PID/stat). It is a measurement, not a pass/fail timing check, and
// runs only with FIRMWARE_SIM_SCALE=N (number of trucks, e.g. 1000):
//
//	FIRMWARE_SIM_SCALE=1000 go test ./cmd/firmware-sim -run TestScaleCPU -v
func TestScaleCPU(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FIRMWARE_SIM_SCALE"))
	if n <= 0 {
		t.Skip("set FIRMWARE_SIM_SCALE=1000 to measure")
	}
	window := 20 * time.Second
	if s := os.Getenv("FIRMWARE_SIM_SCALE_WINDOW"); s != "" {
		window, _ = time.ParseDuration(s)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	man := filepath.Join(dir, "manifest.json")
	cmd := exec.Command(bin, "-trucks", fmt.Sprint(n), "-warm", "-manifest", man, "-print-manifest=false")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var m firmwaresim.Manifest
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(man)
		if err == nil && json.Unmarshal(b, &m) == nil && len(m.Trucks) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no manifest")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var canBytes, serialBytes atomic.Int64
	drain := func(r io.ReadCloser, count *atomic.Int64) {
		defer wg.Done()
		stop := context.AfterFunc(ctx, func() { r.Close() })
		defer stop()
		buf := make([]byte, 4096)
		for {
			k, err := r.Read(buf)
			count.Add(int64(k))
			if err != nil {
				return
			}
		}
	}
	for _, tr := range m.Trucks {
		c, err := net.Dial("tcp", strings.TrimPrefix(tr.CAN, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(tr.Serial, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go drain(c, &canBytes)
		go drain(f, &serialBytes)
	}
	time.Sleep(3 * time.Second) // let every truck start
	cpu0, wall0 := procCPU(t, cmd.Process.Pid), time.Now()
	c0, s0 := canBytes.Load(), serialBytes.Load()
	time.Sleep(window)
	cpu1, wall1 := procCPU(t, cmd.Process.Pid), time.Now()
	c1, s1 := canBytes.Load(), serialBytes.Load()
	secs := wall1.Sub(wall0).Seconds()
	cores := (cpu1 - cpu0) / secs
	frames := float64(c1-c0) / 16 / secs
	t.Logf("firmware-sim %d trucks: %.3f cores (CPU %.2fs over %.1fs); %.0f CAN frames/s (expected %d), %.0f NMEA bytes/s",
		n, cores, cpu1-cpu0, secs, frames, n*13, float64(s1-s0)/secs)
	fmt.Printf("BENCH firmware_sim_cores_%d_trucks %.3f cores\n", n, cores)
	if frames < float64(n*13)*0.9 {
		t.Errorf("only %.0f frames/s for %d trucks: the simulator does not keep real rates", frames, n)
	}
	cancel()
	wg.Wait()
}

// procCPU returns user+system CPU seconds of process pid.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(line[strings.LastIndexByte(line, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clkTck = 100 // USER_HZ on Linux
	return (utime + stime) / clkTck
}
