package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/cloud/internal/s3test"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	goleak.VerifyTestMain(m)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CLOUD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testCloud is a running Cloud with an embedded broker on a free port.
type testCloud struct {
	*Cloud
	stop func() error
}

func startCloud(t testing.TB, dataDir string, mod func(*Config)) *testCloud {
	t.Helper()
	cfg := Config{
		DataDir:        dataDir,
		BrokerListen:   "127.0.0.1:0",
		BrokerPlainTCP: true,
		HTTPListen:     "127.0.0.1:0",
		FlushInterval:  50 * time.Millisecond,
		Console:        console.Config{Users: testUsers},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("cloud ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("cloud not ready after 10s")
	}
	tc := &testCloud{Cloud: c}
	var stopped bool
	var runErr error
	tc.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { tc.stop() })
	return tc
}

func dial(t testing.TB, addr, id string) mqtt.Client {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false))
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

func publish(t testing.TB, cl mqtt.Client, topic string, payload []byte) {
	t.Helper()
	if tok := cl.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func publishBatch(t testing.TB, cl mqtt.Client, kind string, b uplink.Batch) {
	t.Helper()
	p, err := uplink.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, cl, uplink.Topic(b.Truck, kind), p)
}

// series returns readings of sig with seqs from..to, one per second from
// t0, with values from val(i).
func series(sig sensors.Signal, from, to uint64, t0 time.Time, val func(i int) float64) []sensors.Reading {
	var rs []sensors.Reading
	for s := from; s <= to; s++ {
		i := int(s - from)
		rs = append(rs, sensors.Reading{Seq: s, Time: t0.Add(time.Duration(i) * time.Second).UnixNano(), Value: val(i), Signal: sig})
	}
	return rs
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func archivedSeqs(t testing.TB, dir, truck string) []int64 {
	t.Helper()
	rows, err := archive.ReadReadings(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range rows {
		if r.Truck == truck {
			seqs = append(seqs, r.Seq)
		}
	}
	slices.Sort(seqs)
	return seqs
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestIngestDedupAndArchive(t *testing.T) {
	for _, mode := range []string{IngestHook, IngestSubscribe} {
		t.Run(mode, func(t *testing.T) { testIngestDedupAndArchive(t, mode) })
	}
}

func testIngestDedupAndArchive(t *testing.T, mode string) {
	dir := t.TempDir()
	c := startCloud(t, dir, func(c *Config) { c.Ingest = mode })
	cl := dial(t, c.BrokerAddr(), "truck-sim")
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour) // within the accepted times
	flat := func(int) float64 { return 80 }

	tests := []struct {
		name     string
		kind     string
		batch    uplink.Batch
		wantNew  uint64 // total accepted readings after this step
		wantDups uint64
	}{
		{"first batch", uplink.KindTelemetry, uplink.Batch{Truck: "T1", Readings: series(sensors.CoolantTemp, 1, 50, t0, flat)}, 50, 0},
		{"same batch again", uplink.KindTelemetry, uplink.Batch{Truck: "T1", Readings: series(sensors.CoolantTemp, 1, 50, t0, flat)}, 50, 50},
		{"overlapping batch", uplink.KindTelemetry, uplink.Batch{Truck: "T1", Readings: series(sensors.CoolantTemp, 41, 60, t0.Add(40*time.Second), flat)}, 60, 60},
		{"gap for the alert lane", uplink.KindTelemetry, uplink.Batch{Truck: "T1", Readings: series(sensors.CoolantTemp, 62, 70, t0.Add(62*time.Second), flat)}, 69, 60},
		{"alert lane fills the gap", uplink.KindAlerts, uplink.Batch{Truck: "T1", Alerts: []detect.Transition{{
			Seq: 61, Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
			Phase: detect.Raised, Start: t0.UnixNano(), Time: t0.Add(61 * time.Second).UnixNano(), Value: 120,
		}}}, 69, 60},
		{"alert redelivered", uplink.KindAlerts, uplink.Batch{Truck: "T1", Alerts: []detect.Transition{{
			Seq: 61, Truck: "T1", Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical,
			Phase: detect.Raised, Start: t0.UnixNano(), Time: t0.Add(61 * time.Second).UnixNano(), Value: 120,
		}}}, 69, 60},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			publishBatch(t, cl, tc.kind, tc.batch)
			waitFor(t, "ingest", func() bool { return c.Stats().Messages >= uint64(i+1) })
			waitFor(t, "counts", func() bool {
				s := c.Stats()
				return s.Readings == tc.wantNew && s.DuplicateReadings == tc.wantDups
			})
		})
	}
	want := append(seqRange(1, 60), seqRange(62, 70)...)
	waitFor(t, "archive", func() bool { return slices.Equal(archivedSeqs(t, c.ArchiveDir(), "T1"), want) })
	waitFor(t, "edge alert archived", func() bool {
		alerts, err := archive.ReadAlerts(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range alerts {
			if a.Source == archive.SourceEdge && a.Seq == 61 {
				n++
			}
		}
		return n == 1
	})
	if s := c.Stats(); s.DuplicateRecords != 1 || s.EdgeAlerts != 1 {
		t.Errorf("edge alerts %d, duplicate records %d; want 1 and 1", s.EdgeAlerts, s.DuplicateRecords)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rows, _ := archive.ReadReadings(c.ArchiveDir())
	got := rows[0]
	if got.Signal != "coolant_temp" || got.Value != 80 || got.TimeNS != t0.UnixNano() || got.Seq != 1 {
		t.Errorf("first row %+v", got)
	}
}

func TestDedupSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).UTC()
	flat := func(int) float64 { return 20 }

	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "sim-1")
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "T2", Readings: series(sensors.CargoTemp, 1, 30, t0, flat)})
	waitFor(t, "first run", func() bool { return c.Stats().Readings == 30 })
	cl.Disconnect(100)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if got := archivedSeqs(t, c.ArchiveDir(), "T2"); !slices.Equal(got, seqRange(1, 30)) {
		t.Fatalf("after clean stop archive has %v", got)
	}

	c2 := startCloud(t, dir, nil)
	cl2 := dial(t, c2.BrokerAddr(), "sim-2")
	publishBatch(t, cl2, uplink.KindTelemetry, uplink.Batch{Truck: "T2", Readings: series(sensors.CargoTemp, 1, 60, t0, flat)})
	waitFor(t, "second run", func() bool { return c2.Stats().Readings == 30 && c2.Stats().DuplicateReadings == 30 })
	waitFor(t, "archive", func() bool { return slices.Equal(archivedSeqs(t, c2.ArchiveDir(), "T2"), seqRange(1, 60)) })
}

