package cloud

import (
	"context"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/cloud/dedup"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/store"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

var errStopped = errors.New("cloud ingest stopped")

// Staged record kinds: the first byte of a staged record; the rest is an
// uplink-encoded batch.
const (
	stagedEdge     byte = 'E' // a gateway's batch, after dedup
	stagedCloud    byte = 'C' // the cloud's own alert transitions (Batch.Alerts only)
	stagedIncident byte = 'I' // an incident's new state, JSON (incident.Incident)
	stagedDTC      byte = 'D' // a truck's DTC report, JSON (uplink.DTCReport)
	// stagedQuarantine: readings whose event time is outside the accepted
	// bounds; then the receive time (8 bytes, big-endian Unix ns), then an
	// uplink-encoded batch of them.
	stagedQuarantine byte = 'Q'
)

// message is one uplinked MQTT message: a paho message, or one taken from
// the embedded broker before it acknowledges the publisher.
type message interface {
	Topic() string
	Payload() []byte
	// Ack is called once the message's data is durable (or it was rejected).
	Ack()
}

// hookMessage is a message intercepted in the embedded broker; the
// publisher's PUBACK waits for done.
type hookMessage struct {
	topic   string
	payload []byte
	done    chan struct{}
}

func (m *hookMessage) Topic() string   { return m.topic }
func (m *hookMessage) Payload() []byte { return m.payload }
func (m *hookMessage) Ack()            { close(m.done) }

// stagedBatch is a staged record before encoding.
type stagedBatch struct {
	kind     byte
	b        uplink.Batch
	received int64 // stagedQuarantine: receive time, Unix ns
}

// truckState is what ingest keeps per truck. Owned by the ingest goroutine.
type truckState struct {
	seen *dedup.Set
	det  *detect.Detector
}

// accepted is what one message contributed, published after its commit.
type accepted struct {
	truck    string
	readings []sensors.Reading
	edge     []detect.Transition
	cloud    []detect.Transition
	acks     []detect.Ack
}

// ingester turns MQTT messages into durable staged records. Its run loop
// is the only goroutine touching trucks.
type ingester struct {
	cfg    Config
	log    *slog.Logger
	db     *store.DB
	cnt    *counters
	thr    *throttle
	sink   sink
	msgs   chan message
	stop   chan struct{}
	inc    *incident.Manager // nil: no incidents
	trucks map[string]*truckState
	staged func(bytes int) // told how many bytes each commit staged
	// remember, if set, is given each committed staged record decoded, so
	// the archiver need not decode it again.
	remember func(id uint64, sb stagedBatch)
	nowFunc  func() time.Time
	dtcSeen  map[string]int64 // per truck, the time of the last DTC report staged; step's own
	// freeBytes reports the data disk's free space (diskFree by default).
	freeBytes func() (int64, error)
	// confirm, if set, is told after each commit which payloads of each
	// truck are now durable (or rejected for good), for the gateways'
	// end-to-end acknowledgement (uplink.KindDurable). It must not block.
	confirm func(truck string, ids []uint64)
}

// sink receives what ingest accepted, after it is durable.
type sink interface {
	Readings(truck string, rs []sensors.Reading, now time.Time)
	Status(truck string, online bool, now time.Time)
	Alert(source string, t detect.Transition)
	// DTCs takes a truck's latest report of active trouble codes.
	DTCs(r uplink.DTCReport)
}

func newIngester(cfg Config, log *slog.Logger, db *store.DB, cnt *counters, s sink, staged func(int)) *ingester {
	return &ingester{
		cfg: cfg, log: log, db: db, cnt: cnt, thr: newThrottle(time.Second), sink: s,
		msgs: make(chan message, 4*cfg.MaxBatchMessages), stop: make(chan struct{}),
		trucks: map[string]*truckState{}, staged: staged, nowFunc: time.Now,
		freeBytes: func() (int64, error) { return diskFree(cfg.DataDir) },
	}
}

// handle is the paho message handler: it hands the message to run, or
// drops it unacknowledged (the broker redelivers) once run has ended.
func (in *ingester) handle(_ mqtt.Client, m mqtt.Message) {
	var msg message = m
	select {
	case in.msgs <- msg:
	case <-in.stop:
	}
}

// intercept is the embedded broker's hook: it ingests one publish and
// returns once its data is durable, so the broker acknowledges the
// gateway only then.
func (in *ingester) intercept(topic string, payload []byte) error {
	m := &hookMessage{topic: topic, payload: payload, done: make(chan struct{})}
	select {
	case in.msgs <- m:
	case <-in.stop:
		return errStopped
	}
	select {
	case <-m.done:
		return nil
	case <-in.stop:
		return errStopped
	}
}

func (in *ingester) run(ctx context.Context) error {
	defer close(in.stop)
	batch := make([]message, 0, in.cfg.MaxBatchMessages)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m := <-in.msgs:
			batch = append(batch, m)
		}
	fill:
		for len(batch) < in.cfg.MaxBatchMessages {
			select {
			case m := <-in.msgs:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if !in.waitForRoom(ctx) {
			return nil // the messages stay unacknowledged: the broker and gateways keep them
		}
		if err := in.step(batch); err != nil {
			return err
		}
	}
}

// diskCheckInterval is how often ingest looks for space on a full disk.
const diskCheckInterval = time.Second

// waitForRoom returns true at once while the data disk has
// MinFreeBytes free. Otherwise it marks the cloud's disk full, logs, and
// checks every diskCheckInterval until there is room (true) or ctx ends
// (false). Messages taken meanwhile wait unacknowledged. A disk whose
// free space cannot be read counts as having room.
func (in *ingester) waitForRoom(ctx context.Context) bool {
	if in.cfg.MinFreeBytes < 0 || in.freeBytes == nil {
		return true
	}
	for {
		free, err := in.freeBytes()
		if err != nil || free >= in.cfg.MinFreeBytes {
			if in.cnt.diskFull.Swap(false) {
				in.log.Warn("data disk has room again; ingest resumes", "free_bytes", free)
			}
			return true
		}
		if !in.cnt.diskFull.Swap(true) {
			in.cnt.diskFullEvents.Add(1)
			in.log.Error("DATA DISK FULL: ingest stopped acknowledging; gateways keep their data until space returns",
				"dir", in.cfg.DataDir, "free_bytes", free, "min_free_bytes", in.cfg.MinFreeBytes)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(diskCheckInterval):
		}
	}
}

// step makes one batch of messages durable, then acknowledges them, then
// publishes what they carried. A database failure is fatal: the messages
// stay unacknowledged and the broker redelivers them after a restart.
func (in *ingester) step(msgs []message) error {
	now := in.nowFunc()
	commit := store.Commit{Dedup: map[string][]byte{}, Detectors: map[string][]byte{}}
	var outs []accepted
	var statuses []func()
	var edges, clouds []detect.Transition
	var acks []detect.Ack
	var decoded []stagedBatch // aligned with commit.Staged
	seen := map[string]bool{}
	durable := map[string][]uint64{} // payload ids per truck, confirmed after the commit
	stagedBytes := 0
	for _, m := range msgs {
		truck, kind, err := uplink.ParseTopic(m.Topic())
		if err != nil {
			in.reject(m.Topic(), err)
			continue
		}
		if kind == uplink.KindTelemetry || kind == uplink.KindAlerts {
			// Whatever follows (stored, duplicate, or rejected for good and
			// counted), the gateway need not send this payload again.
			durable[truck] = append(durable[truck], uplink.PayloadID(m.Payload()))
		}
		if kind == uplink.KindStatus {
			in.cnt.statusMessages.Add(1)
			online, err := parseStatus(m.Payload())
			if err != nil {
				in.reject(m.Topic(), err)
				continue
			}
			statuses = append(statuses, func() { in.sink.Status(truck, online, now) })
			continue
		}
		if kind == uplink.KindDTC {
			r, err := uplink.DecodeDTCReport(m.Payload())
			if err == nil && r.Truck != truck {
				err = fmt.Errorf("DTC report names truck %q", r.Truck)
			}
			if err != nil {
				in.reject(m.Topic(), err)
				continue
			}
			in.cnt.dtcReports.Add(1)
			// Retained: the broker hands the same report again on every
			// subscription; archive each report once per run.
			if in.dtcSeen == nil {
				in.dtcSeen = map[string]int64{}
			}
			if in.dtcSeen[truck] != r.Time {
				in.dtcSeen[truck] = r.Time
				rec := append([]byte{stagedDTC}, m.Payload()...)
				commit.Staged = append(commit.Staged, rec)
				decoded = append(decoded, stagedBatch{kind: stagedDTC})
				stagedBytes += len(rec)
			}
			statuses = append(statuses, func() { in.sink.DTCs(r) })
			continue
		}
		if kind != uplink.KindTelemetry && kind != uplink.KindAlerts {
			in.reject(m.Topic(), fmt.Errorf("unexpected topic kind %q", kind))
			continue
		}
		in.cnt.messages.Add(1)
		b, err := uplink.Decode(m.Payload(), in.cfg.Limits)
		if err != nil {
			in.reject(m.Topic(), err)
			continue
		}
		if b.Truck != truck {
			in.reject(m.Topic(), fmt.Errorf("batch names truck %q", b.Truck))
			continue
		}
		st, err := in.truck(truck)
		if err != nil {
			return err
		}
		seen[truck] = true
		out, fresh, dropped := in.filter(st, b)
		if !fresh {
			continue
		}
		var quarantined []sensors.Reading
		out.readings, quarantined = in.quarantine(truck, out.readings, now)
		if len(quarantined) > 0 {
			dropped = true
			enc, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: quarantined})
			if err != nil {
				return fmt.Errorf("ingest encode quarantine %s: %w", truck, err)
			}
			rec := binary.BigEndian.AppendUint64([]byte{stagedQuarantine}, uint64(now.UnixNano()))
			rec = append(rec, enc...)
			commit.Staged = append(commit.Staged, rec)
			decoded = append(decoded, stagedBatch{kind: stagedQuarantine, b: uplink.Batch{Truck: truck, Readings: quarantined}, received: now.UnixNano()})
			stagedBytes += len(rec)
			commit.Dedup[truck] = nil
		}
		if len(out.readings)+len(out.edge)+len(out.acks) == 0 {
			continue
		}
		rec := append([]byte{stagedEdge}, m.Payload()...)
		if dropped {
			enc, err := uplink.Encode(uplink.Batch{Truck: truck, Readings: out.readings, Alerts: out.edge, Acks: out.acks})
			if err != nil {
				return fmt.Errorf("ingest re-encode %s: %w", truck, err)
			}
			rec = append([]byte{stagedEdge}, enc...)
		}
		commit.Staged = append(commit.Staged, rec)
		decoded = append(decoded, stagedBatch{kind: stagedEdge, b: uplink.Batch{Truck: truck, Readings: out.readings, Alerts: out.edge, Acks: out.acks}})
		stagedBytes += len(rec)
		commit.Dedup[truck] = nil // changed: encoded below
		if len(out.readings) > 0 {
			out.cloud = in.detect(st, out.readings)
			if len(out.cloud) > 0 {
				enc, err := uplink.Encode(uplink.Batch{Truck: truck, Alerts: out.cloud})
				if err != nil {
					return fmt.Errorf("ingest encode cloud alerts %s: %w", truck, err)
				}
				commit.Staged = append(commit.Staged, append([]byte{stagedCloud}, enc...))
				decoded = append(decoded, stagedBatch{kind: stagedCloud, b: uplink.Batch{Truck: truck, Alerts: out.cloud}})
				stagedBytes += len(enc) + 1
			}
			if m, ok := any(st.det).(encoding.BinaryMarshaler); ok {
				if state, err := m.MarshalBinary(); err == nil {
					v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(state)), in.cfg.Detect.Hash())
					commit.Detectors[truck] = append(v, state...)
				}
			}
		}
		outs = append(outs, out)
		edges = append(edges, out.edge...)
		clouds = append(clouds, out.cloud...)
		acks = append(acks, out.acks...)
	}
	for truck := range commit.Dedup {
		enc, err := in.trucks[truck].seen.MarshalBinary()
		if err != nil {
			return fmt.Errorf("ingest encode dedup %s: %w", truck, err)
		}
		commit.Dedup[truck] = enc
	}
	if in.inc != nil && len(seen) > 0 {
		trucks := make([]string, 0, len(seen))
		for t := range seen {
			trucks = append(trucks, t)
		}
		commit.Extra = func(tx *bolt.Tx) error {
			if err := in.inc.Observe(tx, now, incident.SourceEdge, edges, acks, trucks); err != nil {
				return err
			}
			return in.inc.Observe(tx, now, incident.SourceCloud, clouds, nil, nil)
		}
	}
	if len(commit.Staged) > 0 || len(commit.Dedup) > 0 || commit.Extra != nil {
		if err := in.db.Apply(&commit); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		in.cnt.commits.Add(1)
		if in.remember != nil {
			for i, id := range commit.StagedIDs {
				if decoded[i].kind != stagedDTC { // the archiver decodes those itself
					in.remember(id, decoded[i])
				}
			}
		}
	}
	for _, m := range msgs {
		m.Ack()
	}
	if in.confirm != nil {
		for truck, ids := range durable {
			in.confirm(truck, ids)
		}
	}
	for _, f := range statuses {
		f()
	}
	for _, o := range outs {
		in.publish(o, now)
	}
	if stagedBytes > 0 && in.staged != nil {
		in.staged(stagedBytes)
	}
	return nil
}

