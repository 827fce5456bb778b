package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/notify"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

// Config sets the size and the faults of a chaos run.
type Config struct {
	// Trucks is how many trucks (and gateway processes) run.
	Trucks int
	// Duration is how long faults are injected.
	Duration time.Duration
	// KillEvery is the mean interval between gateway SIGKILLs; each killed
	// gateway is restarted 0-1.5 s later.
	KillEvery time.Duration
	// CloudOutage is how long the cloud stays down after its SIGKILL, at
	// 30% of Duration. At 70% it is stopped with SIGTERM and restarted at
	// once.
	CloudOutage time.Duration
	// CloudKills is how many times the cloud is SIGKILLed (at least 1):
	// the first as above, the others between 80 and 95 % of Duration,
	// each down 3 s.
	CloudKills int
	// Hazards is how many trucks get an engine overheat (10 s after their
	// first CAN client connects, 10 s ramp, for HazardFor or until the
	// end).
	Hazards int
	// HazardFor is how long each overheat lasts; 0: until the end. An
	// overheat that ended must leave its incident resolved, with no
	// escalation after the end.
	HazardFor time.Duration
	// Mosquitto, if set, puts Debian's mosquitto (this path) between the
	// gateways and the cloud, with its default configuration apart from
	// the listener (a 1,000-message session queue, no persistence), and
	// SIGKILLs it BrokerKills times (restarted 1 s later). TLS is not
	// used with it.
	Mosquitto   string
	BrokerKills int
	// Seed drives the fault schedule and the simulator.
	Seed int64
	// TLS runs the broker with mutual TLS and per-truck identity: a fleet
	// CA and certificates are made with the tankguard-ca binary, and each
	// gateway connects with its own truck certificate.
	TLS bool
	// BinDir holds the cloud and gateway binaries; WorkDir receives every
	// process's data and logs.
	BinDir, WorkDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Report holds a run's figures and every problem found.
type Report struct {
	Trucks, GatewayKills, CloudKills, CloudRestarts int
	// Sent is what the simulator emitted while a gateway was connected;
	// Synced the records gateways made durable (each queue's numbers,
	// FirstSeq..LastSeq, summed);
	// Archived the readings archived; Duplicates (truck, seq) archived
	// more than once; Missing synced seqs not archived; Foreign archived
	// readings the simulator did not send (in its order).
	Sent, Synced, Archived, ArchivedAlerts, Duplicates, Missing, Foreign int
	// Acked is the records gateways deleted on the cloud's confirmation.
	Acked int
	// Broker is "embedded" or "mosquitto"; BrokerKillsDone the broker
	// SIGKILLs (Mosquitto). IncidentsPerHazard lists the coolant
	// incidents of each overheated truck; OpenAfterHazard counts those
	// not resolved although their overheat ended; EscalatedAfterNormal
	// escalations notified after a truck's overheat ended.
	Broker                                string
	BrokerKillsDone                       int
	IncidentsPerHazard                    []int
	OpenAfterHazard, EscalatedAfterNormal int
	// Notifications received by the webhook, redeliveries of an id seen
	// before, incidents opened, and hazard trucks with an open incident.
	Notifications, Redeliveries, Incidents, HazardsDetected, Hazards int
	Elapsed                                                          time.Duration
	Problems                                                         []string
}

func (r *Report) problem(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// String prints the figures, one per line, then the problems.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CHAOS trucks %d\nCHAOS gateway_kills_survived %d\nCHAOS cloud_sigkills_survived %d\nCHAOS cloud_restarts %d\n",
		r.Trucks, r.GatewayKills, r.CloudKills, r.CloudRestarts)
	fmt.Fprintf(&b, "CHAOS broker %s\nCHAOS broker_sigkills_survived %d\n", r.Broker, r.BrokerKillsDone)
	fmt.Fprintf(&b, "CHAOS readings_sent %d\nCHAOS records_synced %d\nCHAOS records_acked %d\nCHAOS readings_archived %d\nCHAOS edge_alerts_archived %d\n",
		r.Sent, r.Synced, r.Acked, r.Archived, r.ArchivedAlerts)
	fmt.Fprintf(&b, "CHAOS duplicates %d\nCHAOS lost %d\nCHAOS foreign %d\n", r.Duplicates, r.Missing, r.Foreign)
	fmt.Fprintf(&b, "CHAOS incidents_per_hazard %v\nCHAOS incidents_open_after_hazard_ended %d\nCHAOS escalations_after_normal %d\n",
		r.IncidentsPerHazard, r.OpenAfterHazard, r.EscalatedAfterNormal)
	fmt.Fprintf(&b, "CHAOS notifications %d\nCHAOS notification_redeliveries %d\nCHAOS incidents_opened %d\nCHAOS hazards_detected %d/%d\n",
		r.Notifications, r.Redeliveries, r.Incidents, r.HazardsDetected, r.Hazards)
	fmt.Fprintf(&b, "CHAOS elapsed %s\n", r.Elapsed.Round(time.Second))
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "PROBLEM %s\n", p)
	}
	return b.String()
}

