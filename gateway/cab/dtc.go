package cab

import (
	"slices"

	"github.com/abc4logistics/tankguard/sensors"
)

// faultJSON is one active trouble code as the page shows it.
type faultJSON struct {
	Source      uint8  `json:"source"` // J1939 address of the ECU
	SPN         uint32 `json:"spn"`
	FMI         uint8  `json:"fmi"`
	Occurrences uint8  `json:"oc"`      // 127: not available
	Name        string `json:"name"`    // e.g. "engine coolant temperature"
	Failure     string `json:"failure"` // e.g. "above normal (most severe)"
}

// faultsJSON is the page's "Engine fault codes" section.
type faultsJSON struct {
	RedStop bool        `json:"redStop"` // any ECU's red stop lamp on
	Amber   bool        `json:"amber"`   // any amber warning lamp on
	Codes   []faultJSON `json:"codes"`
}

// SetDTCs shows the active diagnostic trouble codes of the truck's ECUs
// (their latest DM1s, one per ECU; none clears the section). It copies
// what it keeps. Safe for concurrent use.
func (s *Server) SetDTCs(ecus []sensors.DM1) {
	f := faultsJSON{Codes: []faultJSON{}}
	for _, m := range ecus {
		f.RedStop = f.RedStop || m.Lamps.RedStop == sensors.LampOn
		f.Amber = f.Amber || m.Lamps.AmberWarning == sensors.LampOn
		for _, c := range m.DTCs {
			f.Codes = append(f.Codes, faultJSON{Source: m.Source, SPN: c.SPN, FMI: c.FMI, Occurrences: c.Occurrences,
				Name: sensors.SPNName(c.SPN), Failure: sensors.FMIName(c.FMI)})
		}
	}
	slices.SortStableFunc(f.Codes, func(a, b faultJSON) int { return int(a.Source) - int(b.Source) })
	s.mu.Lock()
	if f.RedStop != s.faults.RedStop || f.Amber != s.faults.Amber || !slices.Equal(f.Codes, s.faults.Codes) {
		s.faults = f
		s.statusVer++
	}
	s.mu.Unlock()
}