func parseStatus(p []byte) (online bool, err error) {
	switch string(p) {
	case "online":
		return true, nil
	case "offline":
		return false, nil
	}
	return false, fmt.Errorf("status payload %.32q: want online or offline", p)
}

func (in *ingester) reject(topic string, err error) {
	in.cnt.badPayloads.Add(1)
	in.thr.log(in.log, slog.LevelWarn, "bad", "rejected message", "topic", topic, "err", fmt.Errorf("%w: %w", ErrBadPayload, err))
}

// truck returns the state of truck, loading it from the database on first
// use.
func (in *ingester) truck(truck string) (*truckState, error) {
	if st := in.trucks[truck]; st != nil {
		return st, nil
	}
	st := &truckState{seen: dedup.NewSet(0)}
	b, err := in.db.Dedup(truck)
	if err != nil {
		return nil, fmt.Errorf("ingest load %s: %w", truck, err)
	}
	if b != nil {
		if err := st.seen.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("ingest load dedup %s: %w", truck, err)
		}
	}
	st.det, err = detect.New(truck, in.cfg.Detect)
	if err != nil {
		return nil, fmt.Errorf("ingest detector %s: %w", truck, err)
	}
	if u, ok := any(st.det).(encoding.BinaryUnmarshaler); ok {
		state, err := in.db.Detector(truck)
		if err != nil {
			return nil, fmt.Errorf("ingest load detector %s: %w", truck, err)
		}
		// Stored: the configuration hash (8 bytes, big-endian), then the
		// detector's state. A state learned under another configuration is
		// dropped: restoring it would bring the old configuration back.
		switch {
		case state == nil:
		case len(state) < 8 || binary.BigEndian.Uint64(state) != in.cfg.Detect.Hash():
			in.log.Warn("detector configuration changed; relearning", "truck", truck)
		default:
			if err := u.UnmarshalBinary(state[8:]); err != nil {
				in.log.Warn("detector state not restored; relearning", "truck", truck, "err", err)
				st.det, _ = detect.New(truck, in.cfg.Detect)
			}
		}
	}
	in.trucks[truck] = st
	return st, nil
}