func TestRedetectionRaisesOverheat(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	// 60 s of normal coolant, then 30 s far above the limit, sent in
	// batches of 10.
	val := func(i int) float64 {
		if i >= 60 {
			return 118
		}
		return 88 + float64(i%3)*0.2
	}
	all := series(sensors.CoolantTemp, 1, 90, t0, val)
	for i := 0; i < len(all); i += 10 {
		b := slices.Clone(all[i : i+10])
		publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "T3", Readings: b})
	}
	waitFor(t, "cloud alert in archive", func() bool {
		alerts, err := archive.ReadAlerts(c.ArchiveDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Source == archive.SourceCloud && a.Truck == "T3" && a.Signal == "coolant_temp" && a.Phase == "raised" {
				if a.Severity != "critical" || a.StartNS != all[60].Time {
					t.Fatalf("cloud alert %+v; want critical starting at the first hot reading", a)
				}
				return true
			}
		}
		return false
	})

	var alerts []console.Alert
	getJSON(t, "http://"+c.HTTPAddr()+"/api/alerts", &alerts)
	if len(alerts) == 0 || alerts[0].Source != "cloud" || alerts[0].Truck != "T3" {
		t.Fatalf("/api/alerts = %+v", alerts)
	}
	var trucks []console.Truck
	getJSON(t, "http://"+c.HTTPAddr()+"/api/trucks", &trucks)
	if len(trucks) != 1 || trucks[0].ID != "T3" || trucks[0].Coolant == nil || *trucks[0].Coolant != 118 || trucks[0].Severity != "critical" {
		t.Fatalf("/api/trucks = %+v", trucks)
	}
}

// testToken is the console API token of testUsers' operator "alice".
const testToken = "test-token-of-alice"

var testUsers = []auth.User{{Name: "alice", Role: auth.RoleOperator, TokenSHA256: auth.HashToken(testToken)}}

