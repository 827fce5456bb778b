package uplink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

const (
	drainChildEnv   = "TANKGUARD_UPLINK_DRAIN_CHILD" // "dbpath brokerURL"
	drainBacklog    = 3_000_000
	drainAlertEvery = 100 * time.Millisecond
)

// runDrainChild is the gateway side of BenchmarkBacklogDrain, in its own
// process so its peak RSS is the gateway's alone: open the queue, publish
// until it is empty, appending a live alert every 100 ms, then print the
// drain time.
func runDrainChild() bool {
	arg := os.Getenv(drainChildEnv)
	if arg == "" {
		return false
	}
	path, url, _ := strings.Cut(arg, " ")
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "drain child:", err)
		os.Exit(2)
	}
	q, err := buffer.Open(path, buffer.Options{MaxBytes: 4 << 30}, nil)
	if err != nil {
		fail(err)
	}
	p, err := NewPublisher(Config{BrokerURL: url, Truck: "T-drain"}, q, nil)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.Run(ctx) }()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(drainAlertEvery)
			// Time carries the wall clock at append, for the latency.
			al := []detect.Transition{{Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: 1, Time: time.Now().UnixNano()}}
			if err := q.Append(nil, al, nil); err != nil {
				fail(err)
			}
		}
	}()
	start := time.Now()
	for {
		st := q.Stats()
		if st.Readings == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	cancel()
	wg.Wait()
	q.Close()
	fmt.Printf("drained %d\n", el.Nanoseconds())
	// rusage's maxrss would include the parent's pages from before exec.
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				fmt.Printf("hwm %s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return true
}

// drainTemplateDir is removed by TestMain when the tests end.
var drainTemplateDir string

// drainTemplate builds, once, a queue file holding drainBacklog readings
// of a simulated drive.
var drainTemplate = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tankguard-drain-")
	if err != nil {
		return "", err
	}
	drainTemplateDir = dir
	path := filepath.Join(dir, "backlog.db")
	q, err := buffer.Open(path, buffer.Options{MaxBytes: 4 << 30}, nil)
	if err != nil {
		return "", err
	}
	var n int
	for t := time.Duration(0); n < drainBacklog; t += time.Hour {
		rs := driveReadings(t, time.Hour)
		rs = rs[:min(len(rs), drainBacklog-n)]
		for i := 0; i < len(rs); i += 10000 {
			if err := q.Append(rs[i:min(len(rs), i+10000)], nil, nil); err != nil {
				return "", err
			}
		}
		n += len(rs)
	}
	return path, q.Close()
})

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkBacklogDrain drains a 3,000,000-reading backlog through a
// gateway process (queue + publisher, default config) to an in-process
// mochi broker, while the gateway raises a live alert every 100 ms.
// It reports the drain rate, the gateway's peak RSS, and how long the
// alerts took from Append to the broker's subscriber (max and median).
func BenchmarkBacklogDrain(b *testing.B) {
	tmpl, err := drainTemplate()
	if err != nil {
		b.Fatal(err)
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: discardLog()})
	var mu sync.Mutex
	var lat []time.Duration
	var bytes int64
	srv.AddHook(new(allowAll), nil)
	tcp := newLoopbackListener(b, srv)
	if err := srv.Serve(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.Subscribe(UpFilter, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		now := time.Now()
		_, kind, _ := ParseTopic(pk.TopicName)
		mu.Lock()
		bytes += int64(len(pk.Payload))
		mu.Unlock()
		if kind != KindAlerts {
			return
		}
		bt, err := Decode(pk.Payload, DefaultLimits())
		if err != nil {
			b.Error(err)
			return
		}
		mu.Lock()
		for _, a := range bt.Alerts {
			lat = append(lat, now.Sub(time.Unix(0, a.Time)))
		}
		mu.Unlock()
	})
	b.ReportAllocs()
	var drainNs, rssKB int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "q.db")
		if err := copyFile(path, tmpl); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), drainChildEnv+"="+path+" tcp://"+tcp)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "drained "); ok {
				ns, _ := strconv.ParseInt(v, 10, 64)
				drainNs += ns
			}
			if v, ok := strings.CutPrefix(sc.Text(), "hwm "); ok {
				kb, _ := strconv.ParseInt(v, 10, 64)
				rssKB = max(rssKB, kb)
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 || drainNs == 0 {
		b.Fatalf("no alerts (%d) or no drain time", len(lat))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(drainBacklog)*float64(b.N)/(float64(drainNs)/1e9), "backlog_drain_readings_per_s:readings/s")
	b.ReportMetric(float64(rssKB)/1024, "gateway_drain_rss_mb:MB")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "alert_during_drain_latency_ms:ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "alert_during_drain_latency_p50_ms:ms")
	b.ReportMetric(float64(bytes)/float64(drainBacklog*b.N), "drain_bytes/reading")
}
