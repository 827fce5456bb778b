// Command demo runs the whole tankguard system on this machine, on
// embedded defaults: the cloud (embedded MQTT broker, local archive,
// console), firmware-sim with K trucks (one overheats about a minute in)
// and one gateway process per truck, each with its own data directory
// under ./var/. It prints the console and cab URLs; Ctrl-C stops
// everything cleanly, gateways first so they flush their queues.
//
// Each gateway reaches the broker through its own link, which stands for
// the truck's mobile coverage. Commands typed on the terminal take one
// truck out of coverage and back ("offline truck-03", "online truck-03"),
// or stop and start the whole cloud ("cloud stop", "cloud start"); the
// demo keeps running meanwhile, as the trucks do.
//
// The broker is mutual TLS, as in production: at start the demo makes a
// fleet CA in ./var/pki with tankguard-ca (once; it is kept), a broker
// certificate and one client certificate per truck, and the cloud enforces
// ./var/pki/crl.pem (tankguard-ca revoke). -broker-plain-tcp runs it on
// plain TCP instead, with a warning at every start.
//
//	make demo            (builds, then runs bin/demo)
//	bin/demo -trucks 5 -overheat truck-03@45s -var ./var
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
	firmwaresim "github.com/abc4logistics/tankguard/firmware-sim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		trucks   = flag.Int("trucks", 5, "number of simulated trucks")
		overheat = flag.String("overheat", "truck-03@45s", "engine overheat to inject: TRUCK@OFFSET after its gateway connects (empty: none; the default goes to the last truck when there are fewer than 3)")
		varDir   = flag.String("var", "./var", "directory for every process's data")
		binDir   = flag.String("bin", "", "directory of the cloud, gateway and firmware-sim binaries (default: beside this one)")
		console  = flag.String("console", "127.0.0.1:8080", "console listen address (a free port is used if busy)")
		broker   = flag.String("broker", "127.0.0.1:1883", "embedded broker listen address (a free port is used if busy)")
		cabBase  = flag.Int("cab-port", 8081, "first cab display port; truck N gets cab-port+N-1 (free ports if busy)")
		plain    = flag.Bool("broker-plain-tcp", false, "run the broker on plain TCP without mutual TLS (INSECURE: anyone who reaches it may publish as any truck)")
	)
	flag.Parse()
	if *trucks < 1 || *trucks > 99 {
		return fmt.Errorf("-trucks %d: want 1..99", *trucks)
	}
	if *overheat == "truck-03@45s" && *trucks < 3 {
		// The default fault goes to a truck that exists (firmware-sim
		// refuses one naming a truck it does not run).
		*overheat = fmt.Sprintf("truck-%02d@45s", *trucks)
	}
	if *binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		*binDir = filepath.Dir(exe)
	}
	bin := func(name string) string { return filepath.Join(*binDir, name) }
	for _, b := range []string{"cloud", "gateway", "firmware-sim", "tankguard-ca"} {
		if _, err := os.Stat(bin(b)); err != nil {
			return fmt.Errorf("%s not built (run make demo): %w", b, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A fresh simulation every run; gateway queues and the cloud's data
	// persist across runs like on a real truck.
	simDir := filepath.Join(*varDir, "sim")
	if err := os.RemoveAll(simDir); err != nil {
		return err
	}
	if err := os.MkdirAll(simDir, 0o755); err != nil {
		return err
	}
	consoleAddr, brokerAddr := pickAddr(*console), pickAddr(*broker)
	out := os.Stdout
	d := &demo{out: out, links: map[string]*link{}, died: make(chan *proc, 2**trucks+4)}
	defer d.stopAll()

	// Console users for this run: a fresh random password, shown below.
	usersFile := filepath.Join(*varDir, "demo-users.json")
	password, err := writeDemoUsers(usersFile)
	if err != nil {
		return err
	}
	pki := filepath.Join(*varDir, "pki")
	if *plain {
		fmt.Fprintln(out, "demo: WARNING: -broker-plain-tcp: the broker runs on plain TCP; anyone who reaches", brokerAddr, "may publish as any truck")
	} else if err := makePKI(ctx, bin("tankguard-ca"), pki, brokerAddr); err != nil {
		return err
	}
	d.cloudBin = bin("cloud")
	d.cloudArgs = cloudArgs(*varDir, pki, brokerAddr, consoleAddr, usersFile, *plain)
	cloudP, err := start("cloud", out, d.cloudBin, d.cloudArgs...)
	if err != nil {
		return err
	}
	d.add(cloudP)
	// The console listens once the cloud is ready (probing the broker
	// would make it log a client that hung up before CONNECT).
	if err := waitListen(ctx, consoleAddr, cloudP); err != nil {
		return fmt.Errorf("cloud console: %w", err)
	}

	manifest := filepath.Join(simDir, "manifest.json")
	simArgs := []string{"-trucks", strconv.Itoa(*trucks), "-warm", "-manifest", manifest,
		"-truth", filepath.Join(simDir, "truth.csv"), "-print-manifest=false"}
	if *overheat != "" {
		simArgs = append(simArgs, "-overheat", *overheat)
	}
	simP, err := start("sim", out, bin("firmware-sim"), simArgs...)
	if err != nil {
		return err
	}
	d.add(simP)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = waitFile(wctx, manifest)
	cancel()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	var m firmwaresim.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("sim manifest: %w", err)
	}

	if !*plain {
		var ids []string
		for _, t := range m.Trucks {
			ids = append(ids, t.ID)
		}
		if err := truckCerts(ctx, bin("tankguard-ca"), pki, ids); err != nil {
			return err
		}
	}
	type cabURL struct{ truck, url string }
	var cabs []cabURL
	for i, t := range m.Trucks {
		cab := pickAddr(fmt.Sprintf("127.0.0.1:%d", *cabBase+i))
		l, err := newLink(brokerAddr)
		if err != nil {
			return err
		}
		d.addLink(t.ID, l)
		// The gateway dials its link, which forwards to the broker: TLS
		// passes through it end to end.
		args := append([]string{"-truck", t.ID, "-data", filepath.Join(*varDir, t.ID), "-can", t.CAN, "-cab", cab},
			gatewayBrokerArgs(pki, l.Addr(), t.ID, *plain)...)
		if t.Serial != "" {
			args = append(args, "-serial", t.Serial)
		}
		p, err := start(t.ID, out, bin("gateway"), args...)
		if err != nil {
			return err
		}
		d.add(p)
		cabs = append(cabs, cabURL{t.ID, "http://" + cab + "/"})
	}

	outMu.Lock()
	fmt.Println()
	fmt.Println("  tankguard demo is running. Ctrl-C stops it.")
	fmt.Printf("  fleet console:   http://%s/\n", consoleAddr)
	fmt.Printf("  sign in as:      admin, ops (operator) or view (viewer); password %s\n", password)
	if *plain {
		fmt.Printf("  broker:          %s, PLAIN TCP (insecure)\n", brokerAddr)
	} else {
		fmt.Printf("  broker:          ssl://%s, mutual TLS (certificates in %s; revoke one with bin/tankguard-ca revoke -dir %s %s)\n",
			brokerAddr, pki, pki, filepath.Join(pki, "TRUCK.pem"))
	}
	for _, c := range cabs {
		fmt.Printf("  cab %-9s    %s\n", c.truck+":", c.url)
	}
	if *overheat != "" {
		fmt.Printf("  injected fault:  engine overheat %s\n", *overheat)
	}
	fmt.Println()
	example := m.Trucks[0].ID
	if id, _, ok := strings.Cut(*overheat, "@"); ok && d.links[id] != nil {
		example = id // the one with the alert: see its cab keep alerting offline
	}
	fmt.Println(commandHelp(example))
	fmt.Println()
	outMu.Unlock()

	// Commands from the terminal, if it has one (EOF ends only them).
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if msg := d.command(sc.Text()); msg != "" {
				outMu.Lock()
				fmt.Fprintln(out, "demo       | "+msg)
				outMu.Unlock()
			}
		}
	}()

	// Run until Ctrl-C, or until a process other than the cloud dies on
	// its own: the trucks outlive a stopped cloud, as real ones do.
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-d.died:
			if ctx.Err() != nil {
				return nil
			}
			if p.name != "cloud" {
				return fmt.Errorf("%s exited: %v", p.name, p.err)
			}
			outMu.Lock()
			fmt.Fprintf(out, "demo       | the cloud is stopped (%v); the trucks keep their data and alert their drivers; type 'cloud start' to start it again\n", p.err)
			outMu.Unlock()
		}
	}
}

