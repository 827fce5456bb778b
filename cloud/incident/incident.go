package incident

import (
	"slices"
	"time"

	"github.com/abc4logistics/tankguard/detect"
)

// States of an incident.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

// Event types, in history and notifications.
const (
	EventOpened       = "opened"        // a new incident (notified)
	EventSourceJoined = "source_joined" // the other source raised the same excursion
	EventChanged      = "changed"       // severity rose (notified) or fell
	EventCleared      = "cleared"       // one source's condition ended
	EventAcknowledged = "acknowledged"  // a driver or operator acknowledged (notified)
	EventResolved     = "resolved"      // all sources cleared, data returned, or an operator resolved (notified)
	EventRepeat       = "repeat"        // still open and unacknowledged after the repeat interval (notified)
	EventEscalated    = "escalated"     // unacknowledged for too long (notified, also to escalation channels)
)

// Sources of incidents.
const (
	SourceEdge   = "edge"
	SourceCloud  = "cloud"
	SourceSystem = "system" // the cloud's own checks, such as truck offline
)

// KindOffline is the Kind of a truck-offline incident (Signal is "").
const KindOffline = "offline"

// SourceState is what one source said about the excursion.
type SourceState struct {
	Key      string    `json:"key"` // the transition Key (truck/signal/start)
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Start    time.Time `json:"start"`     // when the condition began (event time)
	RaisedAt time.Time `json:"raised_at"` // event time of the raising reading
	// At is the event time of this source's latest transition: the
	// incident's Kind is that of the latest among its worst sources.
	At      time.Time  `json:"at,omitzero"`
	Cleared *time.Time `json:"cleared,omitempty"`
}

// Ack origins: who pressed acknowledge, and where.
const (
	OriginDriver = detect.AckDriver // the cab's ACKNOWLEDGE button, uplinked by the gateway
	OriginFleet  = detect.AckFleet  // a fleet-team user in the console
)

// Acknowledgement is one acknowledgement of an incident, as it was made.
type Acknowledgement struct {
	By     string           `json:"by"`
	Origin detect.AckOrigin `json:"origin"` // OriginDriver or OriginFleet
	// At is when it was made: the cab's clock for a driver's, which may
	// reach the cloud long after (a coverage gap).
	At time.Time `json:"at"`
	// Recorded is when the cloud recorded it.
	Recorded time.Time `json:"recorded"`
	// Severity is what was acknowledged: for a driver, the severity the
	// cab showed at the press; for the fleet, the incident's at that moment.
	Severity string `json:"severity"`
	// Kind is the incident's kind when the cloud recorded it.
	Kind string `json:"kind"`
}

// Event is one entry of an incident's history.
type Event struct {
	At     time.Time `json:"at"` // cloud wall-clock time
	Type   string    `json:"type"`
	Source string    `json:"source,omitempty"`
	By     string    `json:"by,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// Origin, for an acknowledgement, says whether By is the driver at
	// the cab or a named fleet user.
	Origin detect.AckOrigin `json:"origin,omitempty"`
}

// Delivery is one notification outcome, in the incident's notification log.
type Delivery struct {
	Notification string    `json:"notification"` // Notification.ID
	Event        string    `json:"event"`
	Channel      string    `json:"channel"`
	At           time.Time `json:"at"`
	Attempts     int       `json:"attempts"`
	Result       string    `json:"result"` // "ok", or the last error (dead-lettered)
}

// Incident is one dangerous condition of one truck, merged from every
// source that reported it. Values returned by the Manager are copies.
type Incident struct {
	ID       string                  `json:"id"`
	Truck    string                  `json:"truck"`
	Signal   string                  `json:"signal,omitempty"`
	Kind     string                  `json:"kind"`
	Severity string                  `json:"severity"`       // of the latest condition
	Peak     string                  `json:"peak,omitempty"` // the worst severity it reached
	State    string                  `json:"state"`
	Start    time.Time               `json:"start"`     // event time the condition began
	OpenedAt time.Time               `json:"opened_at"` // cloud time the incident opened
	Sources  map[string]*SourceState `json:"sources"`

	// AckedBy, AckedAt and AckedFrom are the latest acknowledgement's
	// (Acks has every one); cleared when a worse condition needs a new
	// one. AckedFrom says who AckedBy is: the driver at the cab or a named
	// fleet user; never inferred from the name.
	AckedBy    string            `json:"acked_by,omitempty"`
	AckedAt    *time.Time        `json:"acked_at,omitempty"`
	AckedFrom  detect.AckOrigin  `json:"acked_from,omitempty"`
	Acks       []Acknowledgement `json:"acks,omitempty"`
	ResolvedBy string            `json:"resolved_by,omitempty"`
	ResolvedAt *time.Time        `json:"resolved_at,omitempty"`

	Escalated      bool      `json:"escalated"`
	LastNotifiedAt time.Time `json:"last_notified_at"`
	Notified       int       `json:"notified"` // notifications enqueued so far

	History       []Event    `json:"history"`
	Notifications []Delivery `json:"notifications"`
}

func (i *Incident) clone() Incident {
	c := *i
	c.Sources = make(map[string]*SourceState, len(i.Sources))
	for k, v := range i.Sources {
		s := *v
		c.Sources[k] = &s
	}
	c.History = slices.Clone(i.History)
	c.Acks = slices.Clone(i.Acks)
	c.Notifications = slices.Clone(i.Notifications)
	return c
}

// SourceNames returns the incident's sources, sorted.
func (i *Incident) SourceNames() []string {
	var s []string
	for k := range i.Sources {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// Notification is one message to the fleet team about an incident state
// change: the body of a webhook and of an SNS message.
type Notification struct {
	// ID is stable across retries and restarts: receivers can drop
	// repeats by it.
	ID string `json:"id"`
	// Event is the state change; Events lists every change grouped into
	// this notification (a burst within the group wait), oldest first.
	Event  string   `json:"event"`
	Events []string `json:"events"`
	// Escalation is set for escalated incidents; escalation channels get
	// only these.
	Escalation bool      `json:"escalation"`
	At         time.Time `json:"at"`
	Incident   Summary   `json:"incident"`
}

// Summary is the part of an incident a notification carries.
type Summary struct {
	ID       string    `json:"id"`
	Truck    string    `json:"truck"`
	Signal   string    `json:"signal,omitempty"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Peak     string    `json:"peak,omitempty"`
	State    string    `json:"state"`
	Sources  []string  `json:"sources"`
	Start    time.Time `json:"start"`
	OpenedAt time.Time `json:"opened_at"`
	// AckedBy and AckedAt are the latest acknowledgement's; Acks lists
	// every one, driver's and fleet's, as made.
	AckedBy    string            `json:"acked_by,omitempty"`
	AckedAt    *time.Time        `json:"acked_at,omitempty"`
	AckedFrom  detect.AckOrigin  `json:"acked_from,omitempty"`
	Acks       []Acknowledgement `json:"acks,omitempty"`
	ResolvedAt *time.Time        `json:"resolved_at,omitempty"`
}

func (i *Incident) summary() Summary {
	return Summary{
		ID: i.ID, Truck: i.Truck, Signal: i.Signal, Kind: i.Kind, Severity: i.Severity, Peak: i.Peak, State: i.State,
		Sources: i.SourceNames(), Start: i.Start, OpenedAt: i.OpenedAt, AckedBy: i.AckedBy, AckedFrom: i.AckedFrom, AckedAt: i.AckedAt,
		Acks: slices.Clone(i.Acks), ResolvedAt: i.ResolvedAt,
	}
}
