package gateway

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abc4logistics/tankguard/sensors"
)

// Metrics exposes the counters of one or more gateways in this process
// (one on a truck, many in the load test) as Prometheus metrics, every
// series labelled with its truck. It reads the stages' Stats at scrape
// time, so it costs nothing on the hot path. It is a
// prometheus.Collector; Handler serves it. Safe for concurrent use.
type Metrics struct {
	mu sync.Mutex
	gs []*Gateway
}

// NewMetrics returns a collector for gs; more can be added with Add.
func NewMetrics(gs ...*Gateway) *Metrics { return &Metrics{gs: append([]*Gateway(nil), gs...)} }

// Add adds a gateway to the collector.
func (m *Metrics) Add(g *Gateway) {
	m.mu.Lock()
	m.gs = append(m.gs, g)
	m.mu.Unlock()
}

// Handler returns an HTTP handler serving, in the Prometheus text format,
// m's metrics plus the Go runtime and process collectors, from a registry
// of its own (no global state).
func (m *Metrics) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

const ns = "tankguard_gateway_"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+name, help, append([]string{"truck"}, labels...), nil)
}

// Metric descriptions; the README's metrics table lists the same.
var (
	mReadings       = desc("readings_total", "Readings decoded from the truck's sensors (CAN and NMEA) and from replayed candump logs (replay).", "source")
	mRejected       = desc("rejected_total", "Frames, sentences and values rejected on input, by cause.", "cause")
	mCANFrames      = desc("can_frames_total", "CAN frames received, all buses and replays.")
	mSourceEvents   = desc("source_events_total", "Sensor connection events: can_connect, can_dial_error, can_disconnect, serial_open, serial_open_error, serial_read_error.", "event")
	mAppendErrors   = desc("buffer_append_errors_total", "Batches the store-and-forward queue failed to append (records lost).")
	mQueueRecords   = desc("queue_records", "Records stored in the queue and not yet confirmed durable by the cloud (or, without confirmation, acknowledged by the broker), by kind.", "kind")
	mQueuePending   = desc("queue_pending_records", "Records appended but not yet committed to disk.")
	mQueueBytes     = desc("queue_stored_bytes", "Bytes of stored records (what the disk budget bounds).")
	mQueueFileBytes = desc("queue_file_bytes", "Size of the queue's database file.")
	mQueueOldest    = desc("queue_oldest_unsent_age_seconds", "Age of the oldest record not yet acknowledged by the broker (0 when empty).")
	mQueueDropped   = desc("queue_dropped_total", "Records evicted from the queue for the disk budget, by kind.", "kind")
	mQueueCorrupt   = desc("queue_corrupt_records_total", "Stored records that could not be decoded.")
	mQueueCommits   = desc("queue_commits_total", "Group commits to the queue.")
	mUplinkOnline   = desc("uplink_online", "1 while the MQTT uplink is connected, else 0.")
	mUplinkSince    = desc("uplink_state_since_seconds", "Unix time the uplink's online state last changed.")
	mUplinkConnects = desc("uplink_connects_total", "Uplink connection attempts, by result (ok, failed).", "result")
	mUplinkBatches  = desc("uplink_batches_total", "Batches deleted from the queue: confirmed durable by the cloud (or, without confirmation, acknowledged by the broker).")
	mUplinkRecords  = desc("uplink_records_total", "Records deleted from the queue after confirmation.")
	mUplinkBytes    = desc("uplink_bytes_total", "Payload bytes of the batches deleted after confirmation.")
	mUplinkUnconf   = desc("uplink_unconfirmed_records", "Records published and not yet confirmed durable by the cloud (or, without confirmation, acknowledged by the broker).")
	mUplinkConfirm  = desc("uplink_confirmations_total", "Durable confirmations from the cloud, by result (payload, bad_message, timeout: resent after no confirmation came).", "result")
	mUplinkDropped  = desc("uplink_dropped_total", "Records dropped because they cannot be encoded.")
	mCommands       = desc("commands_total", "Downlink commands, by result (received, rejected, duplicate, dropped, failed).", "result")
	mAlerts         = desc("alerts_total", "Alert transitions raised by the gateway's detector, by phase and severity.", "phase", "severity")
	mCabClients     = desc("cab_clients", "Cab display pages connected now.")
	mCabEvents      = desc("cab_events_total", "Events written to cab display pages.")
	mCabBadRequests = desc("cab_bad_requests_total", "Cab display HTTP requests rejected with a 4xx status.")
	mCabAcks        = desc("cab_acks_total", "Acknowledgements shown on the cab, by origin (driver, remote, remote_unmatched).", "origin")
	mCabSlow        = desc("cab_slow_clients_total", "Cab pages disconnected because they fell behind.")
	mCabGPIOErrors  = desc("cab_gpio_errors_total", "Failed writes to the buzzer's GPIO line.")
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mReadings, mRejected, mCANFrames, mSourceEvents, mAppendErrors,
		mQueueRecords, mQueuePending, mQueueBytes, mQueueFileBytes, mQueueOldest, mQueueDropped, mQueueCorrupt,
		mQueueCommits, mUplinkOnline, mUplinkSince, mUplinkConnects, mUplinkBatches, mUplinkRecords, mUplinkBytes,
		mUplinkDropped, mUplinkUnconf, mUplinkConfirm, mCommands, mAlerts, mCabClients, mCabEvents, mCabBadRequests, mCabAcks, mCabSlow, mCabGPIOErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	gs := append([]*Gateway(nil), m.gs...)
	m.mu.Unlock()
	for _, g := range gs {
		g.collect(ch)
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// collect sends one gateway's metrics.
func (g *Gateway) collect(ch chan<- prometheus.Metric) {
	t := g.cfg.Truck

	// Sensors. Buses may share one decoder: count each decoder once.
	// Replays have a decoder of their own: their readings count as
	// source "replay", their rejected frames with the live ones.
	var can sensors.CANDecodeStats
	var frames, connects, dialErr, disc, errFrames uint64
	seen := map[*sensors.CANDecoder]bool{}
	addDecoder := func(dec *sensors.CANDecoder) {
		if dec == nil || seen[dec] {
			return
		}
		seen[dec] = true
		d := dec.Stats()
		can.Readings += d.Readings
		can.NotExtended += d.NotExtended
		can.Remote += d.Remote
		can.UnknownPGN += d.UnknownPGN
		can.WrongDLC += d.WrongDLC
		can.ErrorValue += d.ErrorValue
		can.NotAvailable += d.NotAvailable
		can.Reserved += d.Reserved
		can.Implausible += d.Implausible
	}
	for _, s := range g.can {
		st := s.Stats()
		frames += st.Frames
		connects += st.Connects
		dialErr += st.DialErrors
		disc += st.Disconnects
		errFrames += st.ErrorFrames
		addDecoder(s.Decoder)
	}
	live := can.Readings
	addDecoder(g.replayDec)
	replayed := can.Readings - live
	var replayMalformed uint64
	for _, r := range g.replay {
		st := r.Stats()
		frames += st.Frames
		replayMalformed += st.Malformed
	}
	// J1939 transport sessions and DM1s, live and replayed (dtc.go).
	var dm sensors.DM1Stats
	addDM1 := func(st sensors.DM1Stats) {
		dm.Received += st.Received
		dm.Malformed += st.Malformed
		tp, x := &dm.Transport, st.Transport
		tp.Completed += x.Completed
		tp.Aborted += x.Aborted
		tp.Replaced += x.Replaced
		tp.TimedOut += x.TimedOut
		tp.BadSequence += x.BadSequence
		tp.Reset += x.Reset
		tp.Malformed += x.Malformed
		tp.Orphan += x.Orphan
		tp.Dropped += x.Dropped
	}
	for _, s := range g.can {
		addDM1(s.DM1Stats())
	}
	for _, r := range g.replay {
		addDM1(r.DM1Stats())
	}
	var nm sensors.NMEAStats
	var ser sensors.SerialStats
	for _, s := range g.nmea {
		st, ss := s.Stats(), s.SerialStats()
		nm.Readings += st.Readings
		nm.NoFix += st.NoFix
		nm.Garbage += st.Garbage
		nm.Checksum += st.Checksum
		nm.Malformed += st.Malformed
		nm.TooLong += st.TooLong
		ser.Opens += ss.Opens
		ser.OpenErrors += ss.OpenErrors
		ser.ReadErrors += ss.ReadErrors
	}
	counter(ch, mReadings, live, t, "can")
	counter(ch, mReadings, replayed, t, "replay")
	counter(ch, mReadings, nm.Readings, t, "nmea")
	counter(ch, mCANFrames, frames, t)
	for _, r := range []struct {
		cause string
		v     uint64
	}{
		{"can_error_frame", errFrames}, {"can_not_extended", can.NotExtended}, {"can_remote", can.Remote},
		{"can_unknown_pgn", can.UnknownPGN}, {"can_wrong_dlc", can.WrongDLC}, {"can_error_value", can.ErrorValue},
		{"can_not_available", can.NotAvailable}, {"can_reserved", can.Reserved}, {"can_implausible", can.Implausible},
		{"nmea_no_fix", nm.NoFix}, {"nmea_garbage", nm.Garbage}, {"nmea_checksum", nm.Checksum},
		{"nmea_malformed", nm.Malformed}, {"nmea_too_long", nm.TooLong}, {"replay_malformed", replayMalformed},
		{"dm1_malformed", dm.Malformed}, {"j1939_tp_malformed", dm.Transport.Malformed}, {"j1939_tp_orphan", dm.Transport.Orphan},
		{"j1939_tp_timed_out", dm.Transport.TimedOut}, {"j1939_tp_aborted", dm.Transport.Aborted}, {"j1939_tp_replaced", dm.Transport.Replaced},
		{"j1939_tp_bad_sequence", dm.Transport.BadSequence}, {"j1939_tp_reset", dm.Transport.Reset}, {"j1939_tp_session_limit", dm.Transport.Dropped},
	} {
		counter(ch, mRejected, r.v, t, r.cause)
	}
	if g.rec != nil {
		rs := g.rec.Stats()
		counter(ch, mSourceEvents, rs.Frames, t, "candump_recorded")
		counter(ch, mSourceEvents, rs.Rotations, t, "candump_rotated")
		counter(ch, mRejected, rs.Errors, t, "candump_record_error")
	}
	counter(ch, mSourceEvents, dm.Received, t, "dm1_received")
	counter(ch, mSourceEvents, dm.Transport.Completed, t, "j1939_tp_completed")
	counter(ch, mSourceEvents, connects, t, "can_connect")
	counter(ch, mSourceEvents, dialErr, t, "can_dial_error")
	counter(ch, mSourceEvents, disc, t, "can_disconnect")
	counter(ch, mSourceEvents, ser.Opens, t, "serial_open")
	counter(ch, mSourceEvents, ser.OpenErrors, t, "serial_open_error")
	counter(ch, mSourceEvents, ser.ReadErrors, t, "serial_read_error")

	// Detect stage.
	g.mu.Lock()
	appendErr := g.appendEr
	type key struct{ phase, sev string }
	alerts := map[key]uint64{}
	for _, a := range g.alerts {
		alerts[key{a.Phase.String(), a.Severity.String()}]++
	}
	g.mu.Unlock()
	counter(ch, mAppendErrors, appendErr, t)
	for k, v := range alerts {
		counter(ch, mAlerts, v, t, k.phase, k.sev)
	}

	// Queue.
	q := g.queue.Stats()
	gauge(ch, mQueueRecords, float64(q.Readings), t, "reading")
	gauge(ch, mQueueRecords, float64(q.Alerts), t, "alert")
	gauge(ch, mQueueRecords, float64(q.Acks), t, "ack")
	gauge(ch, mQueuePending, float64(q.Pending), t)
	gauge(ch, mQueueBytes, float64(q.StoredBytes), t)
	gauge(ch, mQueueFileBytes, float64(q.FileBytes), t)
	gauge(ch, mQueueOldest, q.OldestAge.Seconds(), t)
	counter(ch, mQueueDropped, q.DroppedReadings, t, "reading")
	counter(ch, mQueueDropped, q.DroppedAlerts, t, "alert")
	counter(ch, mQueueDropped, q.DroppedAcks, t, "ack")
	counter(ch, mQueueCorrupt, q.CorruptRecords, t)
	counter(ch, mQueueCommits, q.Commits, t)

	// Uplink.
	u := g.pub.State()
	online := 0.0
	if u.Online {
		online = 1
	}
	gauge(ch, mUplinkOnline, online, t)
	since := 0.0
	if !u.Since.IsZero() {
		since = float64(u.Since.UnixNano()) / 1e9
	}
	gauge(ch, mUplinkSince, since, t)
	counter(ch, mUplinkConnects, u.Connects, t, "ok")
	counter(ch, mUplinkConnects, u.ConnectFailures, t, "failed")
	counter(ch, mUplinkBatches, u.Batches, t)
	counter(ch, mUplinkRecords, u.Records, t)
	counter(ch, mUplinkBytes, u.Bytes, t)
	counter(ch, mUplinkDropped, u.Dropped, t)
	gauge(ch, mUplinkUnconf, float64(u.Unconfirmed), t)
	counter(ch, mUplinkConfirm, u.Confirmations, t, "payload")
	counter(ch, mUplinkConfirm, u.BadConfirmations, t, "bad_message")
	counter(ch, mUplinkConfirm, u.ConfirmTimeouts, t, "timeout")
	counter(ch, mCommands, u.CommandsReceived, t, "received")
	counter(ch, mCommands, u.CommandsRejected, t, "rejected")
	counter(ch, mCommands, u.CommandsDuplicate, t, "duplicate")
	counter(ch, mCommands, u.CommandsDropped, t, "dropped")
	counter(ch, mCommands, g.cmdErrors.Load(), t, "failed")

	// Cab display.
	if g.cab == nil {
		return
	}
	c := g.cab.Stats()
	gauge(ch, mCabClients, float64(c.Clients), t)
	counter(ch, mCabEvents, c.Events, t)
	counter(ch, mCabBadRequests, c.BadRequests, t)
	counter(ch, mCabAcks, c.DriverAcks, t, "driver")
	counter(ch, mCabAcks, c.RemoteAcks, t, "remote")
	counter(ch, mCabAcks, c.RemoteAcksUnmatched, t, "remote_unmatched")
	counter(ch, mCabSlow, c.SlowClients, t)
	counter(ch, mCabGPIOErrors, c.GPIOErrors, t)
}
