package archive

import (
	"fmt"
	"reflect"
	"strings"
)

// AthenaDDL returns CREATE DATABASE IF NOT EXISTS, then CREATE EXTERNAL
// TABLE statements, one per dataset, for an archive at location
// ("s3://bucket/prefix"), in database. Partitions use Athena partition
// projection (dt by day over a range relative to the query's time, the
// last 10 years up to tomorrow, so it never needs editing; hour 00-23),
// so no partition ever needs adding by hand. Columns follow the stored
// rows' Parquet tags; the view readings_v reassembles each reading's value.
func AthenaDDL(location, database string) string {
	location = strings.TrimSuffix(location, "/")
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE DATABASE IF NOT EXISTS %s;\n\n", database)
	for _, ds := range []struct {
		name string
		row  any
	}{{DatasetReadings, readingRecord{}}, {DatasetAlerts, Alert{}}, {DatasetAcks, Ack{}}, {DatasetIncidents, Incident{}}, {DatasetDTCs, DTC{}}, {DatasetQuarantine, Quarantined{}}} {
		loc := location + "/" + ds.name + "/"
		fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s.%s (\n", database, ds.name)
		cols := columns(ds.row)
		for i, c := range cols {
			sep := ","
			if i == len(cols)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "  `%s` %s%s\n", c[0], c[1], sep)
		}
		fmt.Fprintf(&b, ")\nPARTITIONED BY (`dt` string, `hour` string)\nSTORED AS PARQUET\nLOCATION '%s'\nTBLPROPERTIES (\n", loc)
		props := [][2]string{
			{"projection.enabled", "true"},
			{"projection.dt.type", "date"},
			{"projection.dt.format", "yyyy-MM-dd"},
			{"projection.dt.range", athenaDays},
			{"projection.dt.interval", "1"},
			{"projection.dt.interval.unit", "DAYS"},
			{"projection.hour.type", "integer"},
			{"projection.hour.range", "0,23"},
			{"projection.hour.digits", "2"},
			{"storage.location.template", loc + "dt=${dt}/hour=${hour}/"},
			{"parquet.compression", "ZSTD"},
		}
		for i, p := range props {
			sep := ","
			if i == len(props)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "  '%s'='%s'%s\n", p[0], p[1], sep)
		}
		b.WriteString(");\n\n")
	}
	fmt.Fprintf(&b, `-- Readings with the value reassembled (exactly) and a timestamp.
CREATE OR REPLACE VIEW %[1]s.readings_v AS
SELECT truck, signal, seq, time_ns,
  from_unixtime(time_ns / 1e9) AS time,
  CASE WHEN value_div > 0 THEN value_q / value_div
       WHEN value_div < 0 THEN value_q * (1e0 / -value_div)
       ELSE value_raw END AS value,
  flags, dt, hour
FROM %[1]s.readings;
`, database)
	return b.String()
}

// athenaDays is the projected dt range, relative to when a query runs:
// ten years of history, and tomorrow for readings stamped by a gateway
// whose clock runs ahead of UTC midnight.
const athenaDays = "NOW-10YEARS,NOW+1DAYS"

// columns returns (name, Athena type) of each field of row.
func columns(row any) [][2]string {
	t := reflect.TypeOf(row)
	var out [][2]string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		typ := map[reflect.Kind]string{
			reflect.String: "string", reflect.Int64: "bigint", reflect.Int32: "int", reflect.Float64: "double", reflect.Bool: "boolean",
		}[f.Type.Kind()]
		if typ == "" {
			panic("archive: no Athena type for " + f.Type.String())
		}
		out = append(out, [2]string{name, typ})
	}
	return out
}
