package archive

import (
	"fmt"
	"time"
)

// Datasets: the top-level directories (or S3 key prefixes) of the archive.
const (
	DatasetReadings  = "readings"
	DatasetAlerts    = "alerts"
	DatasetAcks      = "acks"
	DatasetIncidents = "incidents"
	DatasetDTCs      = "dtcs"
	// DatasetQuarantine holds readings with event times the cloud does not
	// accept, partitioned by receive time (see Quarantined).
	DatasetQuarantine = "quarantine"
)

// Datasets lists every dataset, in a stable order.
var Datasets = []string{DatasetReadings, DatasetAlerts, DatasetAcks, DatasetIncidents, DatasetDTCs, DatasetQuarantine}

// Partition returns the partition path of an event at unixNS in dataset:
// "readings/dt=2026-11-26/hour=01". Partitions follow event time, never
// arrival time, in UTC.
func Partition(dataset string, unixNS int64) string {
	t := time.Unix(0, unixNS).UTC()
	return fmt.Sprintf("%s/dt=%s/hour=%02d", dataset, t.Format("2006-01-02"), t.Hour())
}

// Stem names the objects written from staged records first..last of the
// database instance (see store.DB.Instance): "3f9c0a1b2c3d4e5f-00000000000000000001-00000000000000000042".
// The same inputs always give the same stem, so a flush redone after a
// crash overwrites its own objects; another database (a rebuilt or second
// cloud) never collides with them.
func Stem(instance string, first, last uint64) string {
	return fmt.Sprintf("%s-%020d-%020d", instance, first, last)
}

// ObjectKey returns the key of the object holding a partition's rows of
// one flush: "readings/dt=2026-11-26/hour=01/part-<stem>.parquet".
func ObjectKey(partition, stem string) string {
	return partition + "/part-" + stem + ".parquet"
}
