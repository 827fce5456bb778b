package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running embedded MQTT broker. Its methods are safe for
// concurrent use.
type Broker struct {
	srv      *mqtt.Server
	tcp      *listeners.TCP
	tls      bool
	internal string    // unix socket path, or ""
	auth     *authHook // nil without TLS
	cnt      *counters
	revoked  *revocations // nil without RevokedFile
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Options configure a Broker.
type Options struct {
	// Listen is the TCP host:port; port 0 picks a free one.
	Listen string
	// Match selects the topics Intercept sees; nil matches none.
	Match func(topic string) bool
	// Intercept, if set, is called for every PUBLISH on a matching topic
	// before the broker acknowledges it to the publisher, from that
	// client's connection goroutine. If it returns an error the message is
	// not acknowledged and the client is disconnected, so it sends the
	// message again after reconnecting.
	Intercept func(topic string, payload []byte) error
	// TLS, if set, makes Listen a TLS listener that enforces per-truck
	// identity (see auth.go): every client presents a certificate signed
	// by TLS.ClientCAs whose identity (subject CN and DNS SANs, which
	// must agree) is a truck id, and may publish and subscribe only under
	// that truck's topics. Build it with ServerTLSConfig. Without TLS any
	// client may do anything (development on loopback only).
	TLS *tls.Config
	// Admins are certificate identities allowed to publish and subscribe
	// anywhere (the cloud's own client when it connects over TLS). A
	// certificate counts as an admin only if it also carries the cloud
	// role (subject OU CloudRole, as tankguard-ca cloud issues it); one
	// naming an admin identity without the role is refused.
	Admins []string
	// CloudClientID is the cloud's own MQTT client id (its persistent
	// session). With TLS, only the internal socket and admins may use it,
	// so no truck certificate can take over the cloud's session.
	CloudClientID string
	// RevokedFile, if set with TLS, is a PEM certificate revocation list
	// (X.509 CRL, as tankguard-ca revoke writes it) signed by RevokedCA.
	// A client whose certificate serial it lists fails the handshake, and
	// connected ones are disconnected when it changes. The broker re-reads
	// it when its size or modification time changes (checked every
	// RevokedPoll); a list that does not parse or verify is logged,
	// counted, and the previous one kept. A missing file means none revoked.
	RevokedFile string
	// RevokedCA is the PEM CA certificate(s) whose signature on the CRL
	// is accepted (the fleet CA).
	RevokedCA []byte
	// RevokedPoll is how often RevokedFile is checked (default 2s).
	RevokedPoll time.Duration
	// Internal, if set with TLS, is a unix socket path for the cloud's own
	// client: whoever can open it (file permissions 0600) is trusted.
	Internal string
	// MaxPacketSize bounds one MQTT packet; a client sending a larger one
	// is disconnected before the broker reads it, and counted. Default
	// DefaultMaxPacketSize; negative means no limit.
	MaxPacketSize int
}

// DefaultMaxPacketSize is the default Options.MaxPacketSize: a 128 KiB
// payload (the uplink and AWS IoT Core limit) plus room for the topic and
// headers.
const DefaultMaxPacketSize = 128<<10 + 4<<10

// Start binds opts.Listen and serves MQTT on it until Close. Any client
// may connect: the broker listens on the addresses the operator chose.
func Start(opts Options, log *slog.Logger) (*Broker, error) {
	mopts := &mqtt.Options{
		Logger:       slog.New(levelHandler{log.Handler(), slog.LevelWarn}),
		InlineClient: false,
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = DefaultMaxPacketSize
	}
	if opts.MaxPacketSize > 0 {
		mopts.Capabilities = mqtt.NewDefaultServerCapabilities()
		mopts.Capabilities.MaximumPacketSize = uint32(opts.MaxPacketSize)
	}
	srv := mqtt.New(mopts)
	b := &Broker{srv: srv, tls: opts.TLS != nil, cnt: new(counters), stop: make(chan struct{})}
	if opts.TLS != nil && opts.RevokedFile != "" {
		rv, err := newRevocations(opts.RevokedFile, opts.RevokedCA)
		if err != nil {
			return nil, fmt.Errorf("broker start: %w", err)
		}
		b.revoked = rv
	}
	if err := srv.AddHook(&limitHook{cnt: b.cnt, log: log}, nil); err != nil {
		return nil, fmt.Errorf("broker start: %w", err)
	}
	if opts.TLS != nil {
		b.auth = newAuthHook(opts, b.cnt, b.revoked, log)
		if err := srv.AddHook(b.auth, nil); err != nil {
			return nil, fmt.Errorf("broker start: %w", err)
		}
	} else if err := srv.AddHook(new(allowHook), nil); err != nil {
		return nil, fmt.Errorf("broker start: %w", err)
	}
	if opts.Intercept != nil && opts.Match != nil {
		if err := srv.AddHook(&interceptHook{opts: opts, log: log}, nil); err != nil {
			return nil, fmt.Errorf("broker start: %w", err)
		}
	}
	listen := opts.Listen
	var tc *tls.Config
	if opts.TLS != nil {
		var err error
		if tc, err = countingTLS(opts.TLS, b.cnt, b.revoked, log); err != nil {
			return nil, err
		}
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: listen, TLSConfig: tc})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker listen %s: %w", listen, err)
	}
	b.tcp = tcp
	if opts.TLS != nil && opts.Internal != "" {
		if err := srv.AddListener(listeners.NewUnixSock(listeners.Config{ID: internalListener, Address: opts.Internal})); err != nil {
			srv.Close()
			return nil, fmt.Errorf("broker listen %s: %w", opts.Internal, err)
		}
		b.internal = opts.Internal
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker serve: %w", err)
	}
	if b.internal != "" {
		if err := os.Chmod(b.internal, 0o600); err != nil {
			srv.Close()
			return nil, fmt.Errorf("broker internal socket: %w", err)
		}
	}
	if b.revoked != nil {
		poll := opts.RevokedPoll
		if poll <= 0 {
			poll = DefaultRevokedPoll
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.watchRevoked(poll, log)
		}()
	}
	return b, nil
}

