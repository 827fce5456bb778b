package archive

import (
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// Sources of alert rows.
const (
	SourceEdge  = "edge"  // raised by the truck's gateway
	SourceCloud = "cloud" // raised by the cloud's own re-detection
)

// Reading is one archived reading: one row of readings/. In Parquet the
// value is stored in three columns (see readingRecord); readers and the
// Athena view readings_v give it back exactly.
type Reading struct {
	Truck  string
	Signal string
	Seq    int64
	TimeNS int64
	Value  float64
	Flags  int32
}

// Alert is one archived alert transition, from the edge or the cloud: one
// row of alerts/.
type Alert struct {
	Source     string  `parquet:"source,dict"`
	Truck      string  `parquet:"truck,dict"`
	Signal     string  `parquet:"signal,dict"`
	Seq        int64   `parquet:"seq"`
	Kind       string  `parquet:"kind,dict"`
	Severity   string  `parquet:"severity,dict"`
	Phase      string  `parquet:"phase,dict"`
	StartNS    int64   `parquet:"start_ns"`
	TimeNS     int64   `parquet:"time_ns"`
	Value      float64 `parquet:"value"`
	Baseline   float64 `parquet:"baseline"`
	ConfigHash int64   `parquet:"config_hash"`
}

// Ack is one archived acknowledgement: one row of acks/.
type Ack struct {
	Truck    string `parquet:"truck,dict"`
	Signal   string `parquet:"signal,dict"`
	Seq      int64  `parquet:"seq"`
	StartNS  int64  `parquet:"start_ns"`
	TimeNS   int64  `parquet:"time_ns"`
	By       string `parquet:"by,dict"`
	Severity string `parquet:"severity,dict"`
}

// Incident is one state of an incident, archived at every change: one row
// of incidents/, partitioned by the time of the change. The newest row of
// an id is its current state.
type Incident struct {
	ID         string `parquet:"id"`
	Truck      string `parquet:"truck,dict"`
	Signal     string `parquet:"signal,dict"`
	Kind       string `parquet:"kind,dict"`
	Severity   string `parquet:"severity,dict"`
	State      string `parquet:"state,dict"`
	Sources    string `parquet:"sources,dict"` // comma-separated, sorted
	StartNS    int64  `parquet:"start_ns"`
	OpenedNS   int64  `parquet:"opened_ns"`
	AckedBy    string `parquet:"acked_by,dict"`
	AckedNS    int64  `parquet:"acked_ns"` // 0: not acknowledged
	ResolvedBy string `parquet:"resolved_by,dict"`
	ResolvedNS int64  `parquet:"resolved_ns"` // 0: not resolved
	Escalated  bool   `parquet:"escalated"`
	Notified   int32  `parquet:"notified"`
	ChangedNS  int64  `parquet:"changed_ns"`
	// HistoryJSON is the incident's history and notification log as JSON.
	HistoryJSON string `parquet:"history_json"`
}

// ReadingRow converts a reading of truck to its archive row.
func ReadingRow(truck string, r sensors.Reading) Reading {
	return Reading{Truck: truck, Signal: r.Signal.String(), Seq: int64(r.Seq), TimeNS: r.Time, Value: r.Value, Flags: int32(r.Flags)}
}

// AlertRow converts a transition from source to its archive row.
func AlertRow(source string, t detect.Transition) Alert {
	return Alert{
		Source: source, Truck: t.Truck, Signal: t.Signal.String(), Seq: int64(t.Seq),
		Kind: t.Kind.String(), Severity: t.Severity.String(), Phase: t.Phase.String(),
		StartNS: t.Start, TimeNS: t.Time, Value: t.Value, Baseline: t.Baseline, ConfigHash: int64(t.ConfigHash),
	}
}

// AckRow converts an acknowledgement to its archive row.
func AckRow(a detect.Ack) Ack {
	return Ack{Truck: a.Truck, Signal: a.Signal.String(), Seq: int64(a.Seq), StartNS: a.Start, TimeNS: a.Time, By: a.By, Severity: a.Severity.String()}
}

// DTC is one active trouble code of one ECU in a truck's DTC report
// (J1939 DM1, uplink.DTCReport), partitioned by the report's time: the
// rows of a report share TimeNS, and the newest TimeNS of a truck is its
// current state. An ECU that reported no code has one row with SPN -1, so
// a fault clearing shows in the archive.
type DTC struct {
	Truck        string `parquet:"truck,dict"`
	TimeNS       int64  `parquet:"time_ns"` // the report's time
	Source       int32  `parquet:"source"`  // J1939 address of the ECU
	SPN          int32  `parquet:"spn"`     // -1: the ECU reported no code
	FMI          int32  `parquet:"fmi"`
	Occurrences  int32  `parquet:"oc"` // 127: not available
	RedStop      string `parquet:"red_stop,dict"`
	AmberWarning string `parquet:"amber_warning,dict"`
	Malfunction  string `parquet:"malfunction,dict"`
	Protect      string `parquet:"protect,dict"`
}

// DTCRows converts a DTC report to its archive rows.
func DTCRows(r uplink.DTCReport) []DTC {
	var out []DTC
	for _, e := range r.ECUs {
		row := DTC{Truck: r.Truck, TimeNS: r.Time, Source: int32(e.Source), SPN: -1,
			RedStop: e.Lamps.RedStop, AmberWarning: e.Lamps.AmberWarning, Malfunction: e.Lamps.Malfunction, Protect: e.Lamps.Protect}
		if len(e.DTCs) == 0 {
			out = append(out, row)
		}
		for _, c := range e.DTCs {
			row.SPN, row.FMI, row.Occurrences = int32(c.SPN), int32(c.FMI), int32(c.Occurrences)
			out = append(out, row)
		}
	}
	return out
}

// Quarantined is one reading whose event time was outside the bounds the
// cloud accepts (too far in the future or past of when it arrived, or from
// an unconfirmed gateway clock): one row of quarantine/, partitioned by
// the time the cloud received it, so a batch of wild times makes one
// object, not one per event-time hour.
type Quarantined struct {
	Truck      string  `parquet:"truck,dict"`
	Signal     string  `parquet:"signal,dict"`
	Seq        int64   `parquet:"seq"`
	TimeNS     int64   `parquet:"time_ns"`
	Value      float64 `parquet:"value"`
	Flags      int32   `parquet:"flags"`
	ReceivedNS int64   `parquet:"received_ns"`
}

// QuarantinedRow converts a quarantined reading of truck, received at
// receivedNS, to its archive row.
func QuarantinedRow(truck string, r sensors.Reading, receivedNS int64) Quarantined {
	return Quarantined{Truck: truck, Signal: r.Signal.String(), Seq: int64(r.Seq), TimeNS: r.Time, Value: r.Value, Flags: int32(r.Flags), ReceivedNS: receivedNS}
}

// Batch is the rows of one flush, in any order.
type Batch struct {
	Readings    []Reading
	Alerts      []Alert
	Acks        []Ack
	Incidents   []Incident
	DTCs        []DTC
	Quarantined []Quarantined
}

// Len returns the number of rows in b.
func (b *Batch) Len() int {
	return len(b.Readings) + len(b.Alerts) + len(b.Acks) + len(b.Incidents) + len(b.DTCs) + len(b.Quarantined)
}
