package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/sensors"
)

// KindDTC is the topic kind of a truck's active diagnostic trouble codes
// (J1939 DM1 of every ECU), published retained: the latest report is the
// truck's current state. It is an addition to version 1 of the protocol:
// a cloud built before it rejects the topic as an unknown kind (counted),
// and the batch format is unchanged.
const KindDTC = "up/dtc"

// DTCVersion is the version of the DTC report format.
const DTCVersion = 1

// MaxDTCSize bounds a DTC report payload.
const MaxDTCSize = 64 << 10

// maxDTCECUs bounds the ECUs one report may list (J1939 has 254
// addresses; a truck has a handful of ECUs).
const maxDTCECUs = 64

// ErrBadDTC reports a DTC report payload that is malformed or invalid.
var ErrBadDTC = errors.New("uplink: bad DTC report")

// DTCReport is the active trouble codes of every ECU a gateway hears, as
// of Time. ECUs that reported no code are listed with none (their lamps
// still count); an ECU that went silent is dropped by the gateway.
type DTCReport struct {
	V     int    `json:"v"`
	Truck string `json:"truck"`
	// Time is when the report was made, Unix ns UTC.
	Time int64    `json:"time"`
	ECUs []DTCECU `json:"ecus"`
}

// DTCECU is one ECU's DM1.
type DTCECU struct {
	// Source is the ECU's J1939 address.
	Source uint8 `json:"source"`
	// Time is when its last DM1 arrived, Unix ns UTC.
	Time  int64     `json:"time"`
	Lamps DTCLamps  `json:"lamps"`
	DTCs  []DTCCode `json:"dtcs"`
}

// DTCLamps are the lamp states by name ("off", "on", "error", "n/a").
type DTCLamps struct {
	Malfunction  string `json:"malfunction"`
	RedStop      string `json:"red_stop"`
	AmberWarning string `json:"amber_warning"`
	Protect      string `json:"protect"`
}

// DTCCode is one trouble code.
type DTCCode struct {
	SPN         uint32 `json:"spn"`
	FMI         uint8  `json:"fmi"`
	Occurrences uint8  `json:"oc"`
}

// NewDTCReport builds the report of truck at time t from DM1s, one per
// ECU, sorted by source address. It copies what it keeps.
func NewDTCReport(truck string, t int64, dm1s []sensors.DM1) DTCReport {
	r := DTCReport{V: DTCVersion, Truck: truck, Time: t, ECUs: make([]DTCECU, 0, len(dm1s))}
	for _, m := range dm1s {
		e := DTCECU{Source: m.Source, Time: m.Time, Lamps: DTCLamps{
			Malfunction: m.Lamps.Malfunction.String(), RedStop: m.Lamps.RedStop.String(),
			AmberWarning: m.Lamps.AmberWarning.String(), Protect: m.Lamps.Protect.String(),
		}, DTCs: make([]DTCCode, 0, len(m.DTCs))}
		for _, c := range m.DTCs {
			e.DTCs = append(e.DTCs, DTCCode{SPN: c.SPN, FMI: c.FMI, Occurrences: c.Occurrences})
		}
		r.ECUs = append(r.ECUs, e)
	}
	slices.SortFunc(r.ECUs, func(a, b DTCECU) int { return int(a.Source) - int(b.Source) })
	return r
}

// Validate checks the report's fields.
func (r DTCReport) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrBadDTC)
	}
	if r.V != DTCVersion {
		return fmt.Errorf("DTC report version %d, this build reads %d: %w", r.V, DTCVersion, ErrVersion)
	}
	if !ValidTruckID(r.Truck) {
		return bad("truck %q", r.Truck)
	}
	if len(r.ECUs) > maxDTCECUs {
		return bad("%d ECUs, at most %d", len(r.ECUs), maxDTCECUs)
	}
	for i, e := range r.ECUs {
		if i > 0 && e.Source <= r.ECUs[i-1].Source {
			return bad("ecus[%d]: source %d not after %d", i, e.Source, r.ECUs[i-1].Source)
		}
		for name, l := range map[string]string{"malfunction": e.Lamps.Malfunction, "red_stop": e.Lamps.RedStop, "amber_warning": e.Lamps.AmberWarning, "protect": e.Lamps.Protect} {
			if _, err := sensors.ParseLamp(l); err != nil {
				return bad("ecus[%d].lamps.%s: %v", i, name, err)
			}
		}
		if len(e.DTCs) > (sensors.TPMaxSize-2)/4 {
			return bad("ecus[%d]: %d codes, more than a DM1 carries", i, len(e.DTCs))
		}
		for j, c := range e.DTCs {
			if c.SPN >= 1<<19 || c.FMI > 31 || c.Occurrences > 127 {
				return bad("ecus[%d].dtcs[%d]: spn %d fmi %d oc %d out of range", i, j, c.SPN, c.FMI, c.Occurrences)
			}
		}
	}
	return nil
}

// EncodeDTCReport returns the wire form of r (JSON, at most MaxDTCSize
// bytes); a zero V is set to DTCVersion.
func EncodeDTCReport(r DTCReport) ([]byte, error) {
	if r.V == 0 {
		r.V = DTCVersion
	}
	if r.ECUs == nil {
		r.ECUs = []DTCECU{}
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("uplink encode DTC report: %w", err)
	}
	p, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("uplink encode DTC report: %w", err)
	}
	if len(p) > MaxDTCSize {
		return nil, fmt.Errorf("uplink encode DTC report: %d bytes: %w", len(p), ErrTooLarge)
	}
	return p, nil
}

