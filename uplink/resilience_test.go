package uplink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// firstArrivals returns, per signal, the seqs in the order they first
// reached the broker (what the cloud keeps after dedup), and every alert
// seq seen.
func firstArrivals(b *testBroker) (bySignal map[sensors.Signal][]uint64, seen map[uint64]bool) {
	batches, _, _, _ := b.snapshot()
	bySignal = map[sensors.Signal][]uint64{}
	seen = map[uint64]bool{}
	for _, bt := range batches {
		for _, r := range bt.Readings {
			if !seen[r.Seq] {
				seen[r.Seq] = true
				bySignal[r.Signal] = append(bySignal[r.Signal], r.Seq)
			}
		}
		for _, a := range bt.Alerts {
			seen[a.Seq] = true
		}
	}
	return bySignal, seen
}

func TestBrokerRestartDeliversEverythingInOrder(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	addr := br.addr
	q := openQueue(t)
	cfg := Config{BrokerURL: br.url(), Truck: "T-1", BatchDelay: 20 * time.Millisecond, MaxBatchReadings: 500,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, PublishTimeout: 2 * time.Second, KeepAlive: time.Second}
	p := runPublisher(t, cfg, q)

	// Append steadily through the outage: readings every 5 ms, an alert
	// every 50 appends.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var appended []uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t0 := int64(1_767_225_600_000_000_000)
		for i := 0; ctx.Err() == nil; i++ {
			rs := testReadings(40, t0+int64(i)*4e9)
			var al []detect.Transition
			if i%50 == 0 {
				al = []detect.Transition{{Signal: sensors.CoolantTemp, Kind: detect.KindLimit, Severity: detect.SeverityCritical, Phase: detect.Raised, Start: int64(i), Time: int64(i)}}
			}
			if err := q.Append(rs, al, nil); err != nil {
				t.Error(err)
				return
			}
			for _, r := range rs {
				appended = append(appended, r.Seq)
			}
			for _, a := range al {
				appended = append(appended, a.Seq)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitFor(t, 10*time.Second, "first deliveries", func() bool { _, seen := firstArrivals(br); return len(seen) > 500 })
	br.stop()
	waitFor(t, 10*time.Second, "publisher offline", func() bool { return !p.State().Online })
	// Down for several times the longest backoff.
	time.Sleep(4 * cfg.ReconnectMax)
	failures := p.State().ConnectFailures
	br.start(addr)
	waitFor(t, 10*time.Second, "publisher back online", func() bool { return p.State().Online })
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "queue drained", func() bool { st := q.Stats(); return st.Readings+st.Alerts == 0 })
	waitFor(t, 5*time.Second, "everything at the subscriber", func() bool { _, seen := firstArrivals(br); return len(seen) >= len(appended) })

	if failures < 2 {
		t.Errorf("only %d failed reconnect attempts during the outage; backoff not exercised", failures)
	}
	bySig, seen := firstArrivals(br)
	for _, s := range appended {
		if !seen[s] {
			t.Fatalf("seq %d appended but never delivered", s)
		}
	}
	if len(seen) != len(appended) {
		t.Fatalf("delivered %d distinct seqs, appended %d", len(seen), len(appended))
	}
	for sig, seqs := range bySig {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("signal %s: seq %d arrived after %d", sig, seqs[i], seqs[i-1])
			}
		}
	}
	t.Logf("%d records, %d connect failures during outage, state %+v", len(appended), failures, p.State())
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all PEM.
type testPKI struct {
	caPEM, serverCert, serverKey, clientCert, clientKey []byte
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	key := func() (*ecdsa.PrivateKey, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	caKey, _ := key()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tankguard test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		k, kp := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp
	}
	var p testPKI
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p.serverCert, p.serverKey = leaf(2, "broker", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.clientCert, p.clientKey = leaf(3, "T-7", x509.ExtKeyUsageClientAuth, nil)
	return p
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srvCert, err := tls.X509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	br := startBrokerTLS(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12})

	t.Run("without client certificate", func(t *testing.T) {
		noCert, err := TLSConfig(nil, nil, pki.caPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		q := openQueue(t)
		p := runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-7", TLS: noCert, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, ConnectTimeout: time.Second}, q)
		waitFor(t, 10*time.Second, "failed attempts", func() bool { return p.State().ConnectFailures >= 2 })
		if p.State().Connects != 0 {
			t.Fatal("connected without a client certificate")
		}
	})
	t.Run("with client certificate", func(t *testing.T) {
		cfg, err := TLSConfig(pki.clientCert, pki.clientKey, pki.caPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		q := openQueue(t)
		rs := testReadings(100, 1e18)
		if err := q.Append(rs, nil, nil); err != nil {
			t.Fatal(err)
		}
		runPublisher(t, Config{BrokerURL: br.url(), Truck: "T-7", TLS: cfg, BatchDelay: 10 * time.Millisecond}, q)
		waitFor(t, 10*time.Second, "delivery over TLS", func() bool { _, _, n := delivered(br); return n >= len(rs) })
	})
	if _, err := TLSConfig([]byte("junk"), []byte("junk"), nil, ""); err == nil {
		t.Error("TLSConfig accepted a junk certificate")
	}
	if _, err := TLSConfig(nil, nil, []byte("junk"), ""); err == nil {
		t.Error("TLSConfig accepted a junk CA")
	}
}
