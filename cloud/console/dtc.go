package console

import (
	"time"

	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// Fault is one active diagnostic trouble code of one of a truck's ECUs,
// as the truck page lists it.
type Fault struct {
	Source      uint8  `json:"source"` // J1939 address of the ECU (0 = engine)
	SPN         uint32 `json:"spn"`
	FMI         uint8  `json:"fmi"`
	Occurrences uint8  `json:"oc"`      // 127: not available
	Name        string `json:"name"`    // e.g. "engine coolant temperature"
	Failure     string `json:"failure"` // e.g. "above normal (most severe)"
}

// DTCs records a truck's latest DTC report (its ECUs' active trouble
// codes), replacing the previous one, and pushes the truck to live
// clients. Safe for concurrent use.
func (c *Console) DTCs(r uplink.DTCReport) {
	faults := []Fault{}
	lamp := ""
	for _, e := range r.ECUs {
		switch {
		case e.Lamps.RedStop == sensors.LampOn.String():
			lamp = "red_stop"
		case e.Lamps.AmberWarning == sensors.LampOn.String() && lamp == "":
			lamp = "amber_warning"
		}
		for _, d := range e.DTCs {
			faults = append(faults, Fault{Source: e.Source, SPN: d.SPN, FMI: d.FMI, Occurrences: d.Occurrences,
				Name: sensors.SPNName(d.SPN), Failure: sensors.FMIName(d.FMI)})
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.truck(r.Truck)
	t.Faults, t.FaultLamp, t.FaultsTime = faults, lamp, time.Unix(0, r.Time).UTC()
}
