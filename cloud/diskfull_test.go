package cloud

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/internal/disktest"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestCloudDiskFull fills the cloud's real (small) data disk: the cloud
// stops acknowledging, so the publisher keeps its batch; broker and
// console stay up and say the disk is full; once space returns the held
// batch is acknowledged and archived. Before, the cloud exited.
func TestCloudDiskFull(t *testing.T) {
	disk := disktest.Small(t, "48m")
	const minFree = 8 << 20
	c := startCloud(t, disk, func(c *Config) { c.MinFreeBytes = minFree })
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "D1", Readings: series(sensors.CoolantTemp, 1, 50, t0, func(int) float64 { return 85 })})
	waitFor(t, "first batch archived", func() bool { return len(archivedSeqs(t, c.ArchiveDir(), "D1")) == 50 })

	// Fill the disk to below min_free_bytes.
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, free-minFree/2), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := uplink.Encode(uplink.Batch{Truck: "D1", Readings: series(sensors.CoolantTemp, 51, 100, t0.Add(50*time.Second), func(int) float64 { return 85 })})
	if err != nil {
		t.Fatal(err)
	}
	tok := cl.Publish(uplink.Topic("D1", uplink.KindTelemetry), 1, false, p)
	if tok.WaitTimeout(3 * time.Second) {
		t.Fatalf("batch acknowledged with the disk full (err %v)", tok.Error())
	}
	s := c.Stats()
	if !s.DiskFull || s.DiskFullEvents != 1 {
		t.Fatalf("stats disk_full %v, events %d; want true, 1", s.DiskFull, s.DiskFullEvents)
	}
	var stats Stats
	getJSON(t, "http://"+c.HTTPAddr()+"/api/stats", &stats)
	if !stats.DiskFull {
		t.Fatalf("console /api/stats disk_full = false with the disk full")
	}
	// The broker still serves other clients.
	dial(t, c.BrokerAddr(), "another")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("held batch not acknowledged after space returned: %v", tok.Error())
	}
	waitFor(t, "held batch archived", func() bool { return len(archivedSeqs(t, c.ArchiveDir(), "D1")) == 100 })
	if c.Stats().DiskFull {
		t.Error("still disk full after space returned")
	}
}