// filter drops invalid and already-seen records of b, marking the rest
// seen. fresh reports whether anything is left; dropped whether anything
// was removed.
func (in *ingester) filter(st *truckState, b uplink.Batch) (out accepted, fresh, dropped bool) {
	forgot := st.seen.Forgotten()
	defer func() { in.cnt.dedupForgotten.Add(st.seen.Forgotten() - forgot) }()
	out.truck = b.Truck
	out.readings = b.Readings[:0:0]
	for _, r := range b.Readings {
		switch {
		case r.Seq == 0 || !r.Signal.Valid():
			in.cnt.invalidRecords.Add(1)
		case !st.seen.Add(r.Seq):
			in.cnt.duplicateReadings.Add(1)
		default:
			out.readings = append(out.readings, r)
			continue
		}
		dropped = true
	}
	for _, t := range b.Alerts {
		if t.Truck == "" {
			t.Truck = b.Truck
		}
		switch {
		case t.Seq == 0 || t.Truck != b.Truck || !t.Signal.Valid():
			in.cnt.invalidRecords.Add(1)
		case !st.seen.Add(t.Seq):
			in.cnt.duplicateRecords.Add(1)
		default:
			out.edge = append(out.edge, t)
			continue
		}
		dropped = true
	}
	for _, a := range b.Acks {
		if a.Truck == "" {
			a.Truck = b.Truck
		}
		// A truck's uplink carries only its driver's acknowledgements
		// (the broker lets only that truck publish there); fleet users'
		// come from the console. The origin is the channel's, not By's.
		a.Origin = detect.AckDriver
		switch {
		case a.Seq == 0 || a.Truck != b.Truck:
			in.cnt.invalidRecords.Add(1)
		case !st.seen.Add(a.Seq):
			in.cnt.duplicateRecords.Add(1)
		default:
			out.acks = append(out.acks, a)
			continue
		}
		dropped = true
	}
	in.cnt.readings.Add(uint64(len(out.readings)))
	in.cnt.edgeAlerts.Add(uint64(len(out.edge)))
	in.cnt.acks.Add(uint64(len(out.acks)))
	fresh = len(out.readings)+len(out.edge)+len(out.acks) > 0
	return out, fresh, dropped
}