// commandHelp says how to take a truck out of coverage and back.
func commandHelp(truck string) string {
	return fmt.Sprintf(`  type a command and Enter:
    %-22s take %s out of coverage: its cab says "No fleet link", its data waits on the truck
    %-22s back in coverage: it catches up (reconnects within 30 s)
    %-22s stop the cloud (every truck offline); "cloud start" starts it again
    %-22s this list`, "offline "+truck, truck, "online "+truck, "cloud stop", "help")
}

// demo owns the child processes and the trucks' links. Its methods are
// safe for concurrent use.
type demo struct {
	out       io.Writer
	cloudBin  string
	cloudArgs []string
	died      chan *proc
	mu        sync.Mutex
	procs     []*proc // start order; the cloud first
	links     map[string]*link
}

// add records a started process and reports its exit on died.
func (d *demo) add(p *proc) {
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	go func() { <-p.done; d.died <- p }()
}

func (d *demo) addLink(truck string, l *link) {
	d.mu.Lock()
	d.links[truck] = l
	d.mu.Unlock()
}

// stopAll stops the processes in reverse order (gateways flush, then the
// sim, then the cloud), then the links.
func (d *demo) stopAll() {
	d.mu.Lock()
	procs := slices.Clone(d.procs)
	d.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(10 * time.Second)
	}
	for _, l := range d.links {
		l.close()
	}
	fmt.Println("demo stopped")
}

