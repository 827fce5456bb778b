package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/buffer"
)

// queue is the part of *buffer.Queue the publisher needs.
type queue interface {
	Read(lane buffer.Lane, from uint64, max int) (buffer.Chunk, error)
	Delete(lane buffer.Lane, first, last uint64) error
	Changed() <-chan struct{}
	Stats() buffer.Stats
}

// Status payloads on the retained status topic.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// State is what the cab display shows about the uplink.
type State struct {
	Online bool
	// Since is when Online last changed.
	Since time.Time
	// BacklogReadings and BacklogPriority are the readings, and alerts
	// plus acks, stored and not yet acknowledged by the broker.
	BacklogReadings int
	BacklogPriority int
	// OldestUnsentAge is the age of the oldest stored record.
	OldestUnsentAge time.Duration
	// LastError is the last connection or publish error, "" if none.
	LastError string

	Connects        uint64 // successful connections
	ConnectFailures uint64 // failed connection attempts
	Batches         uint64 // batches acknowledged by the broker
	Records         uint64 // records acknowledged by the broker
	Bytes           uint64 // payload bytes acknowledged by the broker
	Dropped         uint64 // records dropped because they cannot be encoded (ErrUnsendable)
	// Unconfirmed is the records published and not yet deleted: waiting
	// for the broker's PUBACK or (Config.Confirm) the cloud's
	// confirmation. Bounded by Window telemetry batches plus the
	// priority lane.
	Unconfirmed int
	// Confirmations counts payload ids the cloud confirmed durable;
	// BadConfirmations confirmation messages that failed DecodeDurable;
	// ConfirmTimeouts the times no confirmation came within
	// ConfirmTimeout and everything unconfirmed was sent again.
	Confirmations, BadConfirmations, ConfirmTimeouts uint64

	CommandsReceived  uint64 // valid commands passed to Commands()
	CommandsRejected  uint64 // command payloads that failed DecodeCommand
	CommandsDuplicate uint64 // commands ignored because their ID was seen recently
	CommandsDropped   uint64 // valid commands dropped because Commands() was not drained
}

// Publisher sends the queue's records to the broker and deletes them once
// the cloud confirmed them durable (Config.Confirm; see PROTOCOL.md,
// "Delivery"), or, without Confirm, once the broker acknowledged them
// (QoS 1 PUBACK). Create it with
// NewPublisher and run it with Run; State and Commands are safe for
// concurrent use.
type Publisher struct {
	cfg Config
	q   queue
	log *slog.Logger

	mu        sync.Mutex
	st        State
	cmds      chan Command
	cmdClosed bool
	seenIDs   map[string]struct{}
	seenOrder []string
	dtc       *DTCReport    // latest set by SetDTCs; under mu
	dtcSent   bool          // dtc acknowledged by the broker; under mu
	dtcFails  int           // sessions in a row that ended with dtc unacknowledged; under mu
	dtcOff    bool          // DTC reports given up on (dtcFailed); under mu
	dtcKick   chan struct{} // wakes runDTCs, capacity 1
	// confirmed holds payload ids the cloud confirmed durable and no
	// flight has claimed yet (a confirmation may come before the PUBACK,
	// or after a reconnect), oldest first in confirmedOrder, bounded.
	confirmed      map[uint64]struct{}
	confirmedOrder []uint64
	confirmWake    chan struct{}
}

// keepConfirmed bounds the unclaimed confirmations remembered.
const keepConfirmed = 4096

// commandBuffer is the capacity of the Commands channel.
const commandBuffer = 64

// seenCommands is how many recent command IDs are remembered for dedup.
const seenCommands = 256

// NewPublisher returns a publisher for q. It does not connect; Run does.
// log may be nil.
func NewPublisher(cfg Config, q queue, log *slog.Logger) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if q == nil {
		return nil, errors.New("uplink: nil queue")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg = cfg.withDefaults()
	p := &Publisher{cfg: cfg, q: q, log: log.With("component", "uplink", "truck", cfg.Truck),
		cmds: make(chan Command, commandBuffer), seenIDs: map[string]struct{}{}, dtcKick: make(chan struct{}, 1),
		confirmed: map[uint64]struct{}{}, confirmWake: make(chan struct{}, 1)}
	p.st.Since = cfg.Now()
	return p, nil
}