// authed returns a console request carrying alice's API token.
func authed(method, url string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(authed("GET", url, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestBadPayloadsCountedAndAcked(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	good, _ := uplink.Encode(uplink.Batch{Truck: "T4", Readings: series(sensors.WheelSpeed, 1, 5, time.Now(), func(int) float64 { return 50 })})
	wrongTruck, _ := uplink.Encode(uplink.Batch{Truck: "OTHER", Readings: series(sensors.WheelSpeed, 1, 5, time.Now(), func(int) float64 { return 50 })})
	tests := []struct {
		name    string
		topic   string
		payload []byte
	}{
		{"garbage", uplink.Topic("T4", uplink.KindTelemetry), []byte("\x00\xffnot a batch")},
		{"empty", uplink.Topic("T4", uplink.KindAlerts), nil},
		{"truck mismatch", uplink.Topic("T4", uplink.KindTelemetry), wrongTruck},
		{"bad status", uplink.Topic("T4", uplink.KindStatus), []byte("maybe")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			publish(t, cl, tc.topic, tc.payload)
			waitFor(t, "rejection", func() bool { return c.Stats().BadPayloads == uint64(i+1) })
		})
	}
	publish(t, cl, uplink.Topic("T4", uplink.KindTelemetry), good)
	waitFor(t, "good batch after bad ones", func() bool { return c.Stats().Readings == 5 })
}

func TestStatus(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	publish(t, cl, uplink.Topic("T5", uplink.KindStatus), []byte("online"))
	trucks := func() []console.Truck {
		var ts []console.Truck
		getJSON(t, "http://"+c.HTTPAddr()+"/api/trucks", &ts)
		return ts
	}
	waitFor(t, "online", func() bool { ts := trucks(); return len(ts) == 1 && ts[0].Online })
	publish(t, cl, uplink.Topic("T5", uplink.KindStatus), []byte("offline"))
	waitFor(t, "offline", func() bool { ts := trucks(); return len(ts) == 1 && !ts[0].Online })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"plain TCP broker without the explicit flag", func(c *Config) { c.BrokerPlainTCP = false }, false},
		{"broker tls and plain TCP", func(c *Config) {
			c.BrokerTLS = BrokerTLSConfig{CertFile: "b.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, false},
		{"broker tls", func(c *Config) {
			c.BrokerPlainTCP, c.BrokerTLS = false, BrokerTLSConfig{CertFile: "b.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, true},
		{"no data dir", func(c *Config) { c.DataDir = "" }, false},
		{"both brokers", func(c *Config) { c.BrokerURL = "tcp://127.0.0.1:1883" }, false},
		{"external broker", func(c *Config) { c.BrokerListen, c.BrokerURL, c.Ingest = "", "tcp://127.0.0.1:1883", IngestSubscribe }, true},
		{"hook with external broker", func(c *Config) { c.BrokerListen, c.BrokerURL = "", "tcp://127.0.0.1:1883" }, false},
		{"bad ingest", func(c *Config) { c.Ingest = "magic" }, false},
		{"bad broker url", func(c *Config) { c.BrokerListen, c.BrokerURL = "", "127.0.0.1:1883" }, false},
		{"s3 archive", func(c *Config) { c.Archive = "s3://bucket/some/prefix" }, true},
		{"bad archive", func(c *Config) { c.Archive = "/tmp/x" }, false},
		{"negative flush", func(c *Config) { c.FlushInterval = -time.Second }, false},
		{"bad endpoint", func(c *Config) { c.S3.Endpoint = "127.0.0.1:7070" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir, c.BrokerPlainTCP = "/tmp/x", true
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
		})
	}
}

// TestArchiveToS3 runs the cloud with its archive on versitygw and finds
// every reading there once.
func TestArchiveToS3(t *testing.T) {
	endpoint := s3test.Versity(t)
	client := s3test.Client(endpoint)
	s3test.Bucket(t, client, "fleet")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c := startCloud(t, t.TempDir(), func(c *Config) {
		c.Archive = "s3://fleet/tankguard"
		c.S3 = S3Config{Endpoint: endpoint, PathStyle: true, GlacierAfterDays: 30}
	})
	cl := dial(t, c.BrokerAddr(), "sim")
	t0 := time.Now().Add(-2 * time.Hour).UTC()
	rs := series(sensors.CargoTemp, 1, 40, t0, func(i int) float64 { return 15 + float64(i)/10 })
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "S1", Readings: rs[:25]})
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "S1", Readings: rs[20:]})
	st := archive.S3{Client: client, Bucket: "fleet", Prefix: "tankguard"}
	waitFor(t, "readings in S3", func() bool {
		rows, err := archive.ReadReadingsFrom(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, r := range rows {
			seqs = append(seqs, r.Seq)
		}
		slices.Sort(seqs)
		return slices.Equal(seqs, seqRange(1, 40))
	})
	// versitygw answers the lifecycle call with 501: a warning at start,
	// not an archive error (TestLifecycleNotSupportedWarnsOnce).
	if s := c.Stats(); s.ArchiveErrors != 0 {
		t.Errorf("archive errors %d, want 0", s.ArchiveErrors)
	}
}

// TestLateReadingsLandInTheirDay uploads readings measured a day ago and
// finds them in that day's partition, not today's.
func TestLateReadingsLandInTheirDay(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	yesterday := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour).Add(17 * time.Minute)
	publishBatch(t, cl, uplink.KindTelemetry, uplink.Batch{Truck: "L1", Readings: series(sensors.CoolantTemp, 1, 10, yesterday, func(int) float64 { return 80 })})
	want := filepath.Join(c.ArchiveDir(), archive.Partition(archive.DatasetReadings, yesterday.UnixNano()))
	waitFor(t, "yesterday's partition", func() bool {
		keys, _ := archive.Dir{Root: c.ArchiveDir()}.List(context.Background(), archive.DatasetReadings+"/")
		return len(keys) > 0
	})
	keys, _ := archive.Dir{Root: c.ArchiveDir()}.List(context.Background(), archive.DatasetReadings+"/")
	if len(keys) != 1 || filepath.Join(c.ArchiveDir(), filepath.Dir(keys[0])) != want {
		t.Fatalf("objects %q, want one under %s", keys, want)
	}
	rows, err := archive.ReadReadingObject(context.Background(), archive.Dir{Root: c.ArchiveDir()}, keys[0])
	if err != nil || len(rows) != 10 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
}