// proc is a child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts bin with args (logged) and env (not logged: secrets).
func startProc(logPath, bin string, env []string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to d, then kills. It reports whether the
// process exited cleanly.
func (p *proc) stop(d time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("did not stop within %v", d)
	}
}

// webhook records every notification the cloud delivers.
type webhook struct {
	secret string
	mu     sync.Mutex
	seen   map[string]bool // delivery ids
	notes  []incident.Notification
	redel  int
	badSig int
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	if notify.Verify(w.secret, body, r.Header.Get(notify.HeaderSignature), time.Now(), 0) != nil {
		w.mu.Lock()
		w.badSig++
		w.mu.Unlock()
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var n incident.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[n.ID] {
		w.redel++
		return
	}
	w.seen[n.ID] = true
	w.notes = append(w.notes, n)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Run runs the chaos scenario and checks the outcome. It returns an error
// only when the run itself could not be carried out; what it found wrong
// is in Report.Problems.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	began := time.Now()
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	say := func(format string, a ...any) {
		fmt.Fprintf(logw, "chaos %6.1fs: %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}
	rep := &Report{Trucks: cfg.Trucks, Broker: "embedded"}
	if cfg.Mosquitto != "" {
		rep.Broker, cfg.TLS = "mosquitto", false
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7a6b))
	dir := cfg.WorkDir
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	bin := func(n string) string { return filepath.Join(cfg.BinDir, n) }
	bins := []string{"cloud", "gateway"}
	if cfg.TLS {
		bins = append(bins, "tankguard-ca")
	}
	for _, n := range bins {
		if _, err := os.Stat(bin(n)); err != nil {
			return nil, fmt.Errorf("binary %s: %w (go build -o %s ./cmd/cloud ./cmd/gateway ./cmd/tankguard-ca)", n, err, cfg.BinDir)
		}
	}
	pki := filepath.Join(dir, "pki")
	if cfg.TLS {
		for _, args := range [][]string{{"init"}, {"broker", "-host", "127.0.0.1"}} {
			if out, err := exec.CommandContext(ctx, bin("tankguard-ca"), append(args, "-dir", pki)...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("tankguard-ca %s: %v\n%s", args[0], err, out)
			}
		}
	}

	// Webhook receiver.
	const secret = "chaos-secret"
	hook := &webhook{secret: secret, seen: map[string]bool{}}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hsrv := &http.Server{Handler: hook, ReadHeaderTimeout: 5 * time.Second}
	go hsrv.Serve(hl)
	defer hsrv.Close()

	// Cloud, on fixed ports so that it comes back where gateways look.
	brokerAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cloudDir := filepath.Join(dir, "cloud")
	cloudArgs := []string{"-data", cloudDir,
		"-broker-listen", brokerAddr, "-http", httpAddr, "-flush-interval", "500ms",
		"-webhook", "http://" + hl.Addr().String() + "/", "-log-level", "warn"}
	brokerURL := "tcp://" + brokerAddr
	var mosq *proc
	startMosquitto := func() error {
		mdir := filepath.Join(dir, "mosquitto")
		if err := os.MkdirAll(mdir, 0o777); err != nil {
			return err
		}
		os.Chmod(mdir, 0o777) // started as root it drops to user mosquitto
		_, port, _ := net.SplitHostPort(brokerAddr)
		conf := filepath.Join(mdir, "mosquitto.conf")
		// Mosquitto's defaults (1,000 queued messages per session, no
		// persistence): correctness must not depend on its configuration.
		if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nlog_dest stdout\n"), 0o644); err != nil {
			return err
		}
		p, err := startProc(filepath.Join(dir, "logs", "mosquitto.log"), cfg.Mosquitto, nil, "-c", conf)
		if err != nil {
			return err
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c, err := net.DialTimeout("tcp", brokerAddr, time.Second); err == nil {
				c.Close()
				break
			}
			if !p.running() || time.Now().After(deadline) {
				p.kill()
				return fmt.Errorf("mosquitto did not start (see %s)", filepath.Join(dir, "logs", "mosquitto.log"))
			}
		}
		mosq = p
		return nil
	}
	if cfg.Mosquitto != "" {
		cloudArgs = []string{"-data", cloudDir, "-broker-url", brokerURL, "-http", httpAddr, "-flush-interval", "500ms",
			"-webhook", "http://" + hl.Addr().String() + "/", "-log-level", "warn"}
		if err := startMosquitto(); err != nil {
			return nil, err
		}
		defer func() {
			if mosq != nil && mosq.running() {
				mosq.kill()
			}
		}()
	}
	if cfg.TLS {
		cf := filepath.Join(dir, "cloud.json")
		b, _ := json.Marshal(map[string]any{"data_dir": cloudDir, "broker_tls": map[string]string{
			"cert_file": filepath.Join(pki, "broker.pem"), "key_file": filepath.Join(pki, "broker-key.pem"), "client_ca_file": filepath.Join(pki, "ca.pem")}})
		if err := os.WriteFile(cf, b, 0o644); err != nil {
			return nil, err
		}
		cloudArgs = append(cloudArgs, "-config", cf)
		brokerURL = "ssl://" + brokerAddr
	} else {
		cloudArgs = append(cloudArgs, "-broker-plain-tcp")
	}
	startCloud := func() (*proc, error) {
		p, err := startProc(filepath.Join(dir, "logs", "cloud.log"), bin("cloud"), []string{"TANKGUARD_WEBHOOK_SECRET=" + secret}, cloudArgs...)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
				c.Close()
				return p, nil
			}
			if !p.running() || time.Now().After(deadline) {
				p.kill()
				return nil, fmt.Errorf("cloud did not start: %v (see %s)", p.err, filepath.Join(dir, "logs", "cloud.log"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cloudP, err := startCloud()
	if err != nil {
		return nil, err
	}
	defer func() {
		if cloudP != nil && cloudP.running() {
			cloudP.stop(20 * time.Second)
		}
	}()
	say("cloud up: broker %s", brokerURL)

	// Simulated trucks; the first Hazards overheat.
	warm := true
	sc := firmwaresim.Scenario{Default: firmwaresim.TruckScenario{Warm: &warm}, Trucks: map[string]firmwaresim.TruckScenario{}}
	hazard := map[string]bool{}
	for i := range min(cfg.Hazards, cfg.Trucks) {
		id := fmt.Sprintf("truck-%02d", i+1)
		hazard[id] = true
		sc.Trucks[id] = firmwaresim.TruckScenario{Warm: &warm, Faults: []firmwaresim.Fault{{
			Kind: firmwaresim.FaultOverheat, At: firmwaresim.Duration(10 * time.Second), Ramp: firmwaresim.Duration(10 * time.Second),
			Duration: firmwaresim.Duration(cfg.HazardFor),
		}}}
	}
	rep.Hazards = len(hazard)
	truthPath := filepath.Join(dir, "truth.csv")
	ready := make(chan firmwaresim.Manifest, 1)
	simCtx, simStop := context.WithCancel(ctx)
	defer simStop()
	simDone := make(chan error, 1)
	go func() {
		simDone <- firmwaresim.Run(simCtx, firmwaresim.Config{
			Trucks: cfg.Trucks, NoSerial: true, Scenario: sc, Seed: cfg.Seed, TruthPath: truthPath,
			FaultsPath: filepath.Join(dir, "faults.csv"),
			OnReady:    func(m firmwaresim.Manifest) { ready <- m },
		})
	}()
	var man firmwaresim.Manifest
	select {
	case man = <-ready:
	case err := <-simDone:
		return nil, fmt.Errorf("simulator: %v", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	simRunning := true
	stopSim := func() error {
		if !simRunning {
			return nil
		}
		simRunning = false
		simStop()
		return <-simDone
	}
	defer stopSim()

	// Gateways.
	gws := make([]*proc, len(man.Trucks))
	gwDir := func(i int) string { return filepath.Join(dir, "gw", man.Trucks[i].ID) }
	if cfg.TLS {
		args := []string{"truck", "-dir", pki}
		for _, t := range man.Trucks {
			args = append(args, t.ID)
		}
		if out, err := exec.CommandContext(ctx, bin("tankguard-ca"), args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("tankguard-ca truck: %v\n%s", err, out)
		}
	}
	startGW := func(i int) error {
		t := man.Trucks[i]
		args := []string{"-truck", t.ID, "-data", gwDir(i), "-can", t.CAN, "-broker", brokerURL, "-cab", "off"}
		if cfg.TLS {
			args = append(args, "-tls-cert", filepath.Join(pki, t.ID+".pem"), "-tls-key", filepath.Join(pki, t.ID+"-key.pem"), "-tls-ca", filepath.Join(pki, "ca.pem"))
		}
		p, err := startProc(filepath.Join(dir, "logs", t.ID+".log"), bin("gateway"), nil, args...)
		if err != nil {
			return err
		}
		gws[i] = p
		return nil
	}
	defer func() {
		for _, p := range gws {
			if p != nil && p.running() {
				p.kill()
			}
		}
	}()
	for i := range gws {
		if err := startGW(i); err != nil {
			return nil, err
		}
	}
	say("%d gateways started, %d with an overheat", len(gws), len(hazard))

	// Faults.
	jitter := func(d time.Duration) time.Duration { return time.Duration((0.5 + rng.Float64()) * float64(d)) }
	start := time.Now()
	end := start.Add(cfg.Duration)
	// The first cloud SIGKILL at 30 % keeps it down CloudOutage; further
	// ones (CloudKills) follow at 80-95 %, down 3 s each.
	type cloudKill struct {
		at     time.Time
		outage time.Duration
	}
	cloudKills := []cloudKill{{start.Add(cfg.Duration * 3 / 10), cfg.CloudOutage}}
	for k := 1; k < cfg.CloudKills; k++ {
		cloudKills = append(cloudKills, cloudKill{start.Add(cfg.Duration * time.Duration(80+15*k/cfg.CloudKills) / 100), 3 * time.Second})
	}
	cloudTermAt := start.Add(cfg.Duration * 7 / 10)
	var cloudBackAt time.Time
	var brokerKills []time.Time // Mosquitto SIGKILLs, spread over the run
	for k := range cfg.BrokerKills {
		brokerKills = append(brokerKills, start.Add(cfg.Duration*time.Duration(2*k+1)/time.Duration(2*cfg.BrokerKills)))
	}
	var brokerBackAt time.Time
	nextKill := start.Add(jitter(cfg.KillEvery))
	restartAt := make([]time.Time, len(gws))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for now := time.Now(); now.Before(end); now = time.Now() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if cloudP != nil && len(cloudKills) > 0 && now.After(cloudKills[0].at) {
			cloudP.kill()
			cloudP, cloudBackAt = nil, now.Add(cloudKills[0].outage)
			rep.CloudKills++
			say("cloud SIGKILLed (down for %v)", cloudKills[0].outage)
			cloudKills = cloudKills[1:]
		}
		if cloudP == nil && !cloudBackAt.IsZero() && now.After(cloudBackAt) {
			if cloudP, err = startCloud(); err != nil {
				return nil, err
			}
			cloudBackAt = time.Time{}
			say("cloud restarted after SIGKILL")
		}
		if cloudP != nil && !cloudTermAt.IsZero() && now.After(cloudTermAt) {
			if err := cloudP.stop(30 * time.Second); err != nil {
				rep.problem("cloud did not stop cleanly on SIGTERM: %v", err)
			}
			if cloudP, err = startCloud(); err != nil {
				return nil, err
			}
			cloudTermAt = time.Time{}
			rep.CloudRestarts++
			say("cloud (and broker) restarted cleanly")
		}
		if mosq != nil && len(brokerKills) > 0 && now.After(brokerKills[0]) {
			mosq.kill()
			brokerKills, brokerBackAt = brokerKills[1:], now.Add(time.Second)
			rep.BrokerKillsDone++
			say("mosquitto SIGKILLed")
		}
		if !brokerBackAt.IsZero() && now.After(brokerBackAt) {
			if err := startMosquitto(); err != nil {
				return nil, err
			}
			brokerBackAt = time.Time{}
			say("mosquitto restarted (empty: no persistence)")
		}
		if now.After(nextKill) {
			var alive []int
			for i, p := range gws {
				if p.running() {
					alive = append(alive, i)
				}
			}
			if len(alive) > 0 {
				i := alive[rng.IntN(len(alive))]
				gws[i].kill()
				rep.GatewayKills++
				restartAt[i] = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}
			nextKill = now.Add(jitter(cfg.KillEvery))
		}
		for i, at := range restartAt {
			if !at.IsZero() && now.After(at) {
				if err := startGW(i); err != nil {
					return nil, err
				}
				restartAt[i] = time.Time{}
			}
		}
	}
	// Everything up again.
	if mosq != nil && !mosq.running() {
		if err := startMosquitto(); err != nil {
			return nil, err
		}
	}
	if cloudP == nil {
		if cloudP, err = startCloud(); err != nil {
			return nil, err
		}
	}
	for i, p := range gws {
		if !p.running() {
			if err := startGW(i); err != nil {
				return nil, err
			}
		}
	}
	say("faults over: %d gateway kills, %d cloud kills, %d cloud restarts; draining", rep.GatewayKills, rep.CloudKills, rep.CloudRestarts)
	// Let reconnect backoffs run out (they grow to about the outage, at
	// most 30 s) with data flowing, then stop the trucks.
	if err := sleep(ctx, min(cfg.CloudOutage, 30*time.Second)+10*time.Second); err != nil {
		return nil, err
	}
	if err := stopSim(); err != nil && !errors.Is(err, context.Canceled) {
		rep.problem("simulator: %v", err)
	}
	simStopped := time.Now()
	archiveDir := filepath.Join(cloudDir, "archive")
	// With Mosquitto, quiet for longer than a gateway's confirm timeout
	// (30 s): a batch the broker dropped is sent again only after it. The
	// embedded broker drops nothing it acknowledged; a lost confirmation
	// is resent after a reconnect, which a cloud restart forces.
	quiet := 10 * time.Second
	if cfg.Mosquitto != "" {
		quiet = 40 * time.Second
	}
	if err := waitStable(ctx, archiveDir, 150*time.Second, quiet); err != nil {
		return nil, err
	}
	// Stop the gateways cleanly; their queues then say what was synced.
	for i, p := range gws {
		if err := p.stop(30 * time.Second); err != nil {
			rep.problem("%s: gateway did not stop cleanly: %v", man.Trucks[i].ID, err)
		}
	}
	last := map[string]seqRange{}
	log := slog.New(slog.DiscardHandler)
	for i, t := range man.Trucks {
		q, err := buffer.Open(filepath.Join(gwDir(i), "queue.db"), buffer.DefaultOptions(), log)
		if err != nil {
			return nil, fmt.Errorf("%s queue: %w", t.ID, err)
		}
		st := q.Stats()
		q.Close()
		last[t.ID] = seqRange{st.FirstSeq, st.LastSeq}
		rep.Synced += int(st.LastSeq - st.FirstSeq + 1)
		rep.Acked += int(st.LastSeq-st.FirstSeq+1) - (st.Readings + st.Alerts + st.Acks)
		if st.Readings+st.Alerts+st.Acks > 0 {
			rep.problem("%s: %d readings, %d alerts, %d acks still queued after the drain", t.ID, st.Readings, st.Alerts, st.Acks)
		}
		if st.DroppedReadings+st.DroppedAlerts+st.DroppedAcks > 0 {
			rep.problem("%s: queue evicted records (%+v); the checks below assume none", t.ID, st)
		}
	}
	// Give the cloud time to archive the last batches, then check.
	if err := waitStable(ctx, archiveDir, 30*time.Second, 5*time.Second); err != nil {
		return nil, err
	}
	if err := checkArchive(rep, archiveDir, truthPath, last); err != nil {
		return nil, err
	}
	checkIncidents(rep, hook, man, hazard, cfg.HazardFor > 0, simStopped)
	rep.Elapsed = time.Since(began)
	say("done")
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitStable waits until the archive's reading count has not changed for
// quiet (or limit passes).
func waitStable(ctx context.Context, dir string, limit, quiet time.Duration) error {
	deadline := time.Now().Add(limit)
	prev, same := -1, 0
	for time.Now().Before(deadline) {
		rs, err := archive.ReadReadings(dir)
		n := len(rs)
		if err != nil {
			n = -1
		}
		if n == prev && n >= 0 {
			same++
			if time.Duration(same)*time.Second >= quiet {
				return nil
			}
		} else {
			same = 0
		}
		prev = n
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}

// seqRange is the sequence numbers a gateway's queue assigned.
type seqRange struct{ first, last uint64 }

// checkArchive compares the archive with what the gateways synced and what
// the simulator sent.
func checkArchive(rep *Report, dir, truthPath string, last map[string]seqRange) error {
	readings, err := archive.ReadReadings(dir)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	alerts, err := archive.ReadAlerts(dir)
	if err != nil {
		return fmt.Errorf("read archive alerts: %w", err)
	}
	acks, err := archive.ReadAcks(dir)
	if err != nil {
		return fmt.Errorf("read archive acks: %w", err)
	}
	rep.Archived = len(readings)
	seen := map[string]map[int64]int{}
	count := func(truck string, seq int64) {
		if seen[truck] == nil {
			seen[truck] = map[int64]int{}
		}
		seen[truck][seq]++
	}
	for _, r := range readings {
		count(r.Truck, r.Seq)
	}
	for _, a := range alerts {
		if a.Source == archive.SourceEdge {
			rep.ArchivedAlerts++
			count(a.Truck, a.Seq)
		}
	}
	for _, a := range acks {
		count(a.Truck, a.Seq)
	}
	trucks := make([]string, 0, len(last))
	for t := range last {
		trucks = append(trucks, t)
	}
	sort.Strings(trucks)
	for _, t := range trucks {
		first, n := last[t].first, last[t].last
		var dups, missing []int64
		for s, c := range seen[t] {
			if c > 1 {
				dups = append(dups, s)
				rep.Duplicates += c - 1
			}
			if uint64(s) < first || uint64(s) > n {
				rep.problem("%s: archived seq %d outside the synced %d..%d", t, s, first, n)
			}
		}
		for s := int64(first); s <= int64(n); s++ {
			if seen[t][s] == 0 {
				missing = append(missing, s)
			}
		}
		rep.Missing += len(missing)
		if len(dups) > 0 {
			slices.Sort(dups)
			rep.problem("%s: %d seqs archived more than once, first %d", t, len(dups), dups[0])
		}
		if len(missing) > 0 {
			rep.problem("%s: %d of seqs %d..%d synced but not archived, first %d", t, len(missing), first, n, missing[0])
		}
	}

	f, err := os.Open(truthPath)
	if err != nil {
		return err
	}
	truth, err := firmwaresim.ReadTruth(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	rep.Sent = len(truth)
	type key struct{ truck, signal string }
	sent := map[key][]float64{}
	for _, r := range truth {
		k := key{r.Truck, r.Signal.String()}
		sent[k] = append(sent[k], r.Value)
	}
	sort.Slice(readings, func(i, j int) bool { return readings[i].Seq < readings[j].Seq })
	next := map[key]int{}
	reported := map[key]bool{}
	for _, r := range readings {
		k := key{r.Truck, r.Signal}
		vals, i := sent[k], next[k]
		for i < len(vals) && vals[i] != r.Value {
			i++
		}
		if i == len(vals) {
			rep.Foreign++
			if !reported[k] {
				reported[k] = true
				rep.problem("%s/%s: archived value %v (seq %d) is not among what the simulator sent after the previous one", r.Truck, r.Signal, r.Value, r.Seq)
			}
			continue
		}
		next[k] = i + 1
	}
	return nil
}

// checkIncidents compares the notified incidents with the injected faults.
// Missing-data incidents opened after simStopped are expected: the
// trucks did go silent while the run waited for the last confirmations.
func checkIncidents(rep *Report, hook *webhook, man firmwaresim.Manifest, hazard map[string]bool, hazardsEnd bool, simStopped time.Time) {
	hook.mu.Lock()
	defer hook.mu.Unlock()
	rep.Notifications, rep.Redeliveries = len(hook.notes), hook.redel
	if hook.badSig > 0 {
		rep.problem("%d webhook deliveries with a bad HMAC signature", hook.badSig)
	}
	opened := map[string]int{}                   // incident id -> distinct "opened" notifications
	latest := map[string]incident.Notification{} // incident id -> newest notification
	escalations := map[string][]time.Time{}      // incident id -> when escalations were notified
	resolved := map[string]time.Time{}           // incident id -> when its resolution was notified
	for _, n := range hook.notes {
		id := n.Incident.ID
		for _, e := range n.Events {
			switch e {
			case incident.EventOpened:
				opened[id]++
			case incident.EventEscalated:
				escalations[id] = append(escalations[id], n.At)
			case incident.EventResolved:
				if t, ok := resolved[id]; !ok || n.At.Before(t) {
					resolved[id] = n.At
				}
			}
		}
		if old, ok := latest[id]; !ok || !n.At.Before(old.At) {
			latest[id] = n
		}
	}
	rep.Incidents = len(opened)
	for id, c := range opened {
		if c > 1 {
			rep.problem("incident %s: opening notified %d times", id, c)
		}
	}
	perTruck := map[string][]incident.Summary{}
	for _, n := range latest {
		perTruck[n.Incident.Truck] = append(perTruck[n.Incident.Truck], n.Incident)
	}
	for _, t := range man.Trucks {
		var coolant []incident.Summary
		for _, s := range perTruck[t.ID] {
			switch {
			case s.Kind == "missing" && !s.OpenedAt.Before(simStopped):
				// the simulator stopped: the sensors did go silent
			case s.Signal == "coolant_temp" && hazard[t.ID]:
				coolant = append(coolant, s)
			case s.Signal == "":
				rep.problem("%s: %s incident %s (state %s) although the truck was never away long", t.ID, s.Kind, s.ID, s.State)
			default:
				rep.problem("%s: unexpected %s incident on %s (state %s); no fault was injected there", t.ID, s.Kind, s.Signal, s.State)
			}
		}
		if !hazard[t.ID] {
			continue
		}
		if len(coolant) == 0 {
			rep.problem("%s: overheat injected but no coolant incident notified", t.ID)
			continue
		}
		rep.HazardsDetected++
		rep.IncidentsPerHazard = append(rep.IncidentsPerHazard, len(coolant))
		if len(coolant) > 1 {
			ids := make([]string, len(coolant))
			for i, s := range coolant {
				ids[i] = s.ID + "(" + strings.Join(s.Sources, "+") + ")"
			}
			slices.Sort(ids)
			rep.problem("%s: one overheat notified as %d incidents: %s", t.ID, len(coolant), strings.Join(ids, " "))
		}
		for _, s := range coolant {
			switch {
			case hazardsEnd && s.State != incident.StateResolved:
				rep.OpenAfterHazard++
				rep.problem("%s: overheat ended but its incident %s is still %s", t.ID, s.ID, s.State)
			case !hazardsEnd && s.State == incident.StateResolved:
				rep.problem("%s: overheat lasted to the end but its incident %s is resolved", t.ID, s.ID)
			}
			if hazardsEnd {
				for _, n := range escalations[s.ID] {
					if resolvedAt, ok := resolved[s.ID]; ok && n.After(resolvedAt) {
						rep.EscalatedAfterNormal++
						rep.problem("%s: incident %s escalated at %s, after it was resolved at %s", t.ID, s.ID, n.Format(time.RFC3339), resolvedAt.Format(time.RFC3339))
					}
				}
			}
		}
	}
}