// command runs one line typed on the terminal and returns what to print.
func (d *demo) command(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	switch {
	case len(f) == 2 && (f[0] == "offline" || f[0] == "online"):
		d.mu.Lock()
		l := d.links[f[1]]
		d.mu.Unlock()
		if l == nil {
			return fmt.Sprintf("no truck %q", f[1])
		}
		if !l.setDown(f[0] == "offline") {
			return f[1] + " is already " + f[0]
		}
		if f[0] == "offline" {
			return f[1] + " is out of coverage: its cab shows No fleet link and keeps alerting; its data waits on the truck"
		}
		return f[1] + " is back in coverage: its gateway reconnects and sends what it kept"
	case len(f) == 2 && f[0] == "cloud" && f[1] == "stop":
		c := d.cloud()
		select {
		case <-c.done:
			return "the cloud is already stopped"
		default:
		}
		go c.stop(10 * time.Second)
		return "stopping the cloud"
	case len(f) == 2 && f[0] == "cloud" && f[1] == "start":
		select {
		case <-d.cloud().done:
		default:
			return "the cloud is already running"
		}
		p, err := start("cloud", d.out, d.cloudBin, d.cloudArgs...)
		if err != nil {
			return "cloud start: " + err.Error()
		}
		d.mu.Lock()
		d.procs[0] = p
		d.mu.Unlock()
		go func() { <-p.done; d.died <- p }()
		return "starting the cloud"
	}
	d.mu.Lock()
	var first string
	for t := range d.links {
		if first == "" || t < first {
			first = t
		}
	}
	d.mu.Unlock()
	if len(f) == 1 && f[0] == "help" {
		return "\n" + commandHelp(first)
	}
	return "unknown command " + strconv.Quote(line) + "\n" + commandHelp(first)
}

