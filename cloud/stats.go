package cloud

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abc4logistics/tankguard/cloud/broker"
)

// Stats are the cloud's counters since Run started. Every rejected or
// dropped item is counted here; the console serves them at /api/stats.
type Stats struct {
	Messages       uint64 `json:"messages"`        // MQTT messages received on the data lanes
	StatusMessages uint64 `json:"status_messages"` // status (online/offline) messages received
	DTCReports     uint64 `json:"dtc_reports"`     // DTC reports (active trouble codes) accepted
	// BrokerConnectFails counts failed attempts to connect to the broker.
	BrokerConnectFails uint64 `json:"broker_connect_fails"`
	BadPayloads        uint64 `json:"bad_payloads"`       // messages rejected whole (undecodable, wrong truck, bad topic)
	InvalidRecords     uint64 `json:"invalid_records"`    // records dropped from accepted messages (seq 0, unknown signal, wrong truck)
	Readings           uint64 `json:"readings"`           // readings accepted (new)
	DuplicateReadings  uint64 `json:"duplicate_readings"` // readings dropped as already seen
	// QuarantinedReadings counts readings whose event time is outside
	// Config.Time's bounds: archived in quarantine, not detected or shown.
	QuarantinedReadings uint64 `json:"quarantined_readings"`
	DuplicateRecords    uint64 `json:"duplicate_records"`    // alerts and acks dropped as already seen
	EdgeAlerts          uint64 `json:"edge_alerts"`          // alert transitions received from gateways
	CloudAlerts         uint64 `json:"cloud_alerts"`         // alert transitions raised by the cloud's re-detection
	Acks                uint64 `json:"acks"`                 // acknowledgements received from gateways
	Commits             uint64 `json:"commits"`              // database commits by ingest
	ArchiveObjects      uint64 `json:"archive_objects"`      // objects written to the archive
	ArchiveRows         uint64 `json:"archive_rows"`         // rows written to the archive
	ArchiveBytes        uint64 `json:"archive_bytes"`        // bytes written to the archive
	ArchiveErrors       uint64 `json:"archive_errors"`       // failed archive flushes (retried)
	StagedCorrupt       uint64 `json:"staged_corrupt"`       // staged records that could not be decoded (skipped)
	DedupForgotten      uint64 `json:"dedup_forgotten"`      // seqs given up on by the dedup window (a later arrival counts as duplicate)
	NotifySent          uint64 `json:"notify_sent"`          // notifications accepted by a channel
	NotifyDead          uint64 `json:"notify_dead"`          // notifications dead-lettered after the last retry
	Commands            uint64 `json:"commands"`             // downlink commands published
	CommandErrors       uint64 `json:"command_errors"`       // downlink commands that failed to publish
	ConsoleBadRequests  uint64 `json:"console_bad_requests"` // malformed console API requests
	// DiskFull is true while the data disk has less than
	// Config.MinFreeBytes free: ingest holds messages unacknowledged.
	DiskFull bool `json:"disk_full"`
	// DiskFullEvents counts the times ingest stopped for a full disk.
	DiskFullEvents uint64 `json:"disk_full_events"`
	// ConfirmsSent counts durable confirmations published to gateways;
	// ConfirmsDropped those that could not be (the gateway resends and
	// is confirmed then).
	ConfirmsSent    uint64 `json:"confirms_sent"`
	ConfirmsDropped uint64 `json:"confirms_dropped"`
	// Broker counts what the embedded broker refused: TLS handshakes,
	// CONNECTs, publishes and subscriptions outside a truck's own topics,
	// oversized packets (zero with an external broker).
	Broker broker.Stats `json:"broker"`
}

type counters struct {
	messages, statusMessages, badPayloads, invalidRecords, readings, duplicateReadings,
	duplicateRecords, edgeAlerts, cloudAlerts, acks, commits, archiveObjects, archiveRows,
	archiveBytes, archiveErrors, stagedCorrupt, dedupForgotten, notifySent, notifyDead, commands, commandErrors,
	quarantined, diskFullEvents, confirmsSent, confirmDropped atomic.Uint64
	dtcReports, brokerConnectFailures atomic.Uint64
	diskFull                          atomic.Bool
}

func (c *counters) snapshot() Stats {
	return Stats{
		Messages: c.messages.Load(), StatusMessages: c.statusMessages.Load(), BadPayloads: c.badPayloads.Load(),
		InvalidRecords: c.invalidRecords.Load(), Readings: c.readings.Load(), DuplicateReadings: c.duplicateReadings.Load(),
		DuplicateRecords: c.duplicateRecords.Load(), EdgeAlerts: c.edgeAlerts.Load(), CloudAlerts: c.cloudAlerts.Load(),
		Acks: c.acks.Load(), Commits: c.commits.Load(), ArchiveObjects: c.archiveObjects.Load(),
		ArchiveRows: c.archiveRows.Load(), ArchiveBytes: c.archiveBytes.Load(), ArchiveErrors: c.archiveErrors.Load(),
		StagedCorrupt: c.stagedCorrupt.Load(), DedupForgotten: c.dedupForgotten.Load(), NotifySent: c.notifySent.Load(), NotifyDead: c.notifyDead.Load(),
		Commands: c.commands.Load(), CommandErrors: c.commandErrors.Load(), DTCReports: c.dtcReports.Load(),
		BrokerConnectFails:  c.brokerConnectFailures.Load(),
		QuarantinedReadings: c.quarantined.Load(),
		DiskFull:            c.diskFull.Load(), DiskFullEvents: c.diskFullEvents.Load(),
		ConfirmsSent: c.confirmsSent.Load(), ConfirmsDropped: c.confirmDropped.Load(),
	}
}

// throttle logs at most one record per interval per key and counts the
// rest, so a flood of bad payloads cannot flood the log.
type throttle struct {
	mu         sync.Mutex
	every      time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

func (t *throttle) log(log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if now.Sub(t.last[key]) < t.every {
		t.suppressed[key]++
		t.mu.Unlock()
		return
	}
	t.last[key] = now
	n := t.suppressed[key]
	t.suppressed[key] = 0
	t.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}