// DecodeDTCReport parses and validates a DTC report: at most MaxDTCSize
// bytes, one JSON object, no unknown fields, nothing after it. A report of
// another version fails with ErrVersion (checked before the rest, so a
// newer gateway's report is refused by name, not as garbage); other errors
// wrap ErrBadDTC or ErrTooLarge.
func DecodeDTCReport(payload []byte) (DTCReport, error) {
	if len(payload) > MaxDTCSize {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: %d bytes > %d: %w", len(payload), MaxDTCSize, ErrTooLarge)
	}
	var v struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: %v: %w", err, ErrBadDTC)
	}
	if v.V != DTCVersion {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: version %d, this build reads %d: %w", v.V, DTCVersion, ErrVersion)
	}
	var r DTCReport
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: %v: %w", err, ErrBadDTC)
	}
	if _, err := dec.Token(); err != io.EOF {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: data after the object: %w", ErrBadDTC)
	}
	if err := r.Validate(); err != nil {
		return DTCReport{}, fmt.Errorf("uplink decode DTC report: %w", err)
	}
	if r.ECUs == nil {
		r.ECUs = []DTCECU{}
	}
	return r, nil
}

// SetDTCs sets the truck's active trouble codes to report: the publisher
// sends the latest report, retained, as soon as it is connected, and again
// on every new connection (a restarted broker may have lost it). A report equal
// to the last one set (ignoring its time) is not sent again. Safe for
// concurrent use; r is copied.
func (p *Publisher) SetDTCs(r DTCReport) {
	r.Truck = p.cfg.Truck
	r.V = DTCVersion
	p.mu.Lock()
	if p.dtc != nil && dtcSame(*p.dtc, r) {
		p.mu.Unlock()
		return
	}
	p.dtc, p.dtcSent = &r, false
	p.mu.Unlock()
	select {
	case p.dtcKick <- struct{}{}:
	default:
	}
}

func dtcSame(a, b DTCReport) bool {
	a.Time, b.Time = 0, 0
	if len(a.ECUs) != len(b.ECUs) {
		return false
	}
	for i := range a.ECUs {
		x, y := a.ECUs[i], b.ECUs[i]
		if x.Source != y.Source || x.Lamps != y.Lamps || !slices.Equal(x.DTCs, y.DTCs) {
			return false
		}
	}
	return true
}

// dtcMaxFails is how many connections in a row may end with a DTC
// report unacknowledged before the publisher stops sending them: a broker
// whose ACL predates up/dtc (an older tankguard broker, an AWS IoT policy
// without the topic) drops the connection on the refused publish, and
// telemetry must not pay for that with a reconnect loop.
const dtcMaxFails = 2

// dtcFailed records a DTC publish that was not acknowledged. A token that
// was still pending when the session ended is given a moment to settle:
// a broker refusing the topic disconnects at once.
func (p *Publisher) dtcFailed(ctx context.Context, tok mqtt.Token) {
	if ctx.Err() != nil && !tok.WaitTimeout(time.Second) {
		return // the session ended for another reason while it was in flight
	}
	if ctx.Err() != nil && tok.Error() == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dtcFails++
	if p.dtcFails >= dtcMaxFails && !p.dtcOff {
		p.dtcOff = true
		p.log.Warn("uplink: the broker refuses DTC reports (connection dropped on "+KindDTC+" twice); not sending them until restart: allow the topic in the broker ACL or IoT policy",
			"topic", Topic(p.cfg.Truck, KindDTC), "error", tok.Error())
	}
}

// DTCsDisabled reports whether the publisher gave up on DTC reports
// because the broker refused them (see dtcMaxFails).
func (p *Publisher) DTCsDisabled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dtcOff
}

// DTCsSent reports whether the broker acknowledged the latest report set.
func (p *Publisher) DTCsSent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dtc != nil && p.dtcSent
}

// runDTCs publishes DTC reports over connection c until ctx is done. Run
// starts it beside each session and cancels it when the session ends.
func (p *Publisher) runDTCs(ctx context.Context, c mqtt.Client) {
	for first := true; ; first = false {
		p.mu.Lock()
		r, sent, off := p.dtc, p.dtcSent, p.dtcOff
		p.mu.Unlock()
		if r != nil && (!sent || first) && !off {
			payload, err := EncodeDTCReport(*r)
			if err != nil {
				p.log.Error("uplink: DTC report not sent", "error", err)
				p.mu.Lock()
				p.dtcSent = true // an unsendable report would be retried forever
				p.mu.Unlock()
			} else {
				tok := c.Publish(Topic(p.cfg.Truck, KindDTC), 1, true, payload)
				if !waitToken(ctx, tok, p.cfg.PublishTimeout) || tok.Error() != nil {
					p.dtcFailed(ctx, tok)
					return // the session is failing; the next one sends it
				}
				p.mu.Lock()
				p.dtcFails = 0
				if p.dtc == r {
					p.dtcSent = true
				}
				p.mu.Unlock()
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.dtcKick:
		}
	}
}