// ClientURL is the URL the cloud's own MQTT client should dial: the
// internal unix socket when there is one, else the TCP (or TLS) listener.
func (b *Broker) ClientURL() string {
	switch {
	case b.internal != "":
		return "unix://" + b.internal
	case b.tls:
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Stats returns the broker's access-control and limit counters.
func (b *Broker) Stats() Stats {
	s := b.cnt.snapshot()
	if b.revoked != nil {
		s.RevocationListErrors = b.revoked.errs.Load()
	}
	return s
}

// Addr returns the bound host:port.
func (b *Broker) Addr() string { return b.tcp.Address() }

// Close disconnects every client and stops the broker.
//
// mochi v2.7.9's own listener close takes its client map's read lock twice
// (Clients.GetByListener calls Len), which deadlocks when a connecting
// client queues a write lock in between; it hung a flooded test's shutdown
// for minutes. So the listeners are closed here first, disconnecting
// their clients from a snapshot taken with a single read lock; the
// server's Close then finds them closed and skips that path.
func (b *Broker) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.wg.Wait()
	b.srv.Listeners.CloseAll(b.closeListenerClients)
	return b.srv.Close()
}

// closeListenerClients disconnects the clients of one listener.
func (b *Broker) closeListenerClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// allowHook lets every client connect, publish and subscribe.
type allowHook struct{ mqtt.HookBase }

func (*allowHook) ID() string { return "allow-all" }

func (*allowHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (*allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// interceptHook hands matching publishes to Options.Intercept before the
// broker acknowledges them.
type interceptHook struct {
	mqtt.HookBase
	opts Options
	log  *slog.Logger
}

func (*interceptHook) ID() string { return "intercept" }

func (*interceptHook) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *interceptHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !h.opts.Match(pk.TopicName) {
		return pk, nil
	}
	if err := h.opts.Intercept(pk.TopicName, pk.Payload); err != nil {
		h.log.Warn("publish not accepted; disconnecting client so it resends", "client", cl.ID, "topic", pk.TopicName, "err", err)
		cl.Stop(err)
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// levelHandler adapts mochi's logging: it drops records below min (mochi
// logs every connection at info level, which is noise at fleet scale),
// and names what mochi logs with an empty message (a client connection
// that ended in an error, from its listeners).
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// emptyMessage replaces the empty message of mochi's listener warnings.
const emptyMessage = "mqtt client connection ended with an error"

func (h levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		r.Message = emptyMessage
	}
	return h.Handler.Handle(ctx, r)
}

func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(a), h.min}
}

func (h levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(n), h.min}
}
