package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/buffer"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// testCA is a throw-away fleet CA for the tests (cmd/tankguard-ca is the
// operators' tool; this is the same recipe, ECDSA P-256).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serial = big.NewInt(100)
var serialMu sync.Mutex

// issue returns PEM certificate and key for cn with the given DNS SANs; a
// server certificate also names 127.0.0.1.
func (ca *testCA) issue(t testing.TB, cn string, dns []string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serialMu.Lock()
	serial.Add(serial, big.NewInt(1))
	sn := new(big.Int).Set(serial)
	serialMu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// clientTLS is a truck's TLS configuration built the way the gateway
// builds it (uplink.TLSConfig).
func (ca *testCA) clientTLS(t testing.TB, cn string, dns ...string) *tls.Config {
	t.Helper()
	c, k := ca.issue(t, cn, dns, false)
	cfg, err := uplink.TLSConfig(c, k, ca.pem, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tlsBroker starts a broker with mutual TLS and an internal socket.
func tlsBroker(t testing.TB, ca *testCA) *Broker {
	t.Helper()
	c, k := ca.issue(t, "broker", nil, true)
	tc, err := ServerTLSConfig(c, k, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{Listen: "127.0.0.1:0", TLS: tc, Internal: filepath.Join(t.TempDir(), "b.sock")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// recorder is the cloud's side: a client on the internal socket that
// records every message under the trucks' topics.
type recorder struct {
	mu   sync.Mutex
	msgs map[string]int // topic -> count
	c    paho.Client
}

func newRecorder(t testing.TB, b *Broker) *recorder {
	t.Helper()
	r := &recorder{msgs: map[string]int{}}
	o := paho.NewClientOptions().AddBroker(b.ClientURL()).SetClientID("tankguard-cloud").SetAutoReconnect(false)
	r.c = paho.NewClient(o)
	if tok := r.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cloud client connect over %s: %v", b.ClientURL(), tok.Error())
	}
	tok := r.c.Subscribe("tankguard/v1/trucks/#", 1, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.msgs[m.Topic()]++
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cloud subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(0) })
	return r
}

func (r *recorder) count(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[topic]
}

// dial connects a raw MQTT 3.1.1 client over TLS.
func dial(b *Broker, tc *tls.Config, clientID string, will string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("ssl://" + b.Addr()).SetClientID(clientID).
		SetTLSConfig(tc).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	if will != "" {
		o.SetWill(will, "offline", 1, true)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTruckCannotSpeakForAnother is the issue's acceptance test: a client
// holding truck A's certificate can publish its own telemetry, but cannot
// publish truck B's telemetry or subscribe to truck B's commands.
func TestTruckCannotSpeakForAnother(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	b := tlsBroker(t, ca)
	cloud := newRecorder(t, b)
	tlsA := ca.clientTLS(t, "truck-A", "truck-A")
	aTel, bTel := uplink.Topic("truck-A", uplink.KindTelemetry), uplink.Topic("truck-B", uplink.KindTelemetry)
	aCmd, bCmd := uplink.Topic("truck-A", uplink.KindCommand), uplink.Topic("truck-B", uplink.KindCommand)

	t.Run("own telemetry is delivered", func(t *testing.T) {
		c, err := dial(b, tlsA, "tankguard-gw-truck-A", uplink.Topic("truck-A", uplink.KindStatus))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(0)
		for _, topic := range []string{aTel, uplink.Topic("truck-A", uplink.KindAlerts), uplink.Topic("truck-A", uplink.KindDTC), uplink.Topic("truck-A", uplink.KindStatus)} {
			tok := c.Publish(topic, 1, false, []byte("x"))
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish %s: %v", topic, tok.Error())
			}
			waitUntil(t, "cloud receives "+topic, func() bool { return cloud.count(topic) == 1 })
		}
	})

	t.Run("publishing truck B's telemetry is refused", func(t *testing.T) {
		before := b.Stats().DeniedPublishes
		c, err := dial(b, tlsA, "tankguard-gw-truck-A", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(0)
		c.Publish(bTel, 1, false, []byte("forged")).WaitTimeout(2 * time.Second)
		waitUntil(t, "the broker disconnects the forger", func() bool { return !c.IsConnectionOpen() })
		if got := b.Stats().DeniedPublishes; got != before+1 {
			t.Errorf("denied publishes = %d, want %d", got, before+1)
		}
		// A message the cloud itself publishes afterwards arrives, so
		// the forged one would have arrived before it.
		if tok := cloud.c.Publish(uplink.Topic("truck-B", uplink.KindStatus), 1, false, "probe"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		waitUntil(t, "probe", func() bool { return cloud.count(uplink.Topic("truck-B", uplink.KindStatus)) == 1 })
		if n := cloud.count(bTel); n != 0 {
			t.Errorf("cloud received %d forged messages on %s", n, bTel)
		}
	})

	t.Run("subscribing to truck B's commands is refused", func(t *testing.T) {
		c, err := dial(b, tlsA, "tankguard-gw-truck-A", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(0)
		var mu sync.Mutex
		got := map[string]int{}
		h := func(_ paho.Client, m paho.Message) { mu.Lock(); got[m.Topic()]++; mu.Unlock() }
		for _, tc := range []struct {
			filter string
			want   byte
		}{
			{bCmd, 0x80},
			{"tankguard/v1/trucks/+/cmd", 0x80},
			{"tankguard/v1/trucks/#", 0x80},
			{"#", 0x80},
			{"$SYS/#", 0x80},
			{bTel, 0x80},
			{aCmd, 1},
		} {
			tok := c.Subscribe(tc.filter, 1, h)
			if !tok.WaitTimeout(5 * time.Second) {
				t.Fatalf("subscribe %s: timeout", tc.filter)
			}
			if res := tok.(*paho.SubscribeToken).Result()[tc.filter]; res != tc.want {
				t.Errorf("subscribe %s: return code %#x, want %#x", tc.filter, res, tc.want)
			}
		}
		for _, topic := range []string{bCmd, aCmd} {
			if tok := cloud.c.Publish(topic, 1, false, "cmd"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
		}
		// paho calls every local handler whose filter matches, refused or
		// not, so one delivery may count more than once here.
		waitUntil(t, "truck A receives its own command", func() bool { mu.Lock(); defer mu.Unlock(); return got[aCmd] >= 1 })
		mu.Lock()
		defer mu.Unlock()
		if got[bCmd] != 0 {
			t.Errorf("truck A received %d of truck B's commands", got[bCmd])
		}
		if s := b.Stats().DeniedSubscribes; s < 6 {
			t.Errorf("denied subscribes = %d, want >= 6", s)
		}
	})
}

// TestConnectRefused covers the certificate and CONNECT checks.
func TestConnectRefused(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	other := newTestCA(t, "someone else's CA")
	b := tlsBroker(t, ca)
	// A certificate for truck-A signed by another CA, presented even though
	// the broker asks for its own CA's (crypto/tls would otherwise send
	// none).
	foreign := ca.clientTLS(t, "x")
	fc, fk := other.issue(t, "truck-A", nil, false)
	fpair, err := tls.X509KeyPair(fc, fk)
	if err != nil {
		t.Fatal(err)
	}
	foreign.Certificates = nil
	foreign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &fpair, nil }
	// A server certificate of the fleet CA (no client-auth usage).
	sc, sk := ca.issue(t, "truck-A", []string{"truck-A"}, true)
	serverCert, err := uplink.TLSConfig(sc, sk, ca.pem, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		tls      *tls.Config
		clientID string
		will     string
		ok       bool
	}{
		{"own certificate, gateway client id", ca.clientTLS(t, "truck-A"), "tankguard-gw-truck-A", uplink.Topic("truck-A", uplink.KindStatus), true},
		{"own certificate, bare client id", ca.clientTLS(t, "", "truck-A"), "truck-A", "", true},
		{"client id of another truck (session takeover)", ca.clientTLS(t, "truck-A"), "tankguard-gw-truck-B", "", false},
		{"client id of the cloud", ca.clientTLS(t, "truck-A"), "tankguard-cloud", "", false},
		{"will on another truck's status", ca.clientTLS(t, "truck-A"), "truck-A", uplink.Topic("truck-B", uplink.KindStatus), false},
		{"CN and SAN disagree", ca.clientTLS(t, "truck-A", "truck-B"), "truck-A", "", false},
		{"identity is not a truck id", ca.clientTLS(t, "truck A/#"), "truck A/#", "", false},
		{"certificate from another CA", foreign, "truck-A", "", false},
		{"server certificate used as a client's", serverCert, "truck-A", "", false},
		{"no client certificate", &tls.Config{RootCAs: ca.clientTLS(t, "x").RootCAs, MinVersion: tls.VersionTLS12}, "truck-A", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(b, tc.tls, tc.clientID, tc.will)
			if c != nil {
				defer c.Disconnect(0)
			}
			if tc.ok && err != nil {
				t.Fatalf("connect refused: %v", err)
			}
			if !tc.ok && err == nil {
				// TLS 1.3 reports a rejected client certificate only on
				// the first read; the broker then closes the connection.
				tok := c.Publish(uplink.Topic("truck-A", uplink.KindStatus), 1, false, "x")
				if tok.WaitTimeout(2*time.Second) && tok.Error() == nil && c.IsConnectionOpen() {
					t.Fatal("connected and published; want refused")
				}
			}
		})
	}
	if s := b.Stats(); s.DeniedConnects != 5 || s.RefusedHandshakes != 3 {
		t.Errorf("denied connects = %d, refused handshakes = %d; want 5 (CONNECT-level refusals) and 3 (no, foreign or server certificate)", s.DeniedConnects, s.RefusedHandshakes)
	}
}

// TestGatewayUplinkOverMutualTLS runs the gateway's real uplink with truck
// A's certificate: its readings reach the cloud and the cloud's command
// reaches it, over the identity-checking listener.
func TestGatewayUplinkOverMutualTLS(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	b := tlsBroker(t, ca)
	cloud := newRecorder(t, b)
	q, err := buffer.Open(filepath.Join(t.TempDir(), "q.db"), buffer.Options{SyncInterval: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	cfg := uplink.Config{BrokerURL: "ssl://" + b.Addr(), Truck: "truck-A", TLS: ca.clientTLS(t, "truck-A", "truck-A"),
		BatchDelay: 20 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	p, err := uplink.NewPublisher(cfg, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	now := time.Now()
	rs := make([]sensors.Reading, 100)
	for i := range rs {
		rs[i] = sensors.Reading{Time: now.Add(time.Duration(i) * time.Second).UnixNano(), Signal: sensors.CoolantTemp, Value: 80}
	}
	if err := q.Append(rs, nil, nil); err != nil {
		t.Fatal(err)
	}
	tel := uplink.Topic("truck-A", uplink.KindTelemetry)
	waitUntil(t, "readings reach the cloud", func() bool { return cloud.count(tel) > 0 && p.State().Online })
	cmd, err := uplink.EncodeCommand(uplink.Command{ID: "c1", Type: uplink.CommandAlertAck,
		Ack: &uplink.AlertAck{Signal: sensors.CoolantTemp.String(), Start: now.UnixNano(), Time: now.UnixNano(), By: "ops", Severity: "warning"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok := cloud.c.Publish(uplink.Topic("truck-A", uplink.KindCommand), 1, false, cmd); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case c := <-p.Commands():
		if c.ID != "c1" {
			t.Errorf("command id %q", c.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not receive its command")
	}
	if s := b.Stats(); s.DeniedConnects+s.DeniedPublishes+s.DeniedSubscribes != 0 {
		t.Errorf("the gateway's own traffic was refused: %+v", s)
	}
}

// TestOversizedPacketDisconnects shows the packet limit: a publish above
// MaxPacketSize disconnects only its sender and is counted.
func TestOversizedPacketDisconnects(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	b := tlsBroker(t, ca)
	cloud := newRecorder(t, b)
	big, err := dial(b, ca.clientTLS(t, "truck-A"), "truck-A", "")
	if err != nil {
		t.Fatal(err)
	}
	defer big.Disconnect(0)
	good, err := dial(b, ca.clientTLS(t, "truck-B"), "truck-B", "")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Disconnect(0)
	big.Publish(uplink.Topic("truck-A", uplink.KindTelemetry), 1, false, make([]byte, DefaultMaxPacketSize+1)).WaitTimeout(2 * time.Second)
	waitUntil(t, "oversized sender disconnected and counted", func() bool { return !big.IsConnectionOpen() && b.Stats().OversizedPackets == 1 })
	bt := uplink.Topic("truck-B", uplink.KindTelemetry)
	if tok := good.Publish(bt, 1, false, make([]byte, uplink.MaxPayloadSize)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("a 128 KiB payload from another truck: %v", tok.Error())
	}
	waitUntil(t, "other truck's message delivered", func() bool { return cloud.count(bt) == 1 })
	if n := cloud.count(uplink.Topic("truck-A", uplink.KindTelemetry)); n != 0 {
		t.Errorf("oversized message delivered %d times", n)
	}
}