// quarantine splits rs into readings whose event time is within
// Config.Time's bounds of now (kept in rs's array) and the rest, which it
// counts and logs (throttled).
func (in *ingester) quarantine(truck string, rs []sensors.Reading, now time.Time) (ok, out []sensors.Reading) {
	recv := now.UnixNano()
	tc := in.cfg.Time
	ok = rs[:0]
	for _, r := range rs {
		lo, hi := recv-int64(tc.MaxPast), recv+int64(tc.MaxFuture)
		if r.Flags&sensors.ClockUntrusted != 0 {
			lo, hi = max(lo, recv-int64(tc.UntrustedSkew)), min(hi, recv+int64(tc.UntrustedSkew))
		}
		if r.Time < lo || r.Time > hi {
			out = append(out, r)
			continue
		}
		ok = append(ok, r)
	}
	if len(out) > 0 {
		in.cnt.quarantined.Add(uint64(len(out)))
		r := out[0]
		in.thr.log(in.log, slog.LevelWarn, "quarantine:"+truck, "readings quarantined: event time outside the accepted bounds",
			"truck", truck, "readings", len(out), "signal", r.Signal.String(), "seq", r.Seq,
			"time", time.Unix(0, r.Time).UTC(), "received", now.UTC(), "clock_untrusted", r.Flags&sensors.ClockUntrusted != 0)
	}
	return ok, out
}