func (d *demo) cloud() *proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.procs[0]
}

// writeDemoUsers writes a console users file with an admin, an operator
// and a viewer sharing one random password, and returns the password.
func writeDemoUsers(path string) (string, error) {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	password := base64.RawURLEncoding.EncodeToString(b)
	hash, err := auth.HashPassword(password, auth.AlgBcrypt)
	if err != nil {
		return "", err
	}
	f := auth.UsersFile{Users: []auth.User{
		{Name: "admin", Role: auth.RoleAdmin, PasswordHash: hash},
		{Name: "ops", Role: auth.RoleOperator, PasswordHash: hash},
		{Name: "view", Role: auth.RoleViewer, PasswordHash: hash},
	}}
	body, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return password, os.WriteFile(path, body, 0o600)
}

// pickAddr returns addr if it can be listened on now, else a free loopback
// port.
func pickAddr(addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return addr
		}
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListen waits until addr accepts connections or p exits.
func waitListen(ctx context.Context, addr string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after 30 s", addr)
		}
	}
}

// makePKI makes the demo's fleet PKI in dir with the project's CA tool
// (caBin, cmd/tankguard-ca): the CA once (it is kept across runs, like the
// data), and at every start the broker's server certificate for the host
// of brokerAddr and loopback.
func makePKI(ctx context.Context, caBin, dir, brokerAddr string) error {
	if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); errors.Is(err, os.ErrNotExist) {
		if err := runCA(ctx, caBin, "init", "-dir", dir, "-name", "tankguard demo fleet CA"); err != nil {
			return err
		}
	}
	hosts := "127.0.0.1,localhost"
	if h, _, err := net.SplitHostPort(brokerAddr); err == nil && h != "" && h != "127.0.0.1" && h != "localhost" {
		hosts += "," + h
	}
	return runCA(ctx, caBin, "broker", "-dir", dir, "-host", hosts)
}

// truckCerts issues a client certificate for each truck that has none.
func truckCerts(ctx context.Context, caBin, dir string, ids []string) error {
	var missing []string
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(dir, id+".pem")); err != nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return runCA(ctx, caBin, append([]string{"truck", "-dir", dir}, missing...)...)
}

func runCA(ctx context.Context, caBin string, args ...string) error {
	if out, err := exec.CommandContext(ctx, caBin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("tankguard-ca %s: %v\n%s", args[0], err, out)
	}
	return nil
}

// cloudArgs are the cloud's flags: the embedded broker with mutual TLS
// from pki and its revocation list, unless plain.
func cloudArgs(varDir, pki, brokerAddr, consoleAddr, usersFile string, plain bool) []string {
	args := []string{"-data", filepath.Join(varDir, "cloud"), "-broker-listen", brokerAddr, "-http", consoleAddr,
		"-flush-interval", "2s", "-users", usersFile}
	if plain {
		return append(args, "-broker-plain-tcp")
	}
	return append(args, "-broker-tls-cert", filepath.Join(pki, "broker.pem"), "-broker-tls-key", filepath.Join(pki, "broker-key.pem"),
		"-broker-tls-ca", filepath.Join(pki, "ca.pem"), "-broker-revoked", filepath.Join(pki, "crl.pem"))
}

// gatewayBrokerArgs are a gateway's broker flags: ssl:// with the truck's
// own certificate, unless plain.
func gatewayBrokerArgs(pki, brokerAddr, truck string, plain bool) []string {
	if plain {
		return []string{"-broker", "tcp://" + brokerAddr}
	}
	return []string{"-broker", "ssl://" + brokerAddr, "-tls-cert", filepath.Join(pki, truck+".pem"),
		"-tls-key", filepath.Join(pki, truck+"-key.pem"), "-tls-ca", filepath.Join(pki, "ca.pem")}
}