// State returns a snapshot of the uplink's state and counters.
func (p *Publisher) State() State {
	qs := p.q.Stats()
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	st.BacklogReadings = qs.Readings
	st.BacklogPriority = qs.Alerts + qs.Acks
	st.OldestUnsentAge = qs.OldestAge
	return st
}

func (p *Publisher) setOnline(on bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.Online != on {
		p.st.Online = on
		p.st.Since = p.cfg.Now()
	}
	if on {
		p.st.Connects++
	}
	if err != nil {
		p.st.LastError = err.Error()
	}
}

// Commands returns the channel of valid, de-duplicated commands from the
// cloud (the cmd topic). The gateway must drain it; commands arriving
// while it holds commandBuffer (64) undrained ones are dropped and counted.
// It is closed when Run returns.
func (p *Publisher) Commands() <-chan Command { return p.cmds }

// onCommand handles one message on the cmd topic.
func (p *Publisher) onCommand(payload []byte) {
	c, err := DecodeCommand(payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.st.CommandsRejected++
		p.log.Warn("uplink: rejected command", "bytes", len(payload), "rejected_total", p.st.CommandsRejected, "error", err)
		return
	}
	if _, dup := p.seenIDs[c.ID]; dup {
		p.st.CommandsDuplicate++
		return
	}
	if len(p.seenOrder) >= seenCommands {
		delete(p.seenIDs, p.seenOrder[0])
		p.seenOrder = p.seenOrder[1:]
	}
	p.seenIDs[c.ID] = struct{}{}
	p.seenOrder = append(p.seenOrder, c.ID)
	if p.cmdClosed {
		return
	}
	select {
	case p.cmds <- c:
		p.st.CommandsReceived++
	default:
		p.st.CommandsDropped++
		p.log.Error("uplink: command dropped, Commands() not drained", "id", c.ID, "type", c.Type)
	}
}

// onDurable handles one confirmation on the durable topic.
func (p *Publisher) onDurable(payload []byte) {
	ids, err := DecodeDurable(payload)
	p.mu.Lock()
	if err != nil {
		p.st.BadConfirmations++
		p.mu.Unlock()
		p.log.Warn("uplink: rejected durable confirmation", "bytes", len(payload), "error", err)
		return
	}
	for _, id := range ids {
		if _, ok := p.confirmed[id]; ok {
			continue
		}
		if len(p.confirmedOrder) >= keepConfirmed {
			delete(p.confirmed, p.confirmedOrder[0])
			p.confirmedOrder = p.confirmedOrder[1:]
		}
		p.confirmed[id] = struct{}{}
		p.confirmedOrder = append(p.confirmedOrder, id)
	}
	p.st.Confirmations += uint64(len(ids))
	p.mu.Unlock()
	select {
	case p.confirmWake <- struct{}{}:
	default:
	}
}

// claimConfirmed reports whether every id was confirmed, and if so
// forgets them.
func (p *Publisher) claimConfirmed(ids []uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if _, ok := p.confirmed[id]; !ok {
			return false
		}
	}
	for _, id := range ids {
		delete(p.confirmed, id)
	}
	if len(p.confirmed) == 0 {
		p.confirmedOrder = p.confirmedOrder[:0]
	}
	return true
}

// Run connects, publishes until ctx is done, and reconnects with
// exponential backoff and jitter whenever the connection fails. It returns
// nil when ctx is cancelled, after publishing the retained offline status
// if it can.
//
// Run must be called once.
func (p *Publisher) Run(ctx context.Context) error {
	defer func() {
		p.mu.Lock()
		p.cmdClosed = true
		close(p.cmds)
		p.mu.Unlock()
	}()
	attempt := 0
	for ctx.Err() == nil {
		c, lost, err := p.connect(ctx)
		if err != nil && ctx.Err() != nil {
			break // shutting down, not a failure
		}
		if err != nil {
			p.mu.Lock()
			p.st.ConnectFailures++
			p.st.LastError = err.Error()
			p.mu.Unlock()
			d := p.backoff(attempt)
			attempt++
			p.log.Warn("uplink connect failed", "broker", p.cfg.BrokerURL, "retry_in", d, "error", err)
			if !sleep(ctx, d) {
				break
			}
			continue
		}
		attempt = 0
		p.setOnline(true, nil)
		p.log.Info("uplink connected", "broker", p.cfg.BrokerURL)
		dtcCtx, stopDTC := context.WithCancel(ctx)
		dtcDone := make(chan struct{})
		go func() { defer close(dtcDone); p.runDTCs(dtcCtx, c) }()
		err = p.session(ctx, c, lost)
		stopDTC()
		<-dtcDone
		p.setOnline(false, err)
		if ctx.Err() != nil {
			p.goodbye(c)
			break
		}
		c.Disconnect(0)
		d := p.backoff(0)
		p.log.Warn("uplink connection lost", "retry_in", d, "error", err)
		if !sleep(ctx, d) {
			break
		}
	}
	return nil
}

