// Command load is tankguard's load test: firmware-sim with many trucks (a
// process), one gateway per truck (all in this process: gateway.New per
// truck, each with its own queue, MQTT session and detector) and the cloud
// with its embedded broker (a process) delivering incident notifications
// to a webhook served here. A few trucks overheat. It reports readings/s
// end to end, alert-to-notification latency and the CPU and RSS of each
// process, then stops everything by itself.
//
//	make load                                  (1000 trucks, 2 min window)
//	bin/load -trucks 1000 -duration 2m -alerts 20
//
// Readings/s end to end is the rise of the cloud's accepted (new,
// de-duplicated) readings counter, scraped from its /metrics, over the
// measurement window, which starts once every gateway is online. Alert
// latency runs from the instant of the reading with which a gateway's
// detector raised the overheat to the arrival here of the cloud's
// "opened" webhook notification for it: gateway detect, queue, uplink,
// broker, ingest, incident, notifier (group wait) and the HTTP POST.
// Gateway queues live on -gw-dir (tmpfs by default: on trucks each has
// its own disk, here one disk would serialise 1000 trucks' fsyncs); the
// cloud's data is on -var (disk).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
	"github.com/abc4logistics/tankguard/gateway"
	"github.com/abc4logistics/tankguard/sensors"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type options struct {
	trucks   int
	duration time.Duration
	alerts   int
	binDir   string
	varDir   string
	gwDir    string
	keep     bool
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.trucks, "trucks", 1000, "simulated trucks (one gateway each)")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "measurement window, after every gateway is online")
	fs.IntVar(&o.alerts, "alerts", 20, "trucks whose engine overheats during the window")
	fs.StringVar(&o.binDir, "bin", "", "directory of the cloud and firmware-sim binaries (default: beside this one)")
	fs.StringVar(&o.varDir, "var", "", "directory for the cloud's data and the sim's manifest (default: a temporary directory)")
	fs.StringVar(&o.gwDir, "gw-dir", "", "directory for the gateways' queues (default: a temporary directory on /dev/shm if present)")
	fs.BoolVar(&o.keep, "keep", false, "keep the data directories")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.trucks < 1 || o.alerts < 0 || o.alerts > o.trucks || o.duration < 10*time.Second {
		return fmt.Errorf("want -trucks >= 1, 0 <= -alerts <= -trucks, -duration >= 10s")
	}
	if offs := overheatOffsets(o.alerts, o.duration); len(offs) > 0 && offs[len(offs)-1]+overheatNotice > o.duration {
		return fmt.Errorf("-duration %v is too short for -alerts %d: the last overheat starts %v after its gateway connects and takes about %v to be raised and notified, so no alert would land in the window; use -duration %v or more, or -alerts 0",
			o.duration, o.alerts, offs[len(offs)-1], overheatNotice, minDuration(o.alerts))
	}
	if o.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.binDir = filepath.Dir(exe)
	}
	for _, b := range []string{"cloud", "firmware-sim"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return fmt.Errorf("%s not built (run make build): %w", b, err)
		}
	}
	var err error
	if o.varDir == "" {
		if o.varDir, err = os.MkdirTemp("", "tankguard-load-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.varDir)
		}
	}
	if o.gwDir == "" {
		base := ""
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		if o.gwDir, err = os.MkdirTemp(base, "tankguard-load-gw-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.gwDir)
		}
	}
	// Stop by itself: the window plus generous start and stop time.
	ctx, stop := stopContext(context.Background(), o.duration+5*time.Minute)
	defer stop()
	return loadTest(ctx, o, stdout)
}

// stopContext returns a context ended by SIGINT/SIGTERM or after limit.
func stopContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	sctx, sstop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return sctx, func() { sstop(); cancel() }
}

