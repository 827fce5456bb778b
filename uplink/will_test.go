package uplink

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// cutProxy forwards TCP connections to target and can cut them all
// abruptly, as a lost cellular link would.
type cutProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, no FIN handshake
		}
		c.Close()
	}
	p.conns = nil
}

func TestLastWillOnAbruptLossThenReconnect(t *testing.T) {
	br := startBroker(t, "127.0.0.1:0")
	px := newCutProxy(t, br.addr)
	q := openQueue(t)
	p := runPublisher(t, Config{BrokerURL: "tcp://" + px.l.Addr().String(), Truck: "T-w",
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond, KeepAlive: time.Second}, q)
	waitFor(t, 10*time.Second, "online", func() bool { return p.State().Online })
	px.cut()
	waitFor(t, 10*time.Second, "will published, then online again", func() bool {
		_, _, status, _ := br.snapshot()
		return len(status) >= 3 && status[0] == StatusOnline && status[1] == StatusOffline && status[2] == StatusOnline
	})
	waitFor(t, 10*time.Second, "reconnected state", func() bool { st := p.State(); return st.Connects >= 2 && st.Online })
}