// goodbye publishes the retained offline status and disconnects cleanly.
func (p *Publisher) goodbye(c mqtt.Client) {
	t := c.Publish(Topic(p.cfg.Truck, KindStatus), 1, true, StatusOffline)
	t.WaitTimeout(time.Second)
	c.Disconnect(250)
}

// backoff returns the wait before reconnect attempt n: exponential from
// ReconnectMin to ReconnectMax, drawn at random from [d/2, d].
func (p *Publisher) backoff(n int) time.Duration {
	d := p.cfg.ReconnectMin
	for i := 0; i < n && d < p.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.ReconnectMax)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lostConn is closed by paho's connection-lost handler.
type lostConn struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func (p *Publisher) connect(ctx context.Context) (mqtt.Client, *lostConn, error) {
	lost := &lostConn{ch: make(chan struct{})}
	o := mqtt.NewClientOptions()
	o.AddBroker(p.cfg.BrokerURL)
	o.SetClientID(p.cfg.ClientID)
	if p.cfg.Username != "" {
		o.SetUsername(p.cfg.Username)
		o.SetPassword(p.cfg.Password)
	}
	if p.cfg.TLS != nil {
		o.SetTLSConfig(p.cfg.TLS)
	}
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(p.cfg.ConnectTimeout)
	o.SetKeepAlive(p.cfg.KeepAlive)
	o.SetPingTimeout(p.cfg.ConnectTimeout)
	o.SetWriteTimeout(p.cfg.PublishTimeout)
	o.SetOrderMatters(false)
	o.SetWill(Topic(p.cfg.Truck, KindStatus), StatusOffline, 1, true)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		lost.once.Do(func() { lost.err = err; close(lost.ch) })
	})
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !waitToken(ctx, tok, p.cfg.ConnectTimeout+time.Second) {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("uplink connect %s: timeout", p.cfg.BrokerURL)
	}
	if err := tok.Error(); err != nil {
		return nil, nil, fmt.Errorf("uplink connect %s: %w", p.cfg.BrokerURL, err)
	}
	st := c.Publish(Topic(p.cfg.Truck, KindStatus), 1, true, StatusOnline)
	if !waitToken(ctx, st, p.cfg.PublishTimeout) || st.Error() != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("uplink connect %s: publish online status: %v", p.cfg.BrokerURL, st.Error())
	}
	sub := c.Subscribe(Topic(p.cfg.Truck, KindCommand), 1, func(_ mqtt.Client, m mqtt.Message) {
		p.onCommand(m.Payload())
	})
	if !waitToken(ctx, sub, p.cfg.PublishTimeout) || sub.Error() != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("uplink connect %s: subscribe %s: %v", p.cfg.BrokerURL, KindCommand, sub.Error())
	}
	if p.cfg.Confirm {
		sub := c.Subscribe(Topic(p.cfg.Truck, KindDurable), 1, func(_ mqtt.Client, m mqtt.Message) {
			p.onDurable(m.Payload())
		})
		if !waitToken(ctx, sub, p.cfg.PublishTimeout) || sub.Error() != nil {
			c.Disconnect(0)
			return nil, nil, fmt.Errorf("uplink connect %s: subscribe %s: %v", p.cfg.BrokerURL, KindDurable, sub.Error())
		}
	}
	return c, lost, nil
}

func waitToken(ctx context.Context, t mqtt.Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}
