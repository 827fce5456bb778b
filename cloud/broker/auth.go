package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/abc4logistics/tankguard/uplink"
)

// Access rules enforced on the TLS listener (Options.TLS):
//
//   - A client presents a certificate signed by the fleet CA. Its identity
//     is the subject common name and every DNS subject alternative name;
//     they must all be equal (a certificate names one truck), and the
//     identity must be a valid truck id (uplink.ValidTruckID).
//   - Its MQTT client id is the identity itself or "tankguard-gw-"+identity
//     (the uplink's default), so a truck cannot take over another truck's
//     persistent session (and with it that truck's command subscription).
//   - It may publish only to tankguard/v1/trucks/{identity}/up/telemetry,
//     .../up/alerts, .../up/dtc and .../status, and its last will may name only
//     .../status (mochi does not check a will against the ACL, so the
//     will is checked at CONNECT).
//   - It may subscribe only to the exact filter
//     tankguard/v1/trucks/{identity}/cmd: no wildcards, no $SYS.
//   - Identities listed in Options.Admins, and clients on the internal
//     unix socket (Options.Internal), may do anything: that is the cloud.
//
// A refused CONNECT gets "not authorized"; a refused PUBLISH disconnects
// an MQTT 3.1.1 client (mochi's behaviour: 3.1.1 has no negative PUBACK)
// and is answered with "not authorized" for MQTT 5; a refused SUBSCRIBE
// gets the failure return code 0x80. Every refusal is counted in Stats
// and logged at warn level, rate limited per kind.

// internalListener is the listener id of the internal unix socket.
const internalListener = "internal"

// gatewayClientPrefix is the uplink's default client id prefix.
const gatewayClientPrefix = "tankguard-gw-"

// Stats counts what the broker refused. Fields are totals since Start.
type Stats struct {
	// RefusedHandshakes are TLS handshakes refused: no client
	// certificate, or one the fleet CA did not sign (or expired).
	RefusedHandshakes uint64 `json:"refused_handshakes"`
	// DeniedConnects are CONNECTs refused: unusable certificate identity,
	// client id not matching the certificate, or a will on a foreign topic.
	DeniedConnects uint64 `json:"denied_connects"`
	// DeniedPublishes are PUBLISHes to a topic the client may not use.
	DeniedPublishes uint64 `json:"denied_publishes"`
	// DeniedSubscribes are subscription filters the client may not use.
	DeniedSubscribes uint64 `json:"denied_subscribes"`
	// OversizedPackets are clients disconnected for sending a packet
	// larger than Options.MaxPacketSize.
	OversizedPackets uint64 `json:"oversized_packets"`
	// RevokedCertificates are handshakes refused, and connected clients
	// disconnected, for a certificate on the revocation list.
	RevokedCertificates uint64 `json:"revoked_certificates"`
	// RevocationListErrors are revocation lists that failed to load (the
	// previous one stayed in force).
	RevocationListErrors uint64 `json:"revocation_list_errors"`
}

type counters struct {
	refusedHandshakes, deniedConnects, deniedPublishes, deniedSubscribes, oversized, revokedClients atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RefusedHandshakes: c.refusedHandshakes.Load(),
		DeniedConnects:    c.deniedConnects.Load(),
		DeniedPublishes:   c.deniedPublishes.Load(),
		DeniedSubscribes:  c.deniedSubscribes.Load(),
		OversizedPackets:  c.oversized.Load(),

		RevokedCertificates: c.revokedClients.Load(),
	}
}

// ServerTLSConfig builds the broker's TLS configuration for mutual TLS:
// the broker's certificate and key (PEM) and the fleet CA (PEM) that signs
// the clients' certificates. Clients without a valid certificate fail the
// handshake. It does no I/O.
func ServerTLSConfig(certPEM, keyPEM, clientCAPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("broker tls: server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCAPEM) {
		return nil, errors.New("broker tls: no CA certificate found in the client CA PEM")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// LoadServerTLS reads the PEM files named and calls ServerTLSConfig.
func LoadServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	var pems [3][]byte
	for i, f := range []string{certFile, keyFile, clientCAFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("broker tls: %w", err)
		}
		pems[i] = b
	}
	return ServerTLSConfig(pems[0], pems[1], pems[2])
}

