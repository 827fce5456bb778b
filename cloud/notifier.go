package cloud

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/notify"
)

// notifier delivers the incident outbox to the channels and drives the
// incident timers. Its run loop owns the delivery goroutines.
type notifier struct {
	cfg     NotifyConfig
	log     *slog.Logger
	mgr     *incident.Manager
	senders []notify.Sender
	cnt     *counters

	mu       sync.Mutex
	inflight map[string]bool // incident ids being delivered
	wg       sync.WaitGroup
	again    chan struct{}
}

// newNotifier also has every incident change staged for the archive
// (incidents/), in the transaction that made it.
func newNotifier(cfg NotifyConfig, log *slog.Logger, mgr *incident.Manager, senders []notify.Sender, cnt *counters) *notifier {
	mgr.OnChangeTx(stageIncident)
	return &notifier{cfg: cfg, log: log, mgr: mgr, senders: senders, cnt: cnt, inflight: map[string]bool{}, again: make(chan struct{}, 1)}
}

func (n *notifier) run(ctx context.Context) error {
	defer n.wg.Wait()
	tick := time.NewTicker(n.cfg.Tick)
	defer tick.Stop()
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := n.mgr.Tick(time.Now()); err != nil {
				n.log.Error("incident timers", "err", err)
			}
		case <-n.mgr.Kick():
		case <-n.again:
		case <-wake.C:
		}
		if next := n.scan(ctx); next > 0 {
			wake.Reset(next)
		}
	}
}

// scan starts delivering every due outbox group whose incident is not
// already being delivered. It returns how long until the next group is
// due (0 if none waits).
func (n *notifier) scan(ctx context.Context) time.Duration {
	pending, err := n.mgr.Outbox()
	if err != nil {
		n.log.Error("notification outbox", "err", err)
		return time.Second
	}
	groups := map[string][]incident.Pending{}
	var order []string
	for _, p := range pending {
		id := p.Incident.ID
		if groups[id] == nil {
			order = append(order, id)
		}
		groups[id] = append(groups[id], p)
	}
	var next time.Duration
	now := time.Now()
	for _, id := range order {
		g := groups[id]
		due := g[len(g)-1].At.Add(n.cfg.GroupWait)
		if wait := due.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		n.mu.Lock()
		busy := n.inflight[id]
		n.inflight[id] = true
		n.mu.Unlock()
		if busy {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deliver(ctx, id, g)
			n.mu.Lock()
			delete(n.inflight, id)
			n.mu.Unlock()
			select {
			case n.again <- struct{}{}:
			default:
			}
		}()
	}
	return next
}

// deliver sends one incident's pending notifications as one (the latest
// state, listing every grouped event) to each channel, then records the
// outcome. If ctx ends first nothing is recorded: the outbox keeps them.
func (n *notifier) deliver(ctx context.Context, id string, g []incident.Pending) {
	note := grouped(g)
	seqs := make([]uint64, 0, len(g))
	for _, p := range g {
		seqs = append(seqs, p.Seq)
	}
	retry := notify.Retry{Attempts: n.cfg.Attempts, Initial: n.cfg.RetryInitial, Max: n.cfg.RetryMax}
	type result struct {
		s        notify.Sender
		attempts int
		err      error
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	for _, s := range n.senders {
		if s.Escalation() && !note.Escalation {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := notify.Deliver(ctx, s, note, retry)
			mu.Lock()
			results = append(results, result{s, a, err})
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	now := time.Now().UTC()
	var ds []incident.Delivery
	var dead []incident.DeadLetter
	for _, r := range results {
		d := incident.Delivery{Notification: note.ID, Event: note.Event, Channel: r.s.Name(), At: now, Attempts: r.attempts, Result: "ok"}
		if r.err != nil {
			d.Result = r.err.Error()
			dead = append(dead, incident.DeadLetter{Notification: note, Channel: r.s.Name(), Attempts: r.attempts, Error: r.err.Error(), At: now})
			n.log.Error("notification dead-lettered", "incident", id, "channel", r.s.Name(), "attempts", r.attempts, "err", r.err)
		}
		ds = append(ds, d)
	}
	if err := n.mgr.Delivered(id, seqs, ds, dead); err != nil {
		n.log.Error("recording notification outcome", "incident", id, "err", err)
		return
	}
	// Counted once recorded, so a reader of the counters finds the records.
	n.cnt.notifyDead.Add(uint64(len(dead)))
	n.cnt.notifySent.Add(uint64(len(ds) - len(dead)))
}

// grouped folds one incident's pending notifications into the one sent:
// the latest state, every grouped event in Events, and as Event the
// latest, except that a group holding the incident's first notification
// is "opened" (a receiver filtering on opened must see every new
// incident, even one that got worse within the group wait).
func grouped(g []incident.Pending) incident.Notification {
	note := g[len(g)-1].Notification
	note.Events = nil
	for _, p := range g {
		note.Events = append(note.Events, p.Events...)
		note.Escalation = note.Escalation || p.Escalation
		if p.Event == incident.EventOpened {
			note.Event = incident.EventOpened
		}
	}
	return note
}
