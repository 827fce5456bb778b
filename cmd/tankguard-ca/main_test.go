package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/cloud/broker"
	"github.com/abc4logistics/tankguard/uplink"
)

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	var errb bytes.Buffer
	if err := run(args, io.Discard, &errb); err != nil {
		t.Fatalf("tankguard-ca %s: %v %s", strings.Join(args, " "), err, errb.String())
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIssuedCertificatesWorkWithTheBroker issues a fleet PKI and uses it
// with the embedded broker: truck-01's certificate connects as truck-01
// and may publish only under truck-01.
func TestIssuedCertificatesWorkWithTheBroker(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "-dir", dir)
	mustRun(t, "broker", "-dir", dir, "-host", "127.0.0.1,localhost")
	mustRun(t, "cloud", "-dir", dir)
	mustRun(t, "truck", "-dir", dir, "truck-01", "truck-02")

	caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, tc := range []struct {
		name, identity string
		usage          x509.ExtKeyUsage
	}{
		{"truck-01", "truck-01", x509.ExtKeyUsageClientAuth},
		{"truck-02", "truck-02", x509.ExtKeyUsageClientAuth},
		{"cloud", "tankguard-cloud", x509.ExtKeyUsageClientAuth},
	} {
		t.Run(tc.name+" role", func(t *testing.T) {
			c, _ := x509.ParseCertificate(func() []byte {
				p, _ := tls.LoadX509KeyPair(filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+"-key.pem"))
				return p.Certificate[0]
			}())
			want := broker.TruckRole
			if tc.name == "cloud" {
				want = broker.CloudRole
			}
			if len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != want {
				t.Errorf("OU %v, want [%s]", c.Subject.OrganizationalUnit, want)
			}
		})
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+"-key.pem"))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cert, _ := x509.ParseCertificate(pair.Certificate[0])
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
			t.Errorf("%s: does not verify against the fleet CA: %v", tc.name, err)
		}
		if id, err := broker.CertIdentity(cert); err != nil || id != tc.identity {
			t.Errorf("%s: identity %q, %v; want %q", tc.name, id, err, tc.identity)
		}
		if fi, _ := os.Stat(filepath.Join(dir, tc.name+"-key.pem")); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode %v, want 0600", tc.name, fi.Mode().Perm())
		}
	}

	srvTLS, err := broker.LoadServerTLS(filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", TLS: srvTLS}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cliTLS, err := uplink.TLSConfig(readFile(t, filepath.Join(dir, "truck-01.pem")), readFile(t, filepath.Join(dir, "truck-01-key.pem")), caPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + b.Addr()).SetClientID("tankguard-gw-truck-01").
		SetTLSConfig(cliTLS).SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("truck-01 connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Publish(uplink.Topic("truck-01", uplink.KindStatus), 1, false, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("truck-01 publishes its own status: %v", tok.Error())
	}
	c.Publish(uplink.Topic("truck-02", uplink.KindStatus), 1, false, "online").WaitTimeout(2 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().DeniedPublishes != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.Stats().DeniedPublishes; got != 1 {
		t.Errorf("truck-01 publishing as truck-02: denied publishes = %d, want 1", got)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "-dir", dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"server", "-dir", dir}, `unknown command "server"`},
		{"init twice", []string{"init", "-dir", dir}, "refusing to replace"},
		{"truck without id", []string{"truck", "-dir", dir}, "at least one truck id"},
		{"bad truck id", []string{"truck", "-dir", dir, "truck 1"}, `truck "truck 1"`},
		{"truck named as the cloud", []string{"truck", "-dir", dir, "tankguard-cloud"}, "reserved for the cloud"},
		{"revoke a foreign file", []string{"revoke", "-dir", dir, filepath.Join(dir, "none.pem")}, "no such file"},
		{"no CA", []string{"truck", "-dir", filepath.Join(dir, "none"), "t1"}, "run tankguard-ca init first"},
		{"broker without host", []string{"broker", "-dir", dir, "-host", ""}, "-host names no address"},
		{"negative days", []string{"cloud", "-dir", dir, "-days", "-1"}, "-days must be positive"},
		{"stray argument", []string{"cloud", "-dir", dir, "x"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestRevoke: tankguard-ca revoke writes a CRL signed by the fleet CA that
// the broker parses, keeps what was revoked before, and the broker refuses
// the revoked certificate (issue 15, observation 8).
func TestRevoke(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "-dir", dir)
	mustRun(t, "broker", "-dir", dir, "-host", "127.0.0.1")
	mustRun(t, "truck", "-dir", dir, "truck-01", "truck-02", "truck-03")
	serial := func(name string) string {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(pair.Certificate[0])
		return c.SerialNumber.Text(16)
	}
	mustRun(t, "revoke", "-dir", dir, filepath.Join(dir, "truck-01.pem"))
	mustRun(t, "revoke", "-dir", dir, "-serial", serial("truck-02"))
	mustRun(t, "revoke", "-dir", dir, filepath.Join(dir, "truck-01.pem")) // again: no change
	caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
	set, err := broker.ParseCRL(readFile(t, filepath.Join(dir, "crl.pem")), caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 2 || !set[serial("truck-01")] || !set[serial("truck-02")] || set[serial("truck-03")] {
		t.Fatalf("revoked %v; want truck-01 and truck-02 only", set)
	}
	if err := run([]string{"revoke", "-dir", dir, "-serial", "xyz"}, io.Discard, io.Discard); err == nil {
		t.Error("a bad serial was accepted")
	}

	srvTLS, err := broker.LoadServerTLS(filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", TLS: srvTLS, RevokedFile: filepath.Join(dir, "crl.pem"), RevokedCA: caPEM}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		truck string
		ok    bool
	}{{"truck-01", false}, {"truck-03", true}} {
		cfg, err := uplink.TLSConfig(readFile(t, filepath.Join(dir, tc.truck+".pem")), readFile(t, filepath.Join(dir, tc.truck+"-key.pem")), caPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		o := paho.NewClientOptions().AddBroker("ssl://" + b.Addr()).SetClientID(tc.truck).SetTLSConfig(cfg).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		ok := tok.WaitTimeout(5*time.Second) && tok.Error() == nil
		if ok {
			pub := c.Publish(uplink.Topic(tc.truck, uplink.KindStatus), 1, false, "x")
			ok = pub.WaitTimeout(2*time.Second) && pub.Error() == nil && c.IsConnectionOpen()
			c.Disconnect(0)
		}
		if ok != tc.ok {
			t.Errorf("%s: connected and published %v, want %v", tc.truck, ok, tc.ok)
		}
	}
}

// TestHelp: -h, --help and help print the usage with every command on
// stdout and succeed (exit 0).
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		var out, errb bytes.Buffer
		if err := run([]string{arg}, &out, &errb); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"tankguard-ca init", "tankguard-ca broker", "tankguard-ca cloud", "tankguard-ca truck", "tankguard-ca revoke"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: help lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}
