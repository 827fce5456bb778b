package broker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultRevokedPoll is how often the broker checks Options.RevokedFile
// for a change.
const DefaultRevokedPoll = 2 * time.Second

// ParseCRL parses a PEM (or DER) X.509 certificate revocation list and
// checks its signature against one of the CA certificates in caPEM. It
// returns the revoked serial numbers. It does no I/O.
func ParseCRL(data, caPEM []byte) (map[string]bool, error) {
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("revocation list: PEM block %q, want \"X509 CRL\"", b.Type)
		}
		der = b.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	var cas []*x509.Certificate
	for rest := caPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			cas = append(cas, c)
		}
	}
	if len(cas) == 0 {
		return nil, errors.New("revocation list: no CA certificate to check its signature")
	}
	signed := false
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			signed = true
			break
		}
	}
	if !signed {
		return nil, fmt.Errorf("revocation list: not signed by the fleet CA (issuer %q)", crl.Issuer.CommonName)
	}
	out := make(map[string]bool, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		out[serialKey(e.SerialNumber)] = true
	}
	return out, nil
}

func serialKey(n *big.Int) string { return n.Text(16) }

// revocations is the revoked-serial set the broker enforces, reloaded
// from its file when the file changes. Safe for concurrent use.
type revocations struct {
	path string
	ca   []byte
	set  atomic.Pointer[map[string]bool]

	mu   sync.Mutex // guards the file's last seen state
	size int64
	mod  time.Time
	errs atomic.Uint64 // lists that failed to load
}

func newRevocations(path string, caPEM []byte) (*revocations, error) {
	r := &revocations{path: path, ca: caPEM}
	empty := map[string]bool{}
	r.set.Store(&empty)
	if _, err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the file if it changed since the last look; it reports
// whether the set changed. A missing file is an empty list.
func (r *revocations) reload() (bool, error) {
	st, err := os.Stat(r.path)
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		if r.size == 0 && r.mod.IsZero() {
			return false, nil
		}
		empty := map[string]bool{}
		r.set.Store(&empty)
		r.size, r.mod = 0, time.Time{}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("revocation list %s: %w", r.path, err)
	}
	if st.Size() == r.size && st.ModTime().Equal(r.mod) {
		return false, nil
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return false, fmt.Errorf("revocation list %s: %w", r.path, err)
	}
	set, err := ParseCRL(data, r.ca)
	if err != nil {
		r.errs.Add(1)
		return false, fmt.Errorf("%s: %w", r.path, err)
	}
	r.size, r.mod = st.Size(), st.ModTime()
	r.set.Store(&set)
	return true, nil
}

// revoked reports whether any certificate of chain is revoked.
func (r *revocations) revoked(chain []*x509.Certificate) (*x509.Certificate, bool) {
	if r == nil {
		return nil, false
	}
	set := *r.set.Load()
	for _, c := range chain {
		if set[serialKey(c.SerialNumber)] {
			return c, true
		}
	}
	return nil, false
}

// watchRevoked re-reads the revocation list every poll until Close, and
// disconnects the clients whose certificates it now lists.
func (b *Broker) watchRevoked(poll time.Duration, log *slog.Logger) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		changed, err := b.revoked.reload()
		if err != nil {
			log.Error("revocation list not reloaded; the previous one stays in force", "err", err)
			continue
		}
		if !changed {
			continue
		}
		log.Info("revocation list reloaded", "file", b.revoked.path, "revoked", len(*b.revoked.set.Load()))
		b.disconnectRevoked(log)
	}
}

// disconnectRevoked disconnects every connected client whose certificate
// is revoked now.
func (b *Broker) disconnectRevoked(log *slog.Logger) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Closed() {
			continue
		}
		if c, ok := b.revoked.revoked(peerChain(cl)); ok {
			b.cnt.revokedClients.Add(1)
			log.Warn("client disconnected: its certificate was revoked", "client", cl.ID, "remote", cl.Net.Remote, "serial", serialKey(c.SerialNumber), "cn", c.Subject.CommonName)
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		}
	}
}

// peerChain returns the certificates a TLS client presented, or nil.
func peerChain(cl *mqtt.Client) []*x509.Certificate {
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		return tc.ConnectionState().PeerCertificates
	}
	return nil
}
