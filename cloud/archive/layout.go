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
)

// Datasets lists every dataset, in a stable order.
var Datasets = []string{DatasetReadings, DatasetAlerts, DatasetAcks, DatasetIncidents}

// Partition returns the partition path of an event at unixNS in dataset:
// "readings/dt=2026-11-26/hour=01". Partitions follow event time, never
// arrival time, in UTC.
func Partition(dataset string, unixNS int64) string {
	t := time.Unix(0, unixNS).UTC()
	return fmt.Sprintf("%s/dt=%s/hour=%02d", dataset, t.Format("2006-01-02"), t.Hour())
}

// ObjectKey returns the key of the object holding the rows of dataset at
// partition part that came from staged records first..last:
// "readings/dt=2026-11-26/hour=01/part-00000000000000000001-00000000000000000042.parquet".
// The same inputs always give the same key.
func ObjectKey(partition string, first, last uint64) string {
	return fmt.Sprintf("%s/part-%020d-%020d.parquet", partition, first, last)
}
