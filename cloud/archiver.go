package cloud

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/store"
	"github.com/abc4logistics/tankguard/uplink"
)

// stagedLimits bounds decoding of the cloud's own staged records, which
// were checked against Config.Limits on the way in.
var stagedLimits = uplink.Limits{MaxPayload: 1 << 30, MaxRecords: 1 << 30}

// maxFlushBytes bounds the staged bytes one flush covers (about four
// million readings in the binary wire format), and so the archiver's
// memory, whatever Config.FlushBytes says.
const maxFlushBytes = 8 << 20

// archiver moves staged records from the database to the archive. Its run
// loop is the only goroutine flushing.
type archiver struct {
	cfg     Config
	log     *slog.Logger
	db      *store.DB
	st      archive.Store
	cnt     *counters
	kick    chan struct{}
	pending int               // staged bytes since the last flush; owned by the ingest goroutine via staged
	rows    []archive.Reading // reused between flushes; owned by the flushing goroutine

	mu        sync.Mutex
	memo      map[uint64]stagedBatch // decoded staged records, by id (see remember)
	memoCount int                    // records (readings, alerts, acks) in memo
}

// maxMemo bounds the records kept decoded for the next flush.
const maxMemo = 4 << 20

// remember keeps a committed staged record decoded for the next flush,
// saving the decode (while memory allows; otherwise flush decodes).
func (a *archiver) remember(id uint64, sb stagedBatch) {
	b := sb.b
	n := len(b.Readings) + len(b.Alerts) + len(b.Acks)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.memoCount+n > maxMemo {
		return
	}
	if a.memo == nil {
		a.memo = map[uint64]stagedBatch{}
	}
	a.memo[id] = sb
	a.memoCount += n
}

// forget drops remembered records with ids up to last: those a flush read
// from the database because remember came after it.
func (a *archiver) forget(last uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, sb := range a.memo {
		if id <= last {
			delete(a.memo, id)
			a.memoCount -= len(sb.b.Readings) + len(sb.b.Alerts) + len(sb.b.Acks)
		}
	}
}

// recall returns and forgets the decoded record id, if remembered.
func (a *archiver) recall(id uint64) (stagedBatch, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sb, ok := a.memo[id]
	if ok {
		delete(a.memo, id)
		a.memoCount -= len(sb.b.Readings) + len(sb.b.Alerts) + len(sb.b.Acks)
	}
	return sb, ok
}

func newArchiver(cfg Config, log *slog.Logger, db *store.DB, st archive.Store, cnt *counters) *archiver {
	return &archiver{cfg: cfg, log: log, db: db, st: st, cnt: cnt, kick: make(chan struct{}, 1)}
}