// CertIdentity returns the identity a client certificate names: its
// subject CN and DNS SANs, which must agree. It is exported so that tools
// (cmd/tankguard-ca) and tests apply the broker's own rule.
func CertIdentity(cert *x509.Certificate) (string, error) {
	id := cert.Subject.CommonName
	for _, n := range cert.DNSNames {
		switch {
		case id == "":
			id = n
		case n != id:
			return "", fmt.Errorf("certificate names both %q and %q", id, n)
		}
	}
	if id == "" {
		return "", errors.New("certificate has no common name or DNS name")
	}
	return id, nil
}

// countingTLS returns a copy of cfg that requires a client certificate
// and verifies it itself against cfg.ClientCAs (for client
// authentication), whatever cfg.ClientAuth says, so that each refused
// handshake is counted and logged (with RequireAndVerifyClientCert
// crypto/tls refuses them before any callback runs). Every handshake
// that completes has a verified client certificate; authHook relies on it.
func countingTLS(cfg *tls.Config, cnt *counters, rv *revocations, log *slog.Logger) (*tls.Config, error) {
	if cfg.ClientCAs == nil {
		return nil, errors.New("broker tls: ClientCAs (the fleet CA) is required")
	}
	c := cfg.Clone()
	c.ClientAuth = tls.RequestClientCert
	var thr throttle
	c.VerifyConnection = func(st tls.ConnectionState) error {
		err := verifyClient(st, c.ClientCAs)
		if err == nil {
			if rc, bad := rv.revoked(st.PeerCertificates); bad {
				cnt.revokedClients.Add(1)
				err = fmt.Errorf("broker tls: client certificate %q (serial %s) is revoked", rc.Subject.CommonName, serialKey(rc.SerialNumber))
			}
		}
		if err != nil {
			cnt.refusedHandshakes.Add(1)
			if thr.allow("tls") {
				log.Warn("TLS handshake refused", "err", err)
			}
			return err
		}
		if cfg.VerifyConnection != nil {
			return cfg.VerifyConnection(st)
		}
		return nil
	}
	return c, nil
}

