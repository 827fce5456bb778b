package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/sensors"
)

// TestSIGTERMFlushesFiles runs the binary, reads a truck like a gateway,
// stops it with SIGTERM and checks it exits 0 with the truth, candump and
// faults files complete and consistent with what was read.
func TestSIGTERMFlushesFiles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	cmd := exec.Command(bin, "-trucks", "2", "-warm", "-overheat", "truck-02@1h", "-no-serial", "-print-manifest=false",
		"-manifest", p("m.json"), "-truth", p("truth.csv"), "-candump", p("can.log"), "-faults", p("faults.csv"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var m firmwaresim.Manifest
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(p("m.json"))
		if err == nil && json.Unmarshal(b, &m) == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no manifest")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dec, err := sensors.NewCANDecoder(sensors.DefaultDBC)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	src := &sensors.CANSource{Addr: m.Trucks[1].CAN, Decoder: dec}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(rs []sensors.Reading) { n += len(rs) }) }()
	deadline = time.Now().Add(20 * time.Second)
	for dec.Stats().Frames < 15 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("firmware-sim exit after SIGTERM: %v", err)
	}
	// The sim closed the bus; the source has read everything it sent.
	for src.Stats().Disconnects == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p("truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	truth, err := firmwaresim.ReadTruth(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) == 0 || len(truth) != n {
		t.Fatalf("truth has %d values, the client read %d", len(truth), n)
	}
	for _, r := range truth {
		if r.Truck != "truck-02" {
			t.Fatalf("truth for %s, which had no client", r.Truck)
		}
	}
	dump, err := os.ReadFile(p("can.log"))
	if err != nil || len(dump) == 0 {
		t.Fatalf("candump: %v, %d bytes", err, len(dump))
	}
	ff, err := os.Open(p("faults.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := firmwaresim.ReadFaults(ff)
	ff.Close()
	if err != nil || len(w) != 1 || w[0].Kind != firmwaresim.FaultOverheat || w[0].Truck != "truck-02" {
		t.Fatalf("faults %+v %v", w, err)
	}
}
