// Package cloud takes uplinked batches from an MQTT broker (embedded by
// default), deduplicates them by (truck, seq), re-runs the detector, turns
// alerts into incidents and notifications, archives readings, alerts,
// acknowledgements and incident states, and serves the fleet console. It
// is the only package that links the AWS SDK.
//
// # Data path and durability
//
// A message is acknowledged only once what it carried is durable in the
// cloud's bbolt file (DataDir/cloud.db). With the embedded broker (Config
// Ingest "hook", the default) the cloud ingests inside the broker's
// publish hook, so the gateway's PUBACK itself waits for the commit: a
// SIGKILL at any moment loses nothing a gateway has deleted. With an
// external broker (Ingest "subscribe") a paho client with a persistent
// session and manual acks (SetAutoAckDisabled, msg.Ack after the commit)
// does the same for the broker. Neither is what a gateway relies on: after
// each commit the cloud publishes, on each truck's durable topic, the ids
// of the payloads now durable (uplink.EncodeDurable), and gateways delete
// only what is confirmed there, so a broker that loses acknowledged
// messages (Mosquitto's queue overflowing, a restart without persistence)
// costs a resend, never data.
//
// Readings whose event time is far from their arrival (Config.Time) are
// quarantined: archived under quarantine/, never detected or shown. Below
// Config.MinFreeBytes free on the data disk, ingest holds its messages
// unacknowledged until space returns; broker and console stay up.
//
// One ingest step takes up to MaxBatchMessages messages and commits, in
// one transaction: the accepted records as staged archive records, each
// touched truck's dedup set (cloud/dedup: a floor plus ranges, since the
// telemetry and alert lanes interleave one seq space), each touched
// truck's detector state (detect's MarshalBinary), and the incident
// changes with their notification outbox entries (cloud/incident). Then
// it acks, and only then publishes to the console.
//
// The archiver flushes staged records every FlushInterval (or sooner by
// size): it records the staged id range it is about to write, writes one
// zstd Parquet object per dataset and event-time hour
// (readings/dt=YYYY-MM-DD/hour=HH/part-<db instance>-<first>-<last>.parquet)
// to the local directory or S3 (cloud/archive), then deletes the range. A
// crash in between redoes the same range under the same names, which
// overwrites rather than duplicates.
//
// The notifier delivers the outbox (cloud/notify: webhooks with
// HMAC-SHA256 signatures, SNS with filterable message attributes), with
// retries and a dead-letter record, and runs the incident timers (repeat,
// escalation, truck offline after silence plus grace). Delivery is at
// least once: a crash between a receiver's 2xx and the recorded outcome
// resends with the same delivery id.
package cloud