func verifyClient(st tls.ConnectionState, roots *x509.CertPool) error {
	if len(st.PeerCertificates) == 0 {
		return errors.New("broker tls: no client certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("broker tls: client certificate %q: %w", st.PeerCertificates[0].Subject.CommonName, err)
	}
	return nil
}

// authHook enforces the access rules above.
type authHook struct {
	mqtt.HookBase
	admins  map[string]bool
	cloudID string
	revoked *revocations
	cnt     *counters
	log     *slog.Logger
	thr     throttle
}

// CloudRole is the subject organizational unit (OU) that marks the
// cloud's own certificate (tankguard-ca cloud sets it; truck certificates
// carry TruckRole). Only a certificate with it, naming an identity in
// Options.Admins, is an admin: a name alone is not enough.
const (
	CloudRole = "tankguard-cloud"
	TruckRole = "tankguard-truck"
)

func newAuthHook(opts Options, cnt *counters, rv *revocations, log *slog.Logger) *authHook {
	h := &authHook{admins: map[string]bool{}, cloudID: opts.CloudClientID, revoked: rv, cnt: cnt, log: log}
	for _, a := range opts.Admins {
		h.admins[a] = true
	}
	return h
}

func (*authHook) ID() string { return "truck-identity" }

func (*authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// identity returns the client's certificate identity and whether it is an
// admin (or on the internal socket).
func (h *authHook) identity(cl *mqtt.Client) (id string, admin bool, err error) {
	if cl.Net.Listener == internalListener {
		return "", true, nil
	}
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return "", false, errors.New("not a TLS connection")
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || len(st.PeerCertificates) == 0 {
		return "", false, errors.New("no client certificate")
	}
	if c, bad := h.revoked.revoked(st.PeerCertificates); bad {
		return "", false, fmt.Errorf("certificate serial %s is revoked", serialKey(c.SerialNumber))
	}
	leaf := st.PeerCertificates[0]
	id, err = CertIdentity(leaf)
	if err != nil {
		return "", false, err
	}
	if h.admins[id] {
		if !slices.Contains(leaf.Subject.OrganizationalUnit, CloudRole) {
			return "", false, fmt.Errorf("certificate names the admin identity %q but lacks the cloud role (OU %s); issue it with tankguard-ca cloud", id, CloudRole)
		}
		return id, true, nil
	}
	if !uplink.ValidTruckID(id) {
		return "", false, fmt.Errorf("certificate identity %q is not a truck id", id)
	}
	return id, false, nil
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	err := h.checkConnect(cl, pk)
	if err != nil {
		h.cnt.deniedConnects.Add(1)
		h.warn("connect", "connect refused", "client", cl.ID, "remote", cl.Net.Remote, "err", err)
		return false
	}
	return true
}

func (h *authHook) checkConnect(cl *mqtt.Client, pk packets.Packet) error {
	id, admin, err := h.identity(cl)
	if err != nil || admin {
		return err
	}
	if cid := string(pk.Connect.ClientIdentifier); h.cloudID != "" && cid == h.cloudID {
		return fmt.Errorf("client id %q is the cloud's own; truck %q may not use it", cid, id)
	}
	if cid := string(pk.Connect.ClientIdentifier); cid != id && cid != gatewayClientPrefix+id {
		return fmt.Errorf("client id %q: truck %q must use %q or %q", cid, id, id, gatewayClientPrefix+id)
	}
	if pk.Connect.WillFlag && pk.Connect.WillTopic != uplink.Topic(id, uplink.KindStatus) {
		return fmt.Errorf("will topic %q: truck %q may only name its own status topic", pk.Connect.WillTopic, id)
	}
	return nil
}

func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	ok, id := h.allowed(cl, topic, write)
	if ok {
		return true
	}
	if write {
		h.cnt.deniedPublishes.Add(1)
		h.warn("publish", "publish refused", "client", cl.ID, "truck", id, "topic", topic)
	} else {
		h.cnt.deniedSubscribes.Add(1)
		h.warn("subscribe", "subscribe refused", "client", cl.ID, "truck", id, "filter", topic)
	}
	return false
}

func (h *authHook) allowed(cl *mqtt.Client, topic string, write bool) (bool, string) {
	id, admin, err := h.identity(cl)
	switch {
	case admin:
		return true, id
	case err != nil:
		return false, id
	}
	return truckMay(id, topic, write), id
}

// truckMay reports whether truck id may publish to (write) or subscribe
// with (read) topic: its own up/telemetry, up/alerts, up/dtc and status
// topics, and exactly its own cmd and durable topics.
func truckMay(id, topic string, write bool) bool {
	if !write {
		return topic == uplink.Topic(id, uplink.KindCommand) || topic == uplink.Topic(id, uplink.KindDurable)
	}
	switch topic {
	case uplink.Topic(id, uplink.KindTelemetry), uplink.Topic(id, uplink.KindAlerts), uplink.Topic(id, uplink.KindStatus),
		uplink.Topic(id, uplink.KindDTC):
		return true
	}
	return false
}

// warn logs a refusal, at most once per second per kind.
func (h *authHook) warn(kind, msg string, args ...any) {
	if h.thr.allow(kind) {
		h.log.Warn(msg, args...)
	}
}

// limitHook counts clients disconnected for oversized packets.
type limitHook struct {
	mqtt.HookBase
	cnt *counters
	log *slog.Logger
	thr throttle
}

func (*limitHook) ID() string { return "limits" }

func (*limitHook) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *limitHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.cnt.oversized.Add(1)
		if h.thr.allow("oversized") {
			h.log.Warn("client disconnected: packet too large", "client", cl.ID, "remote", cl.Net.Remote)
		}
	}
}

// throttle allows one event per key per second. Safe for concurrent use;
// the zero value is ready.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (t *throttle) allow(key string) bool {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if now.Sub(t.last[key]) < time.Second {
		return false
	}
	t.last[key] = now
	return true
}
