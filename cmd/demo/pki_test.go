package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/uplink"
)

// TestDemoBrokerIsMutualTLS starts the real cloud binary the way the demo
// does, with certificates made by the real tankguard-ca: a plain MQTT
// client (anyone on the network) cannot connect, a truck with its own
// certificate can, and revoking that certificate cuts it off without a
// restart (issue 15, observations 7 and 8: the demo's broker was plain
// TCP, so anyone could publish as any truck).
func TestDemoBrokerIsMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	binDir := t.TempDir()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "../cloud", "../tankguard-ca").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	varDir := t.TempDir()
	pki := filepath.Join(varDir, "pki")
	brokerAddr := pickAddr("127.0.0.1:0")
	caBin := filepath.Join(binDir, "tankguard-ca")
	if err := makePKI(ctx, caBin, pki, brokerAddr); err != nil {
		t.Fatal(err)
	}
	if err := truckCerts(ctx, caBin, pki, []string{"truck-01", "truck-02"}); err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(varDir, "demo-users.json")
	if _, err := writeDemoUsers(usersFile); err != nil {
		t.Fatal(err)
	}
	args := cloudArgs(varDir, pki, brokerAddr, "127.0.0.1:0", usersFile, false)
	if slices.Contains(args, "-broker-plain-tcp") {
		t.Fatalf("the demo runs the broker on plain TCP: %q", args)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "cloud"), append(args, "-log-level", "warn")...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "broker: ") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("cloud not ready")
	}

	connect := func(url string, truck string) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker(url).SetClientID("tankguard-gw-" + truck).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		if truck != "" && strings.HasPrefix(url, "ssl://") {
			a := gatewayBrokerArgs(pki, brokerAddr, truck, false)
			cfg, err := uplink.TLSConfig(mustRead(t, a[3]), mustRead(t, a[5]), mustRead(t, a[7]), "")
			if err != nil {
				t.Fatal(err)
			}
			o.SetTLSConfig(cfg)
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, context.DeadlineExceeded
		}
		if err := tok.Error(); err != nil {
			return nil, err
		}
		pub := c.Publish(uplink.Topic(truck, uplink.KindStatus), 1, false, "online")
		if !pub.WaitTimeout(3*time.Second) || pub.Error() != nil || !c.IsConnectionOpen() {
			c.Disconnect(0)
			return nil, context.DeadlineExceeded
		}
		return c, nil
	}
	if c, err := connect("tcp://"+brokerAddr, "truck-02"); err == nil {
		c.Disconnect(0)
		t.Fatal("a plain MQTT client without a certificate connected and published as truck-02")
	}
	c, err := connect(gatewayBrokerArgs(pki, brokerAddr, "truck-01", false)[1], "truck-01")
	if err != nil {
		t.Fatalf("truck-01 with its own certificate: %v", err)
	}
	defer c.Disconnect(0)
	if err := runCA(ctx, caBin, "revoke", "-dir", pki, filepath.Join(pki, "truck-01.pem")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("truck-01 still connected 15 s after its certificate was revoked")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c2, err := connect("ssl://"+brokerAddr, "truck-01"); err == nil {
		c2.Disconnect(0)
		t.Error("the revoked certificate connected again")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
