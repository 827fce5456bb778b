package cloud

import (
	"github.com/abc4logistics/tankguard/cloud/console/auth"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Cloud metrics, read from Stats and the incident manager at scrape time;
// the README's metrics table lists the same.
var (
	mcMessages      = cdesc("messages_total", "MQTT messages received, by lane (data, status).", "lane")
	mcReadings      = cdesc("readings_total", "Readings accepted (new, not duplicates).")
	mcRejected      = cdesc("rejected_total", "Input rejected, by cause: bad_payload (whole message), invalid_record, duplicate_reading, duplicate_record, staged_corrupt, console_bad_request, quarantined_time (event time outside the accepted bounds; archived in quarantine/).", "cause")
	mcAlerts        = cdesc("alerts_total", "Alert transitions, by source: edge (received from gateways), cloud (raised by re-detection).", "source")
	mcAcks          = cdesc("acks_total", "Alert acknowledgements received from gateways.")
	mcCommits       = cdesc("ingest_commits_total", "Database commits by ingest (messages are acknowledged after their commit).")
	mcArchObjects   = cdesc("archive_objects_total", "Objects written to the archive.")
	mcArchRows      = cdesc("archive_rows_total", "Rows written to the archive.")
	mcArchBytes     = cdesc("archive_bytes_total", "Bytes written to the archive.")
	mcArchErrors    = cdesc("archive_errors_total", "Failed archive flushes (retried).")
	mcNotifications = cdesc("notifications_total", "Incident notifications, by result: sent (a channel accepted it), dead_lettered (failed after the last retry).", "result")
	mcCommands      = cdesc("commands_total", "Downlink commands to trucks, by result (sent, failed).", "result")
	mcIncidents     = cdesc("incidents", "Incidents held now, by state (open, acknowledged, resolved) and severity.", "state", "severity")
	mcDiskFull      = cdesc("disk_full", "1 while the data disk has less than min_free_bytes free: ingest holds messages unacknowledged until space returns.")
	mcBrokerRefused = cdesc("broker_refused_total", "What the embedded broker refused, by cause: tls_handshake, connect, publish, subscribe, oversized_packet.", "cause")
)

func cdesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tankguard_cloud_"+name, help, labels, nil)
}

// metrics is the cloud's prometheus.Collector.
type metrics struct{ c *Cloud }

// Collector returns a prometheus.Collector for the cloud's counters and
// incidents. It reads them at scrape time. Safe for concurrent use.
func (c *Cloud) Collector() prometheus.Collector { return metrics{c} }

// MetricsHandler serves the cloud's metrics, plus the Go runtime and
// process collectors, in the Prometheus text format from a registry of its
// own. The console's HTTP server serves it at /metrics.
func (c *Cloud) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// httpHandler is what the console's listener serves: /metrics (for a
// signed-in viewer or an API token, as every cloud endpoint), and the
// console for everything else.
func (c *Cloud) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.console.Require(auth.RoleViewer, c.MetricsHandler()))
	mux.Handle("/", c.console.Handler())
	return mux
}

func (metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mcMessages, mcReadings, mcRejected, mcAlerts, mcAcks, mcCommits, mcArchObjects,
		mcArchRows, mcArchBytes, mcArchErrors, mcNotifications, mcCommands, mcIncidents, mcBrokerRefused, mcDiskFull} {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Stats()
	ctr := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	full := 0.0
	if s.DiskFull {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(mcDiskFull, prometheus.GaugeValue, full)
	ctr(mcMessages, s.Messages, "data")
	ctr(mcMessages, s.StatusMessages, "status")
	ctr(mcMessages, s.DTCReports, "dtc")
	ctr(mcReadings, s.Readings)
	ctr(mcRejected, s.BadPayloads, "bad_payload")
	ctr(mcRejected, s.InvalidRecords, "invalid_record")
	ctr(mcRejected, s.DuplicateReadings, "duplicate_reading")
	ctr(mcRejected, s.DuplicateRecords, "duplicate_record")
	ctr(mcRejected, s.StagedCorrupt, "staged_corrupt")
	ctr(mcRejected, s.QuarantinedReadings, "quarantined_time")
	ctr(mcRejected, s.DedupForgotten, "dedup_forgotten")
	ctr(mcRejected, s.ConsoleBadRequests, "console_bad_request")
	ctr(mcAlerts, s.EdgeAlerts, "edge")
	ctr(mcAlerts, s.CloudAlerts, "cloud")
	ctr(mcAcks, s.Acks)
	ctr(mcCommits, s.Commits)
	ctr(mcArchObjects, s.ArchiveObjects)
	ctr(mcArchRows, s.ArchiveRows)
	ctr(mcArchBytes, s.ArchiveBytes)
	ctr(mcArchErrors, s.ArchiveErrors)
	ctr(mcNotifications, s.NotifySent, "sent")
	ctr(mcNotifications, s.NotifyDead, "dead_lettered")
	ctr(mcCommands, s.Commands, "sent")
	ctr(mcCommands, s.CommandErrors, "failed")
	ctr(mcBrokerRefused, s.Broker.RefusedHandshakes, "tls_handshake")
	ctr(mcBrokerRefused, s.Broker.DeniedConnects, "connect")
	ctr(mcBrokerRefused, s.Broker.DeniedPublishes, "publish")
	ctr(mcBrokerRefused, s.Broker.DeniedSubscribes, "subscribe")
	ctr(mcBrokerRefused, s.Broker.OversizedPackets, "oversized_packet")

	type key struct{ state, sev string }
	n := map[key]int{}
	for _, inc := range m.c.List() { // empty before Run is ready
		n[key{inc.State, inc.Severity}]++
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(mcIncidents, prometheus.GaugeValue, float64(v), k.state, k.sev)
	}
}
