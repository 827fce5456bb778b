package broker

import (
	"context"
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running embedded MQTT broker. Its methods are safe for
// concurrent use.
type Broker struct {
	srv *mqtt.Server
	tcp *listeners.TCP
}

// Start binds listen (host:port; port 0 picks a free one) and serves MQTT
// on it until Close. Any client may connect: the broker listens on the
// addresses the operator chose.
func Start(listen string, log *slog.Logger) (*Broker, error) {
	srv := mqtt.New(&mqtt.Options{
		Logger:       slog.New(levelHandler{log.Handler(), slog.LevelWarn}),
		InlineClient: false,
	})
	if err := srv.AddHook(new(allowHook), nil); err != nil {
		return nil, fmt.Errorf("broker start: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: listen})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker listen %s: %w", listen, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker serve: %w", err)
	}
	return &Broker{srv: srv, tcp: tcp}, nil
}

// Addr returns the bound host:port.
func (b *Broker) Addr() string { return b.tcp.Address() }

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// allowHook lets every client connect, publish and subscribe.
type allowHook struct{ mqtt.HookBase }

func (*allowHook) ID() string { return "allow-all" }

func (*allowHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (*allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// levelHandler drops records below min; mochi logs every connection at
// info level, which is noise at fleet scale.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(a), h.min}
}

func (h levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(n), h.min}
}