// staged is called by ingest after each commit with the bytes it staged;
// it starts a flush once FlushBytes have accumulated.
func (a *archiver) staged(n int) {
	a.pending += n
	if a.pending >= min(a.cfg.FlushBytes, maxFlushBytes) {
		a.pending = 0
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// flushSoon starts a flush without waiting for the interval.
func (a *archiver) flushSoon() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// run flushes every FlushInterval, or sooner when kicked, until ctx ends.
// Archive errors are logged, counted and retried: the records stay staged.
func (a *archiver) run(ctx context.Context) error {
	tick := time.NewTicker(a.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.kick:
		}
		if err := a.flushAll(ctx); err != nil && ctx.Err() == nil {
			a.cnt.archiveErrors.Add(1)
			a.log.Error("archive flush failed; will retry", "err", err)
		}
	}
}

// flushAll writes every staged record to the archive.
func (a *archiver) flushAll(ctx context.Context) error {
	for {
		ok, err := a.flushOne(ctx)
		if err != nil || !ok {
			return err
		}
	}
}

// flushOne archives one range of staged records. A range begun before a
// crash is redone with the same object names, overwriting partial work.
func (a *archiver) flushOne(ctx context.Context) (bool, error) {
	first, last, ok, err := a.db.BeginFlush(min(a.cfg.FlushBytes, maxFlushBytes))
	if err != nil || !ok {
		return false, err
	}
	b := archive.Batch{Readings: a.rows[:0]}
	defer func() { a.rows = b.Readings[:0] }()
	err = a.db.Staged(first, last, func(id uint64, v []byte) error {
		if sb, ok := a.recall(id); ok {
			a.addRows(&b, sb, id)
			return nil
		}
		if len(v) == 0 {
			a.corrupt(id, fmt.Errorf("empty record"))
			return nil
		}
		if v[0] == stagedDTC {
			r, err := uplink.DecodeDTCReport(v[1:])
			if err != nil {
				a.corrupt(id, err)
				return nil
			}
			b.DTCs = append(b.DTCs, archive.DTCRows(r)...)
			return nil
		}
		if v[0] == stagedIncident {
			var inc incident.Incident
			if err := json.Unmarshal(v[1:], &inc); err != nil {
				a.corrupt(id, err)
				return nil
			}
			b.Incidents = append(b.Incidents, incidentRow(&inc))
			return nil
		}
		sb := stagedBatch{kind: v[0]}
		body := v[1:]
		if sb.kind == stagedQuarantine {
			if len(body) < 8 {
				a.corrupt(id, fmt.Errorf("quarantine record of %d bytes", len(v)))
				return nil
			}
			sb.received, body = int64(binary.BigEndian.Uint64(body)), body[8:]
		}
		batch, err := uplink.Decode(body, stagedLimits)
		if err != nil {
			a.corrupt(id, err)
			return nil
		}
		sb.b = batch
		a.addRows(&b, sb, id)
		return nil
	})
	if err != nil {
		return false, err
	}
	st, err := archive.Write(ctx, a.st, archive.Stem(a.db.Instance(), first, last), &b)
	if err != nil {
		return false, fmt.Errorf("archive flush %d-%d: %w", first, last, err)
	}
	if err := a.db.FinishFlush(first, last); err != nil {
		return false, err
	}
	a.forget(last)
	a.cnt.archiveObjects.Add(uint64(st.Objects))
	a.cnt.archiveRows.Add(uint64(st.Rows))
	a.cnt.archiveBytes.Add(uint64(st.Bytes))
	a.log.Debug("archived", "first", first, "last", last, "objects", st.Objects, "rows", st.Rows, "bytes", st.Bytes)
	return true, nil
}

// addRows appends the archive rows of one staged record to b.
func (a *archiver) addRows(b *archive.Batch, sb stagedBatch, id uint64) {
	batch := sb.b
	switch sb.kind {
	case stagedQuarantine:
		for _, r := range batch.Readings {
			b.Quarantined = append(b.Quarantined, archive.QuarantinedRow(batch.Truck, r, sb.received))
		}
	case stagedEdge:
		for _, r := range batch.Readings {
			b.Readings = append(b.Readings, archive.ReadingRow(batch.Truck, r))
		}
		for _, t := range batch.Alerts {
			if t.Truck == "" {
				t.Truck = batch.Truck
			}
			b.Alerts = append(b.Alerts, archive.AlertRow(archive.SourceEdge, t))
		}
		for _, k := range batch.Acks {
			if k.Truck == "" {
				k.Truck = batch.Truck
			}
			b.Acks = append(b.Acks, archive.AckRow(k))
		}
	case stagedCloud:
		for _, t := range batch.Alerts {
			b.Alerts = append(b.Alerts, archive.AlertRow(archive.SourceCloud, t))
		}
	default:
		a.corrupt(id, fmt.Errorf("unknown kind %q", sb.kind))
	}
}

// stageIncident stages inc's new state for the archive, inside the
// transaction that changed it.
func stageIncident(tx *bolt.Tx, inc *incident.Incident) error {
	v, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	return store.StageTx(tx, append([]byte{stagedIncident}, v...))
}

func incidentRow(inc *incident.Incident) archive.Incident {
	ns := func(t *time.Time) int64 {
		if t == nil {
			return 0
		}
		return t.UnixNano()
	}
	changed := inc.OpenedAt
	if n := len(inc.History); n > 0 {
		changed = inc.History[n-1].At
	}
	for _, d := range inc.Notifications {
		if d.At.After(changed) {
			changed = d.At
		}
	}
	hist, _ := json.Marshal(struct {
		History       []incident.Event    `json:"history"`
		Notifications []incident.Delivery `json:"notifications"`
	}{inc.History, inc.Notifications})
	return archive.Incident{
		ID: inc.ID, Truck: inc.Truck, Signal: inc.Signal, Kind: inc.Kind, Severity: inc.Severity, State: inc.State,
		Sources: strings.Join(inc.SourceNames(), ","), StartNS: inc.Start.UnixNano(), OpenedNS: inc.OpenedAt.UnixNano(),
		AckedBy: inc.AckedBy, AckedNS: ns(inc.AckedAt), ResolvedBy: inc.ResolvedBy, ResolvedNS: ns(inc.ResolvedAt),
		Escalated: inc.Escalated, Notified: int32(inc.Notified), ChangedNS: changed.UnixNano(), HistoryJSON: string(hist),
	}
}

func (a *archiver) corrupt(id uint64, err error) {
	a.cnt.stagedCorrupt.Add(1)
	a.log.Error("staged record skipped", "id", id, "err", err)
}