// Overheats start at overheatFirst after their gateway connects, spread
// over the first third of the window; each takes up to overheatNotice
// from its start to the gateway's alert and the cloud's notification
// (the detector raises firmware-sim's overheat within 19 s of its start;
// notifications take a few seconds at 1,000 trucks).
const (
	overheatFirst  = 45 * time.Second
	overheatNotice = 30 * time.Second
)

// overheatOffsets returns when each of n overheats starts, counted from
// its gateway connecting, in a window of d.
func overheatOffsets(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for k := range out {
		out[k] = overheatFirst + time.Duration(k)*(d/3)/time.Duration(n)
	}
	return out
}

// minDuration is the shortest window in which every one of n overheats
// is raised and notified, rounded up to 10 s.
func minDuration(n int) time.Duration {
	d := 10 * time.Second
	for {
		offs := overheatOffsets(n, d)
		if len(offs) == 0 || offs[len(offs)-1]+overheatNotice <= d {
			return d
		}
		d += 10 * time.Second
	}
}

// truckID is firmware-sim's id for truck i (1-based) of n.
func truckID(i, n int) string {
	w := max(2, len(strconv.Itoa(n)))
	return fmt.Sprintf("%s%0*d", firmwaresim.DefaultIDPrefix, w, i)
}

func loadTest(ctx context.Context, o options, out io.Writer) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	say := func(format string, a ...any) { fmt.Fprintf(out, "load: "+format+"\n", a...) }

	// Webhook receiver: the cloud's notifications arrive here.
	hooks := newWebhook()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hsrv := &http.Server{Handler: hooks, ReadHeaderTimeout: 10 * time.Second}
	go hsrv.Serve(hl)
	defer hsrv.Close()

	// The cloud, with its embedded broker.
	// /metrics needs credentials like every cloud endpoint: a viewer with
	// an API token, made for this run.
	usersFile := filepath.Join(o.varDir, "load-users.json")
	if err := writeMetricsUser(usersFile); err != nil {
		return err
	}
	cloudP, err := startProc(filepath.Join(o.binDir, "cloud"), "-data", filepath.Join(o.varDir, "cloud"),
		"-broker-listen", "127.0.0.1:0", "-broker-plain-tcp", "-http", "127.0.0.1:0", "-log-level", "error", "-users", usersFile,
		"-webhook", "http://"+hl.Addr().String()+"/hook", "-webhook-secret", "load-test")
	if err != nil {
		return err
	}
	defer cloudP.stop()
	var consoleURL, brokerAddr string
	if err := cloudP.waitLines(ctx, 60*time.Second, func(l string) bool {
		if v, ok := strings.CutPrefix(l, "console: "); ok {
			consoleURL = strings.TrimSuffix(v, "/")
		}
		if v, ok := strings.CutPrefix(l, "broker: "); ok {
			brokerAddr = v
		}
		return consoleURL != "" && brokerAddr != ""
	}); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	say("cloud ready: broker %s, metrics %s/metrics (pid %d)", brokerAddr, consoleURL, cloudP.pid())

	// The simulator, with overheats spread over the first part of the
	// window (offsets count from each truck's gateway connecting).
	manifest := filepath.Join(o.varDir, "manifest.json")
	simArgs := []string{"-trucks", strconv.Itoa(o.trucks), "-warm", "-manifest", manifest, "-print-manifest=false"}
	hot := map[string]bool{}
	for k, at := range overheatOffsets(o.alerts, o.duration) {
		i := 1 + k*o.trucks/max(o.alerts, 1)
		id := truckID(i, o.trucks)
		hot[id] = true
		simArgs = append(simArgs, "-overheat", fmt.Sprintf("%s@%s", id, at))
	}
	simP, err := startProc(filepath.Join(o.binDir, "firmware-sim"), simArgs...)
	if err != nil {
		return err
	}
	defer simP.stop()
	m, err := waitManifest(ctx, manifest, o.trucks, simP)
	if err != nil {
		return err
	}
	for id := range hot {
		if !slices.ContainsFunc(m.Trucks, func(t firmwaresim.ManifestTruck) bool { return t.ID == id }) {
			return fmt.Errorf("overheat truck %s not in the manifest", id)
		}
	}
	say("firmware-sim ready: %d trucks (pid %d)", len(m.Trucks), simP.pid())

	// One gateway per truck, in this process.
	var gws []*gateway.Gateway
	for _, t := range m.Trucks {
		cfg := gateway.DefaultConfig()
		cfg.Truck = t.ID
		cfg.DataDir = filepath.Join(o.gwDir, t.ID)
		cfg.CAN = []string{t.CAN}
		if t.Serial != "" {
			cfg.Serial = []string{t.Serial}
		}
		cfg.Uplink.BrokerURL = "tcp://" + brokerAddr
		cfg.Cab.Listen = gateway.CabOff
		g, err := gateway.New(cfg, log) // it scopes its lines with the truck
		if err != nil {
			return err
		}
		gws = append(gws, g)
	}
	metrics := gateway.NewMetrics(gws...)
	gctx, gstop := context.WithCancel(ctx)
	grp, gctx := errgroup.WithContext(gctx)
	for _, g := range gws {
		grp.Go(func() error { return g.Run(gctx) })
	}
	gwStopped := false
	stopGateways := func() error {
		if gwStopped {
			return nil
		}
		gwStopped = true
		gstop()
		return grp.Wait()
	}
	defer stopGateways()

	started := time.Now()
	for {
		online := 0
		for _, g := range gws {
			if g.Uplink().Online {
				online++
			}
		}
		if online == len(gws) {
			break
		}
		if time.Since(started) > 2*time.Minute {
			return fmt.Errorf("only %d of %d gateways online after 2 min", online, len(gws))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	say("%d gateways online after %.1f s (in this process, pid %d)", len(gws), time.Since(started).Seconds(), os.Getpid())

	// Measurement window.
	procs := []*watched{{name: "cloud", pid: cloudP.pid()}, {name: "firmware-sim", pid: simP.pid()},
		{name: fmt.Sprintf("gateways x%d (load)", len(gws)), pid: os.Getpid()}}
	for _, p := range procs {
		if err := p.begin(); err != nil {
			return err
		}
	}
	cloud0, err := scrape(consoleURL + "/metrics")
	if err != nil {
		return err
	}
	gw0 := gatewayTotals(metrics)
	load0 := loadAvg()
	t0 := time.Now()
	say("measuring for %s ...", o.duration)
	tick := time.NewTicker(time.Second)
	for time.Since(t0) < o.duration {
		select {
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		case <-tick.C:
		}
		for _, p := range procs {
			p.sample()
		}
	}
	tick.Stop()
	cloud1, err := scrape(consoleURL + "/metrics")
	if err != nil {
		return err
	}
	gw1 := gatewayTotals(metrics)
	window := time.Since(t0).Seconds()
	for _, p := range procs {
		if err := p.end(); err != nil {
			return err
		}
	}

	// Alerts: wait a little for notifications still in flight.
	edge := map[string]detect.Transition{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		edge = raisedCoolant(gws, hot)
		if hooks.openedFor(edge) == len(edge) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	lat, toCloud, toHook := hooks.latencies(edge)

	// Report.
	machine := fmt.Sprintf("%d CPUs, %s, %s", runtime.NumCPU(), cpuModel(), runtime.Version())
	say("")
	fmt.Fprintf(out, "LOAD trucks %d, window %.0f s, machine: %s; load average %s at start, %s at end\n", len(gws), window, machine, load0, loadAvg())
	fmt.Fprintf(out, "LOAD readings_per_s_end_to_end %.0f (cloud: new readings accepted)\n", (cloud1["tankguard_cloud_readings_total"]-cloud0["tankguard_cloud_readings_total"])/window)
	fmt.Fprintf(out, "LOAD readings_per_s_gateways %.0f (decoded by the gateways)\n", (gw1.readings-gw0.readings)/window)
	rate := func(k string) float64 { return (cloud1[k] - cloud0[k]) / window }
	fmt.Fprintf(out, "LOAD cloud messages/s %.1f, ingest commits/s %.1f, archive rows/s %.0f\n",
		rate(`tankguard_cloud_messages_total{lane="data"}`), rate("tankguard_cloud_ingest_commits_total"), rate("tankguard_cloud_archive_rows_total"))
	fmt.Fprintf(out, "LOAD cloud_duplicates_per_s %.1f, cloud_rejected_payloads %.0f\n",
		(cloud1[`tankguard_cloud_rejected_total{cause="duplicate_reading"}`]-cloud0[`tankguard_cloud_rejected_total{cause="duplicate_reading"}`])/window,
		cloud1[`tankguard_cloud_rejected_total{cause="bad_payload"}`])
	fmt.Fprintf(out, "LOAD gateway_backlog_at_end %.0f readings (oldest unsent %.1f s; uplink batches every %s)\n",
		gw1.backlog, gw1.oldest, gateway.DefaultConfig().Uplink.BatchDelay)
	fmt.Fprintf(out, "LOAD alerts injected %d, raised by gateways %d, opened notifications %d, all notifications %d\n",
		len(hot), len(edge), len(lat), hooks.count())
	if len(lat) > 0 {
		fmt.Fprintf(out, "LOAD alert_to_notification_ms p50 %.0f p99 %.0f max %.0f (n=%d)\n",
			percentile(lat, 50), percentile(lat, 99), percentile(lat, 100), len(lat))
		fmt.Fprintf(out, "LOAD   of which alert_to_incident_opened_ms p50 %.0f p99 %.0f, incident_opened_to_webhook_ms p50 %.0f p99 %.0f\n",
			percentile(toCloud, 50), percentile(toCloud, 99), percentile(toHook, 50), percentile(toHook, 99))
	}
	fmt.Fprintf(out, "LOAD %-24s %10s %12s %12s\n", "process", "cpu_%core", "rss_mb_med", "rss_mb_peak")
	for _, p := range procs {
		fmt.Fprintf(out, "LOAD %-24s %10.1f %12.1f %12.1f\n", p.name, p.cpuPct, median(p.rss), p.peak)
	}

	// Stop: gateways first (they flush), then the sim, then the cloud.
	if err := stopGateways(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("gateways: %w", err)
	}
	simP.stop()
	cloudP.stop()
	return nil
}

// raisedCoolant returns, per overheating truck, the gateway's first raised
// coolant alert.
func raisedCoolant(gws []*gateway.Gateway, hot map[string]bool) map[string]detect.Transition {
	out := map[string]detect.Transition{}
	for _, g := range gws {
		for _, a := range g.Alerts() {
			if !hot[a.Truck] || a.Signal != sensors.CoolantTemp || a.Phase != detect.Raised {
				continue
			}
			if _, ok := out[a.Truck]; !ok {
				out[a.Truck] = a
			}
		}
	}
	return out
}

// gwTotals sums the gateways' metrics.
type gwTotals struct{ readings, backlog, oldest float64 }

func gatewayTotals(m *gateway.Metrics) gwTotals {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	var t gwTotals
	if err != nil {
		return t
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch mf.GetName() {
			case "tankguard_gateway_readings_total":
				t.readings += mt.GetCounter().GetValue()
			case "tankguard_gateway_queue_records":
				t.backlog += mt.GetGauge().GetValue()
			case "tankguard_gateway_queue_oldest_unsent_age_seconds":
				t.oldest = max(t.oldest, mt.GetGauge().GetValue())
			}
		}
	}
	return t
}

// scrape reads a Prometheus text exposition into series -> value, keyed
// by the series as written (name{labels}).
// metricsToken is the API token of the load test's metrics viewer.
var metricsToken = auth.NewToken()

func writeMetricsUser(path string) error {
	body, err := json.Marshal(auth.UsersFile{Users: []auth.User{
		{Name: "load-metrics", Role: auth.RoleViewer, TokenSHA256: auth.HashToken(metricsToken)}}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o600)
}

func scrape(url string) (map[string]float64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseExposition(resp.Body)
}

func parseExposition(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// webhook records the cloud's notifications.
type webhook struct {
	mu       sync.Mutex
	opened   map[string]time.Time // truck -> arrival of its first coolant "opened" notification
	openedAt map[string]time.Time // truck -> when the cloud opened that incident
	n        int
}

func newWebhook() *webhook {
	return &webhook{opened: map[string]time.Time{}, openedAt: map[string]time.Time{}}
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var n incident.Notification
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&n); err != nil {
		http.Error(w, "bad notification: "+err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.n++
	if slices.Contains(n.Events, incident.EventOpened) && n.Incident.Signal == sensors.CoolantTemp.String() {
		if _, ok := h.opened[n.Incident.Truck]; !ok {
			h.opened[n.Incident.Truck] = at
			h.openedAt[n.Incident.Truck] = n.Incident.OpenedAt
		}
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *webhook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *webhook) openedFor(edge map[string]detect.Transition) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for truck := range edge {
		if _, ok := h.opened[truck]; ok {
			n++
		}
	}
	return n
}

// latencies returns, in ms, for every truck with both an edge alert and
// a notification: notification arrival minus the gateway's raising
// reading (total), split at the moment the cloud opened the incident
// (toCloud: detect, queue, uplink, broker, ingest; toHook: incident,
// notifier group wait, HTTP POST).
func (h *webhook) latencies(edge map[string]detect.Transition) (total, toCloud, toHook []float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for truck, a := range edge {
		if at, ok := h.opened[truck]; ok {
			total = append(total, float64(at.UnixNano()-a.Time)/1e6)
			if op := h.openedAt[truck]; !op.IsZero() {
				toCloud = append(toCloud, float64(op.UnixNano()-a.Time)/1e6)
				toHook = append(toHook, float64(at.Sub(op))/1e6)
			}
		}
	}
	return total, toCloud, toHook
}

func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func median(v []float64) float64 { return percentile(v, 50) }

// loadAvg is the 1-minute load average, for context: other work on the
// machine shows up in the latencies.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// waitManifest waits for the simulator's manifest with n trucks.
func waitManifest(ctx context.Context, path string, n int, p *proc) (firmwaresim.Manifest, error) {
	var m firmwaresim.Manifest
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &m) == nil && len(m.Trucks) == n {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-p.done:
			return m, fmt.Errorf("firmware-sim exited: %v\n%s", p.err, p.tail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return m, errors.New("firmware-sim: no manifest after 2 min")
		}
	}
}

// proc is a child process whose stdout lines are kept for waitLines and
// whose stderr goes to ours.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error
	mu    sync.Mutex
	last  bytes.Buffer
}

func startProc(bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	// Own process group (a Ctrl-C reaches load, which stops the children
	// in order); Pdeathsig ends them if load dies without stopping them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stderr = &tailWriter{p: p}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// tailWriter forwards a child's stderr and keeps its last few KB.
type tailWriter struct{ p *proc }

func (w *tailWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	w.p.last.Write(b)
	if w.p.last.Len() > 8<<10 {
		rest := w.p.last.Bytes()[w.p.last.Len()-4<<10:]
		w.p.last = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	w.p.mu.Unlock()
	return os.Stderr.Write(b)
}

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.String()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) waitLines(ctx context.Context, limit time.Duration, done func(string) bool) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case l := <-p.lines:
			if done(l) {
				return nil
			}
		case <-p.done:
			return fmt.Errorf("exited: %v\n%s", p.err, p.tail())
		case <-t.C:
			return fmt.Errorf("not ready after %s", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop sends SIGTERM and waits up to 20 s before SIGKILL. Safe to call
// twice.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
