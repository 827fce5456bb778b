package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// readmeBlock returns the first indented block after marker in the
// README, without its 4-space indent.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	i := strings.Index(readme, marker)
	if i < 0 {
		t.Fatalf("README has no %q", marker)
	}
	var out []string
	started := false
	for line := range strings.Lines(readme[i:][strings.IndexByte(readme[i:], '\n')+1:]) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "    "):
			out = append(out, line[4:])
			started = true
		case !started:
			// the rest of the paragraph naming the block
		case line == "":
			out = append(out, "")
		default:
			return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
		}
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

// buildTool builds a command of this module into dir.
func buildTool(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// childOutput collects a child's output.
type childOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *childOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *childOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCloudOverMosquittoTLS runs the cloud binary against Debian's
// Mosquitto configured with the README's own mosquitto.conf and ACL
// (require_certificate, use_identity_as_username), with certificates from
// tankguard-ca. Before the broker is up the cloud logs that it cannot
// connect, once however many attempts fail; once it is, a truck's
// telemetry and DTC report published over mutual TLS reach the cloud's
// console.
func TestCloudOverMosquittoTLS(t *testing.T) {
	mosquittotest.Bin(t)
	bins := t.TempDir()
	cloudBin := buildTool(t, bins, ".", "cloud")
	caBin := buildTool(t, bins, "../tankguard-ca", "tankguard-ca")
	pki, err := os.MkdirTemp("", "tankguard-pki-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pki) })
	for _, args := range [][]string{{"init"}, {"broker", "-host", "127.0.0.1"}, {"cloud"}, {"truck", "truck-01"}, {"revoke"}} {
		args = append(args[:1:1], append([]string{"-dir", pki}, args[1:]...)...)
		if out, err := exec.Command(caBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("tankguard-ca %v: %v\n%s", args, err, out)
		}
	}
	// Started as root, mosquitto drops to user mosquitto: let it read the
	// files (test only; in production keep keys 0600, owned by mosquitto).
	for _, p := range []string{pki, filepath.Join(pki, "broker-key.pem")} {
		mode := os.FileMode(0o644)
		if p == pki {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	conf := readmeBlock(t, string(readme), "`mosquitto.conf`")
	acl := readmeBlock(t, string(readme), "`/etc/mosquitto/acl`")
	if !strings.Contains(conf, "require_certificate true") || !strings.Contains(acl, "user tankguard-cloud") {
		t.Fatalf("README blocks not found:\n%s\n%s", conf, acl)
	}
	if err := os.WriteFile(filepath.Join(pki, "acl"), []byte(acl), 0o644); err != nil {
		t.Fatal(err)
	}

	// A free port for the broker, and the cloud started before it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	const token = "mosquitto-test-token"
	data := t.TempDir()
	users := filepath.Join(data, "users.json")
	ub, _ := json.Marshal(map[string]any{"users": []auth.User{{Name: "ops", Role: auth.RoleViewer, TokenSHA256: auth.HashToken(token)}}})
	if err := os.WriteFile(users, ub, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cloudBin, "-data", data, "-http", "127.0.0.1:0", "-users", users,
		"-broker-url", "ssl://"+addr, "-client-id", "tankguard-cloud",
		"-broker-cert", filepath.Join(pki, "cloud.pem"), "-broker-key", filepath.Join(pki, "cloud-key.pem"),
		"-broker-ca", filepath.Join(pki, "ca.pem"))
	var stderr childOutput
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("cloud log:\n%s", stderr.String())
		}
	})
	consoleAddr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "console: http://"); ok {
				consoleAddr <- strings.TrimSuffix(a, "/")
			}
		}
	}()
	const retryMsg = "cannot connect to the broker; retrying"
	waitLog := func(what string, d time.Duration, f func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !f(stderr.String()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitLog("the retry log line", 10*time.Second, func(s string) bool { return strings.Contains(s, retryMsg) })
	time.Sleep(2500 * time.Millisecond) // more attempts fail, about one a second
	if n := strings.Count(stderr.String(), retryMsg); n != 1 {
		t.Errorf("%d retry log lines in 2.5 s, want 1 (rate-limited):\n%s", n, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("the retry log does not say why:\n%s", stderr.String())
	}

	// Now the broker, with the README's configuration on that port.
	readmeConf := strings.NewReplacer("listener 8883", "listener "+port+" 127.0.0.1",
		"/etc/mosquitto/certs/", pki+"/", "/etc/mosquitto/acl", filepath.Join(pki, "acl")).Replace(conf)
	mosquittotest.StartConfOn(t, port, func(string, string) string { return readmeConf })
	waitLog("connected to the broker", 20*time.Second, func(s string) bool { return strings.Contains(s, "connected to the broker") })
	var console string
	select {
	case console = <-consoleAddr:
	case <-time.After(20 * time.Second):
		t.Fatal("the cloud never printed its console address")
	}

	// A truck over mutual TLS, as its gateway would publish.
	tc, err := uplink.TLSConfig(pemFile(t, filepath.Join(pki, "truck-01.pem")), pemFile(t, filepath.Join(pki, "truck-01-key.pem")), pemFile(t, filepath.Join(pki, "ca.pem")), "")
	if err != nil {
		t.Fatal(err)
	}
	truck := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("tankguard-gw-truck-01").SetTLSConfig(tc).SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := truck.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("truck connect: %v", tok.Error())
	}
	defer truck.Disconnect(0)
	now := time.Now().Truncate(time.Millisecond)
	batch, err := uplink.Encode(uplink.Batch{Truck: "truck-01", Readings: []sensors.Reading{{Seq: 1, Time: now.UnixNano(), Signal: sensors.CoolantTemp, Value: 88}}})
	if err != nil {
		t.Fatal(err)
	}
	report, err := uplink.EncodeDTCReport(uplink.NewDTCReport("truck-01", now.UnixNano(), []sensors.DM1{{Time: now.UnixNano(), DTCs: []sensors.DTC{{SPN: 100, FMI: 1, Occurrences: 2}}}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		topic   string
		payload []byte
		retain  bool
	}{{uplink.Topic("truck-01", uplink.KindTelemetry), batch, false}, {uplink.Topic("truck-01", uplink.KindDTC), report, true}} {
		if tok := truck.Publish(m.topic, 1, m.retain, m.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", m.topic, tok.Error())
		}
	}
	var view struct {
		Truck struct {
			Coolant *float64 `json:"coolant_temp"`
			Faults  []struct {
				SPN  uint32 `json:"spn"`
				Name string `json:"name"`
			} `json:"faults"`
		} `json:"truck"`
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+console+"/api/trucks/truck-01", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			if resp.StatusCode == 200 {
				json.NewDecoder(resp.Body).Decode(&view)
			}
			resp.Body.Close()
		}
		if view.Truck.Coolant != nil && *view.Truck.Coolant == 88 && len(view.Truck.Faults) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("truck-01 not on the console with its reading and fault: %+v (err %v)", view, err)
		}
	}
	if f := view.Truck.Faults[0]; f.SPN != 100 || f.Name != "engine oil pressure" {
		t.Errorf("fault %+v", f)
	}
}

func pemFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
