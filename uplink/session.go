package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/buffer"
)

// maxPriorityRead is the most alerts and acks read into one batch.
const maxPriorityRead = 512

// flight is one chunk of the queue published and awaiting PUBACKs.
type flight struct {
	lane        buffer.Lane
	first, last uint64
	toks        []mqtt.Token
	ids         []uint64 // PayloadID of each payload, for Config.Confirm
	records     int
	bytes       int
	sent        time.Time
	acked       time.Time // when the last PUBACK came (zero before)
}

// errPublishTimeout reports a PUBACK that did not come in time.
var errPublishTimeout = errors.New("no PUBACK within publish timeout")

// errConfirmTimeout reports a cloud confirmation that did not come in time.
var errConfirmTimeout = errors.New("no durable confirmation from the cloud within confirm timeout")

// session publishes over one connection until it fails or ctx is done.
// Every session starts reading both lanes from their beginning: what the
// previous connection published without PUBACK is sent again (the cloud
// drops duplicates by (truck, seq)).
func (p *Publisher) session(ctx context.Context, c mqtt.Client, lost *lostConn) error {
	var (
		cursor   [2]uint64
		inflight []*flight
		waitFrom time.Time // when a partial telemetry batch was first seen
		lastTel  time.Time // when the last telemetry batch was published
		// catchingUp: the telemetry lane held a backlog (session start,
		// or the last batch was full), so a partial batch is its tail
		// and goes at once instead of waiting BatchDelay.
		catchingUp = true
		telAfter   = time.NewTimer(time.Hour)
		ackTimer   = time.NewTimer(time.Hour)
	)
	defer telAfter.Stop()
	defer ackTimer.Stop()
	telemetryInflight := func() int {
		n := 0
		for _, f := range inflight {
			if f.lane == buffer.Telemetry {
				n++
			}
		}
		return n
	}
	for {
		changed := p.q.Changed()
		// 1. The priority lane, all of it, before any telemetry.
		for {
			ch, err := p.q.Read(buffer.Priority, cursor[buffer.Priority], maxPriorityRead)
			if err != nil {
				return fmt.Errorf("uplink read priority: %w", err)
			}
			if ch.Len() == 0 && ch.Skipped == 0 {
				break
			}
			f, err := p.publish(c, ch)
			if err != nil {
				return err
			}
			cursor[buffer.Priority] = ch.Last + 1
			inflight = append(inflight, f)
		}
		// 2. One telemetry batch if the window has room; then back to the
		// priority lane, so an alert never waits behind a whole window of
		// batches being read and encoded.
		sent := false
		if wait := p.cfg.MinPublishInterval - p.cfg.Now().Sub(lastTel); wait > 0 {
			resetTimer(telAfter, wait)
		} else if telemetryInflight() < p.cfg.Window {
			ch, err := p.q.Read(buffer.Telemetry, cursor[buffer.Telemetry], p.cfg.MaxBatchReadings)
			if err != nil {
				return fmt.Errorf("uplink read telemetry: %w", err)
			}
			now := p.cfg.Now()
			full := ch.Len() >= p.cfg.MaxBatchReadings
			switch {
			case ch.Len() == 0 && ch.Skipped == 0:
				// Caught up: from now on readings are live.
				waitFrom = time.Time{}
				catchingUp = false
			case !full && !catchingUp && waitFrom.IsZero():
				waitFrom = now
				fallthrough
			case !full && !catchingUp && p.cfg.BatchDelay-now.Sub(waitFrom) > 0:
				resetTimer(telAfter, p.cfg.BatchDelay-now.Sub(waitFrom))
			default:
				f, err := p.publish(c, ch)
				if err != nil {
					return err
				}
				cursor[buffer.Telemetry] = ch.Last + 1
				inflight = append(inflight, f)
				waitFrom = time.Time{}
				catchingUp = full
				sent = true
				lastTel = now
			}
		}
		var err error
		if inflight, err = p.retire(inflight); err != nil {
			return err
		}
		if sent {
			continue
		}
		p.setUnconfirmed(inflight)
		// 3. Wait for something to do. Keep watching the queue even with
		// a full window: a new alert must go out without waiting for
		// telemetry PUBACKs.
		var oldest <-chan struct{}
		confirmWait := false
		if len(inflight) > 0 {
			f := inflight[0]
			if len(f.toks) > 0 {
				oldest = f.toks[0].Done()
				resetTimer(ackTimer, p.cfg.PublishTimeout-p.cfg.Now().Sub(f.sent))
			} else {
				// Every PUBACK is in; the cloud has not confirmed yet.
				confirmWait = true
				resetTimer(ackTimer, p.cfg.ConfirmTimeout-p.cfg.Now().Sub(f.acked))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lost.ch:
			return fmt.Errorf("uplink: connection lost: %w", lost.err)
		case <-changed:
		case <-telAfter.C:
		case <-oldest:
		case <-p.confirmWake:
		case <-ackTimer.C:
			if len(inflight) == 0 {
				continue // armed for a flight since retired: nothing is late
			}
			if inflight, err = p.retire(inflight); err != nil {
				return err
			}
			if len(inflight) == 0 {
				continue
			}
			f := inflight[0]
			if confirmWait && len(f.toks) == 0 {
				if p.cfg.Now().Sub(f.acked) < p.cfg.ConfirmTimeout {
					continue
				}
				p.mu.Lock()
				p.st.ConfirmTimeouts++
				p.mu.Unlock()
				return fmt.Errorf("uplink publish %s %d..%d: %w", f.lane, f.first, f.last, errConfirmTimeout)
			}
			if len(f.toks) > 0 && p.cfg.Now().Sub(f.sent) >= p.cfg.PublishTimeout {
				return fmt.Errorf("uplink publish %s %d..%d: %w", f.lane, f.first, f.last, errPublishTimeout)
			}
		}
	}
}

// retire deletes, oldest first, every flight whose PUBACKs have all
// arrived, and returns the flights still waiting. A failed publish ends
// the session.
func (p *Publisher) retire(inflight []*flight) ([]*flight, error) {
	for len(inflight) > 0 {
		f := inflight[0]
		for len(f.toks) > 0 && isDone(f.toks[0]) {
			if err := f.toks[0].Error(); err != nil {
				return inflight, fmt.Errorf("uplink publish %s %d..%d: %w", f.lane, f.first, f.last, err)
			}
			f.toks = f.toks[1:]
		}
		if len(f.toks) > 0 {
			break
		}
		if f.acked.IsZero() {
			f.acked = p.cfg.Now()
		}
		if p.cfg.Confirm && len(f.ids) > 0 && !p.claimConfirmed(f.ids) {
			break // the broker has it; the cloud has not confirmed it durable yet
		}
		if err := p.q.Delete(f.lane, f.first, f.last); err != nil {
			return inflight, fmt.Errorf("uplink: delete acknowledged %s %d..%d: %w", f.lane, f.first, f.last, err)
		}
		p.mu.Lock()
		p.st.Batches++
		p.st.Records += uint64(f.records)
		p.st.Bytes += uint64(f.bytes)
		p.mu.Unlock()
		inflight = inflight[1:]
	}
	return inflight, nil
}

// setUnconfirmed records how many records wait in flight.
func (p *Publisher) setUnconfirmed(inflight []*flight) {
	n := 0
	for _, f := range inflight {
		n += f.records
	}
	p.mu.Lock()
	p.st.Unconfirmed = n
	p.mu.Unlock()
}

func isDone(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(max(d, 0))
}

// publish encodes ch (split into payloads of at most MaxPayload) and
// publishes it with QoS 1 on its lane's topic.
func (p *Publisher) publish(c mqtt.Client, ch buffer.Chunk) (*flight, error) {
	// The wire carries the truck once per batch: it is this gateway's.
	for i := range ch.Alerts {
		ch.Alerts[i].Truck = p.cfg.Truck
	}
	for i := range ch.Acks {
		ch.Acks[i].Truck = p.cfg.Truck
	}
	b := Batch{Truck: p.cfg.Truck, Readings: ch.Readings, Alerts: ch.Alerts, Acks: ch.Acks}
	kind := KindTelemetry
	if ch.Lane == buffer.Priority {
		kind = KindAlerts
	}
	topic := Topic(p.cfg.Truck, kind)
	f := &flight{lane: ch.Lane, first: ch.First, last: ch.Last, records: ch.Len(), sent: p.cfg.Now()}
	payloads, dropped, err := p.encodeSplit(b, nil)
	if err != nil {
		return nil, err
	}
	if dropped > 0 {
		p.mu.Lock()
		p.st.Dropped += uint64(dropped)
		p.mu.Unlock()
	}
	for _, pl := range payloads {
		f.toks = append(f.toks, c.Publish(topic, 1, false, pl))
		f.bytes += len(pl)
		if p.cfg.Confirm {
			f.ids = append(f.ids, PayloadID(pl))
		}
	}
	if len(f.toks) == 0 {
		// Everything in the chunk was undecodable or unencodable: nothing
		// to wait for, but the keys must still go.
		f.toks = append(f.toks, doneToken{})
	}
	return f, nil
}

// encodeSplit encodes b, halving it until every payload fits MaxPayload.
// A single record that cannot fit is logged, counted and dropped.
func (p *Publisher) encodeSplit(b Batch, out [][]byte) ([][]byte, int, error) {
	n := len(b.Readings) + len(b.Alerts) + len(b.Acks)
	if n == 0 {
		return out, 0, nil
	}
	pl, err := Encode(b)
	if err == nil && len(pl) <= p.cfg.MaxPayload {
		return append(out, pl), 0, nil
	}
	if n == 1 {
		if err == nil {
			err = fmt.Errorf("%d bytes > %d", len(pl), p.cfg.MaxPayload)
		}
		p.log.Error("uplink: dropping a record that cannot be sent", "error", fmt.Errorf("%w: %v", ErrUnsendable, err),
			"readings", len(b.Readings), "alerts", len(b.Alerts), "acks", len(b.Acks))
		return out, 1, nil
	}
	lo, hi := splitBatch(b)
	out, d1, err := p.encodeSplit(lo, out)
	if err != nil {
		return out, d1, err
	}
	out, d2, err := p.encodeSplit(hi, out)
	return out, d1 + d2, err
}

// splitBatch halves b by record count, readings first, then alerts, then
// acks, keeping each list in order. b must hold at least two records.
func splitBatch(b Batch) (lo, hi Batch) {
	lo.Truck, hi.Truck = b.Truck, b.Truck
	m := (len(b.Readings) + len(b.Alerts) + len(b.Acks)) / 2
	r := min(m, len(b.Readings))
	lo.Readings, hi.Readings = b.Readings[:r], b.Readings[r:]
	m -= r
	a := min(m, len(b.Alerts))
	lo.Alerts, hi.Alerts = b.Alerts[:a], b.Alerts[a:]
	m -= a
	lo.Acks, hi.Acks = b.Acks[:m], b.Acks[m:]
	return lo, hi
}

// doneToken is an already-completed mqtt.Token.
type doneToken struct{}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }
func (doneToken) Done() <-chan struct{}          { return closedCh }
func (doneToken) Error() error                   { return nil }
