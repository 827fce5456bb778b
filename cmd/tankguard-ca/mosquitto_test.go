package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/uplink"
	"github.com/abc4logistics/tankguard/uplink/mosquittotest"
)

// MosquittoACL is the Mosquitto access control list equivalent to the
// embedded broker's per-truck identity rules (README, "Security"): with
// use_identity_as_username the certificate CN is the username %u.
const MosquittoACL = `# Trucks: the certificate CN is the truck id.
pattern write tankguard/v1/trucks/%u/up/telemetry
pattern write tankguard/v1/trucks/%u/up/alerts
pattern write tankguard/v1/trucks/%u/up/dtc
pattern write tankguard/v1/trucks/%u/status
pattern read tankguard/v1/trucks/%u/cmd
pattern read tankguard/v1/trucks/%u/durable

# The cloud (tankguard-ca cloud: CN tankguard-cloud).
user tankguard-cloud
topic read tankguard/v1/trucks/+/up/#
topic read tankguard/v1/trucks/+/status
topic write tankguard/v1/trucks/+/cmd
topic write tankguard/v1/trucks/+/durable
`

// mosquittoConf is the listener part of mosquitto.conf (%[1]s: port, %[2]s:
// the directory of the PEM files and the ACL).
const mosquittoConf = `listener %[1]s 127.0.0.1
cafile %[2]s/ca.pem
certfile %[2]s/broker.pem
keyfile %[2]s/broker-key.pem
require_certificate true
use_identity_as_username true
acl_file %[2]s/acl
`

// TestMosquittoACL runs Mosquitto with certificates from this tool and the
// ACL the README documents: truck-01 may publish its own telemetry and
// receive its own commands, but what it publishes under truck-02 never
// reaches the cloud, and it never receives truck-02's commands.
func TestMosquittoACL(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "-dir", dir)
	mustRun(t, "broker", "-dir", dir, "-host", "127.0.0.1")
	mustRun(t, "cloud", "-dir", dir)
	mustRun(t, "truck", "-dir", dir, "truck-01", "truck-02")
	// Started as root, mosquitto drops to user mosquitto: let it read the
	// files (test only; keep keys 0600 and owned by mosquitto in production).
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, "broker-key.pem"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(MosquittoACL), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := mosquittotest.StartConf(t, func(port, _ string) string { return fmt.Sprintf(mosquittoConf, port, dir) })
	caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
	connect := func(name, clientID string) paho.Client {
		t.Helper()
		tc, err := uplink.TLSConfig(readFile(t, filepath.Join(dir, name+".pem")), readFile(t, filepath.Join(dir, name+"-key.pem")), caPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID(clientID).
			SetTLSConfig(tc).SetProtocolVersion(4).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s connect: %v\n%s", name, tok.Error(), "(see the mosquitto log below)")
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	var mu sync.Mutex
	got := map[string]int{}
	record := func(_ paho.Client, m paho.Message) { mu.Lock(); got[m.Topic()]++; mu.Unlock() }
	count := func(topic string) int { mu.Lock(); defer mu.Unlock(); return got[topic] }
	wait := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
		}
	}
	pub := func(c paho.Client, topic string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, "x"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	cloud := connect("cloud", "tankguard-cloud")
	if tok := cloud.SubscribeMultiple(map[string]byte{uplink.UpFilter: 1, uplink.StatusFilter: 1}, record); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	truck := connect("truck-01", "tankguard-gw-truck-01")
	var tmu sync.Mutex
	truckGot := map[string]int{}
	trec := func(_ paho.Client, m paho.Message) { tmu.Lock(); truckGot[m.Topic()]++; tmu.Unlock() }
	own, other := uplink.Topic("truck-01", uplink.KindCommand), uplink.Topic("truck-02", uplink.KindCommand)
	for _, f := range []string{own, other} {
		truck.Subscribe(f, 1, trec).WaitTimeout(5 * time.Second)
	}

	pub(truck, uplink.Topic("truck-02", uplink.KindTelemetry)) // refused: dropped by the ACL
	pub(truck, uplink.Topic("truck-01", uplink.KindTelemetry))
	wait("own telemetry reaches the cloud", func() bool { return count(uplink.Topic("truck-01", uplink.KindTelemetry)) == 1 })
	if n := count(uplink.Topic("truck-02", uplink.KindTelemetry)); n != 0 {
		t.Errorf("truck-01 published as truck-02 and the cloud received it %d times", n)
	}
	pub(cloud, other)
	pub(cloud, own)
	wait("own command reaches truck-01", func() bool { tmu.Lock(); defer tmu.Unlock(); return truckGot[own] >= 1 })
	tmu.Lock()
	defer tmu.Unlock()
	if truckGot[other] != 0 {
		t.Errorf("truck-01 received truck-02's command %d times", truckGot[other])
	}
}

// TestMosquittoCRL runs Mosquitto with the revocation list tankguard-ca
// revoke writes, as SECURITY.md documents (crlfile): the revoked truck's
// certificate is refused, the others still connect.
func TestMosquittoCRL(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "-dir", dir)
	mustRun(t, "broker", "-dir", dir, "-host", "127.0.0.1")
	mustRun(t, "truck", "-dir", dir, "truck-01", "truck-02")
	mustRun(t, "revoke", "-dir", dir, filepath.Join(dir, "truck-01.pem"))
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, "broker-key.pem"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(MosquittoACL), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := mosquittotest.StartConf(t, func(port, _ string) string {
		return fmt.Sprintf(mosquittoConf, port, dir) + fmt.Sprintf("crlfile %s/crl.pem\n", dir)
	})
	caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
	for _, tc := range []struct {
		truck string
		ok    bool
	}{{"truck-01", false}, {"truck-02", true}} {
		tc2, err := uplink.TLSConfig(readFile(t, filepath.Join(dir, tc.truck+".pem")), readFile(t, filepath.Join(dir, tc.truck+"-key.pem")), caPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("tankguard-gw-" + tc.truck).
			SetTLSConfig(tc2).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
		if ok {
			p := c.Publish(uplink.Topic(tc.truck, uplink.KindStatus), 1, false, "x")
			ok = p.WaitTimeout(3*time.Second) && p.Error() == nil && c.IsConnectionOpen()
			c.Disconnect(0)
		}
		if ok != tc.ok {
			t.Errorf("%s: connected %v, want %v (revoked: truck-01)", tc.truck, ok, tc.ok)
		}
	}
}
