package uplink

import (
	"crypto/tls"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// allowAll lets every client connect and use every topic.
type allowAll struct{ mochi.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// testBroker is an in-process mochi broker on a loopback port with an
// inline subscriber that decodes everything the gateway sends.
type testBroker struct {
	t    testing.TB
	addr string
	srv  *mochi.Server
	tls  *tls.Config // server TLS, nil for plain TCP

	mu       sync.Mutex
	batches  []Batch // decoded, in arrival order, per topic kind
	kinds    []string
	status   []string
	decodeEr []error
	dtcs     []DTCReport // decoded up/dtc reports, in arrival order
	arrived  chan struct{}
}

// newLoopbackListener adds a TCP listener on a free loopback port to srv
// and returns its address.
func newLoopbackListener(t testing.TB, srv *mochi.Server) string {
	t.Helper()
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	return tcp.Address()
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker starts a broker on addr ("127.0.0.1:0" for any port).
func startBroker(t testing.TB, addr string) *testBroker {
	return startBrokerTLS(t, addr, nil)
}

// startBrokerTLS starts a broker whose listener uses tlsCfg.
func startBrokerTLS(t testing.TB, addr string, tlsCfg *tls.Config) *testBroker {
	t.Helper()
	b := &testBroker{t: t, arrived: make(chan struct{}, 1), tls: tlsCfg}
	b.start(addr)
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) start(addr string) {
	b.t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: discardLog()})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		b.t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: addr, TLSConfig: b.tls})
	var err error
	for i := 0; i < 50; i++ { // the old listener's port may linger briefly
		if err = srv.AddListener(tcp); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.t.Fatal(err)
	}
	b.addr = tcp.Address()
	err = srv.Subscribe(UpFilter, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		_, kind, err := ParseTopic(pk.TopicName)
		if err != nil {
			b.record(Batch{}, "", err)
			return
		}
		if kind == KindDTC {
			r, err := DecodeDTCReport(pk.Payload)
			b.mu.Lock()
			if err != nil {
				b.decodeEr = append(b.decodeEr, err)
			} else {
				b.dtcs = append(b.dtcs, r)
			}
			b.mu.Unlock()
			return
		}
		batch, err := Decode(pk.Payload, DefaultLimits())
		b.record(batch, kind, err)
	})
	if err != nil {
		b.t.Fatal(err)
	}
	err = srv.Subscribe(StatusFilter, 2, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		b.status = append(b.status, string(pk.Payload))
		b.mu.Unlock()
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

func (b *testBroker) record(batch Batch, kind string, err error) {
	b.mu.Lock()
	if err != nil {
		b.decodeEr = append(b.decodeEr, err)
	} else {
		b.batches = append(b.batches, batch)
		b.kinds = append(b.kinds, kind)
	}
	b.mu.Unlock()
	select {
	case b.arrived <- struct{}{}:
	default:
	}
}

func (b *testBroker) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *testBroker) url() string {
	if b.tls != nil {
		return "ssl://" + b.addr
	}
	return "tcp://" + b.addr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *testBroker) snapshot() (batches []Batch, kinds []string, status []string, errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Batch(nil), b.batches...), append([]string(nil), b.kinds...), append([]string(nil), b.status...), append([]error(nil), b.decodeEr...)
}