// detect runs the truck's detector over rs in Seq order and returns the
// cloud's transitions. It sorts rs.
func (in *ingester) detect(st *truckState, rs []sensors.Reading) []detect.Transition {
	if !slices.IsSortedFunc(rs, bySeq) {
		slices.SortFunc(rs, bySeq)
	}
	var ts []detect.Transition
	for _, r := range rs {
		if t, ok := st.det.Observe(r); ok {
			// The cloud's transition takes the Seq of the reading that
			// caused it: unique per truck, increasing, and the same after
			// a restart replays that reading.
			t.Seq = r.Seq
			ts = append(ts, t)
		}
	}
	in.cnt.cloudAlerts.Add(uint64(len(ts)))
	return ts
}

func bySeq(a, b sensors.Reading) int {
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

func (in *ingester) publish(o accepted, now time.Time) {
	if len(o.readings) > 0 {
		in.sink.Readings(o.truck, o.readings, now)
	}
	for _, t := range o.edge {
		in.logAlert("edge", t)
		in.sink.Alert("edge", t)
	}
	for _, t := range o.cloud {
		in.logAlert("cloud", t)
		in.sink.Alert("cloud", t)
	}
}

func (in *ingester) logAlert(source string, t detect.Transition) {
	level := slog.LevelInfo
	if t.Phase != detect.Cleared && t.Severity >= detect.SeverityWarning {
		level = slog.LevelWarn
	}
	in.log.Log(context.Background(), level, "alert", "source", source, "truck", t.Truck, "signal", t.Signal.String(),
		"kind", t.Kind.String(), "severity", t.Severity.String(), "phase", t.Phase.String(),
		"value", t.Value, "start", time.Unix(0, t.Start).UTC())
}
