package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// link stands for one truck's mobile coverage: the truck's gateway
// reaches the broker through it, and the demo can take it down (out of
// coverage: connections are dropped and new ones refused) and back up.
// Its methods are safe for concurrent use.
type link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newLink listens on a free loopback port and forwards to target.
func newLink(target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is where the gateway connects.
func (l *link) Addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.forward(c)
		}()
	}
}

// forward pipes c to a new connection to the target until either ends or
// the link goes down.
func (l *link) forward(c net.Conn) {
	defer c.Close()
	if l.isDown() {
		return
	}
	up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
	if err != nil {
		return // the cloud is stopped: the gateway retries
	}
	defer up.Close()
	if !l.track(c, up) {
		return
	}
	defer l.untrack(c, up)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

func (l *link) isDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down
}

func (l *link) track(cs ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return false
	}
	for _, c := range cs {
		l.conns[c] = struct{}{}
	}
	return true
}

func (l *link) untrack(cs ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		delete(l.conns, c)
	}
}

// setDown takes the link down (dropping its connections) or back up. It
// reports whether that changed anything.
func (l *link) setDown(down bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down == down {
		return false
	}
	l.down = down
	if down {
		for c := range l.conns {
			c.Close()
		}
	}
	return true
}

// close stops the link and waits for its goroutines.
func (l *link) close() {
	l.ln.Close()
	l.setDown(true)
	l.wg.Wait()
}
