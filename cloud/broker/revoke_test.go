package broker

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/uplink"
)

// issueRole returns a client TLS configuration for cn (also its DNS SAN)
// with subject OU ou, and the certificate's serial number.
func (ca *testCA) issueRole(t testing.TB, cn, ou string) (*tls.Config, *big.Int) {
	t.Helper()
	c, k := ca.issue(t, cn, []string{cn}, false)
	if ou != "" {
		// Re-sign the same key with the OU set.
		b, _ := pem.Decode(c)
		cert, _ := x509.ParseCertificate(b.Bytes)
		kb, _ := pem.Decode(k)
		key, err := x509.ParseECPrivateKey(kb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		cert.Subject, cert.RawSubject = pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}}, nil
		der, err := x509.CreateCertificate(rand.Reader, cert, ca.cert, &key.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		c = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	cfg, err := uplink.TLSConfig(c, k, ca.pem, "")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	return cfg, leaf.SerialNumber
}

// crl writes a revocation list signed by ca listing serials to path.
func (ca *testCA) crl(t testing.TB, path string, serials ...*big.Int) {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func startTLS(t testing.TB, ca *testCA, opts Options) *Broker {
	t.Helper()
	c, k := ca.issue(t, "broker", nil, true)
	tc, err := ServerTLSConfig(c, k, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	opts.Listen, opts.TLS, opts.Internal = "127.0.0.1:0", tc, filepath.Join(t.TempDir(), "b.sock")
	b, err := Start(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestCloudClientIDNotTakenOver: a certificate whose CN is the cloud's
// name but that lacks the cloud role cannot connect with the cloud's
// client id and kick the cloud's session (issue 15, observation 9).
func TestCloudClientIDNotTakenOver(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	for _, admins := range [][]string{{"tankguard-cloud"}, nil} {
		b := startTLS(t, ca, Options{Admins: admins, CloudClientID: "tankguard-cloud"})
		cloud := newRecorder(t, b) // client id tankguard-cloud, internal socket
		impostor, _ := ca.issueRole(t, "tankguard-cloud", "")
		c, err := dial(b, impostor, "tankguard-cloud", "")
		if err == nil {
			c.Disconnect(0)
			t.Errorf("admins %v: a CN tankguard-cloud certificate without the cloud role connected with the cloud's client id", admins)
		}
		time.Sleep(100 * time.Millisecond)
		if !cloud.c.IsConnectionOpen() {
			t.Errorf("admins %v: the cloud's session was taken over", admins)
		}
		// Nor may it act as an admin under another client id.
		if c, err := dial(b, impostor, "tankguard-cloud-2", ""); err == nil {
			tok := c.Subscribe("tankguard/v1/trucks/+/cmd", 1, nil)
			tok.WaitTimeout(2 * time.Second)
			if tok.Error() == nil && c.IsConnectionOpen() && len(admins) > 0 {
				if st, ok := tok.(interface{ Result() map[string]byte }); ok && st.Result()["tankguard/v1/trucks/+/cmd"] != 0x80 {
					t.Errorf("admins %v: the impostor subscribed to every truck's commands", admins)
				}
			}
			c.Disconnect(0)
		}
	}
	// The real cloud certificate (cloud role) is an admin.
	b := startTLS(t, ca, Options{Admins: []string{"tankguard-cloud"}, CloudClientID: "tankguard-cloud"})
	real, _ := ca.issueRole(t, "tankguard-cloud", CloudRole)
	c, err := dial(b, real, "tankguard-cloud", "")
	if err != nil {
		t.Fatalf("the cloud's own certificate refused: %v", err)
	}
	defer c.Disconnect(0)
	tok := c.Subscribe("tankguard/v1/trucks/+/up/#", 1, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cloud subscribe: %v", tok.Error())
	}
}

// TestRevokedCertificateRefused: a certificate put on the revocation list
// is refused at the handshake and its connected client is cut off, with
// the list reloaded without a restart; taking it off lets it back in
// (issue 15, observation 8: a stolen truck key stayed valid).
func TestRevokedCertificateRefused(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	crlPath := filepath.Join(t.TempDir(), "crl.pem")
	b := startTLS(t, ca, Options{RevokedFile: crlPath, RevokedCA: ca.pem, RevokedPoll: 20 * time.Millisecond, CloudClientID: "tankguard-cloud"})
	stolen, sn := ca.issueRole(t, "truck-A", TruckRole)
	other, _ := ca.issueRole(t, "truck-B", TruckRole)
	c, err := dial(b, stolen, "truck-A", "")
	if err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	defer c.Disconnect(0)

	ca.crl(t, crlPath, sn)
	waitUntil(t, "the revoked truck's connection to be cut", func() bool { return !c.IsConnectionOpen() })
	if c2, err := dial(b, stolen, "truck-A", ""); err == nil {
		tok := c2.Publish(uplink.Topic("truck-A", uplink.KindStatus), 1, false, "x")
		if tok.WaitTimeout(2*time.Second) && tok.Error() == nil && c2.IsConnectionOpen() {
			t.Error("a revoked certificate connected and published")
		}
		c2.Disconnect(0)
	}
	if c3, err := dial(b, other, "truck-B", ""); err != nil {
		t.Errorf("another truck refused: %v", err)
	} else {
		c3.Disconnect(0)
	}
	if s := b.Stats(); s.RevokedCertificates < 2 {
		t.Errorf("revoked certificates counted %d, want >= 2 (the cut-off and the refused handshake)", s.RevokedCertificates)
	}

	// A list not signed by the fleet CA is refused; the last good one stays.
	newTestCA(t, "someone else").crl(t, crlPath)
	waitUntil(t, "the forged list to be counted", func() bool { return b.Stats().RevocationListErrors == 1 })
	if c4, err := dial(b, stolen, "truck-A", ""); err == nil {
		tok := c4.Publish(uplink.Topic("truck-A", uplink.KindStatus), 1, false, "x")
		if tok.WaitTimeout(2*time.Second) && tok.Error() == nil && c4.IsConnectionOpen() {
			t.Error("a forged revocation list un-revoked the certificate")
		}
		c4.Disconnect(0)
	}

	// Un-revoking (a new list without it) lets it back in, no restart.
	ca.crl(t, crlPath)
	waitUntil(t, "the un-revoked certificate to connect", func() bool {
		c5, err := dial(b, stolen, "truck-A", "")
		if err != nil {
			return false
		}
		defer c5.Disconnect(0)
		tok := c5.Publish(uplink.Topic("truck-A", uplink.KindStatus), 1, false, "x")
		return tok.WaitTimeout(2*time.Second) && tok.Error() == nil
	})
}
