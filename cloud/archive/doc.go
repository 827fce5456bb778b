// Package archive writes the cloud's long-term record of readings, alert
// transitions and acknowledgements as zstd-compressed Parquet objects,
// partitioned by event time (kind/dt=YYYY-MM-DD/hour=HH/part-A-B.parquet),
// to a local directory or to S3 through the same Store interface, and
// reads a local archive back for tests and tools.
//
// Object names are chosen by the caller from a durable range of staged
// records, so a re-upload after a crash overwrites rather than duplicates.
// The package does not decide when to flush and keeps no state between
// calls; it must not import cloud.
package archive
