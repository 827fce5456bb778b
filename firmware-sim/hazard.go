package firmwaresim

import (
	"strconv"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
)

// Hazard thresholds of the ground truth: when the true (noise-free)
// temperatures of a realistic truck are hazardous, whatever the sensors
// say. They are detect's default warning limits.
const (
	// HazardCoolant: true coolant above it is a hazard (°C).
	HazardCoolant = 104.0
	// HazardCargo: true cargo above it is a hazard (°C); so is any time
	// an external heat source (cargo_heating) heats the tank.
	HazardCargo = 45.0
)

// HazardPresent is the kind of the fault-file lines that record when a
// realistic truck's hazard was physically present (not a fault one can
// schedule): signal coolant_temp while the true coolant is above
// HazardCoolant, cargo_temp while the true cargo is above HazardCargo or a
// fire heats it. They are written when the run ends; end is empty when it
// was still present.
const HazardPresent FaultKind = "hazard_present"

// hazardTracker follows one realistic truck's hazard windows.
type hazardTracker struct {
	open    [2]int64 // start (Unix ns) of the window under way per signal, 0 none
	present [2]bool  // at the last observe
	windows []FaultWindow
}

var hazardSignals = [2]sensors.Signal{sensors.CoolantTemp, sensors.CargoTemp}

// observe updates the windows at time now (Unix ns).
func (h *hazardTracker) observe(t *truck, now int64, elapsed time.Duration) {
	coolant, cargo := t.trueValues(elapsed)
	h.present = [2]bool{coolant > HazardCoolant, cargo > HazardCargo || t.phys.cargoHeatActive}
	for i, on := range h.present {
		switch {
		case on && h.open[i] == 0:
			h.open[i] = now
		case !on && h.open[i] != 0:
			h.windows = append(h.windows, FaultWindow{Truck: t.id, Kind: HazardPresent, Signal: hazardSignals[i].String(), Start: h.open[i], End: now, Hazard: true})
			h.open[i] = 0
		}
	}
}

// final returns every window, those still open with End 0.
func (h *hazardTracker) final(id string) []FaultWindow {
	out := append([]FaultWindow(nil), h.windows...)
	for i, start := range h.open {
		if start != 0 {
			out = append(out, FaultWindow{Truck: id, Kind: HazardPresent, Signal: hazardSignals[i].String(), Start: start, Hazard: true})
		}
	}
	return out
}

// appendFaultLines formats windows as fault-file lines.
func appendFaultLines(b []byte, ws []FaultWindow) []byte {
	for _, w := range ws {
		b = append(b, w.Truck...)
		b = append(b, ',')
		b = append(b, w.Kind...)
		b = append(b, ',')
		b = append(b, w.Signal...)
		b = append(b, ',')
		b = strconv.AppendInt(b, w.Start, 10)
		b = append(b, ',')
		if w.End != 0 {
			b = strconv.AppendInt(b, w.End, 10)
		}
		b = append(b, ',')
		b = strconv.AppendBool(b, w.Hazard)
		b = append(b, '\n')
	}
	return b
}

// writeHazardWindows appends every realistic truck's hazard_present
// windows to the faults file (at the end of a run) and returns them.
func (s *Sim) writeHazardWindows() []FaultWindow {
	var all []FaultWindow
	for _, t := range s.trucks {
		if t.phys.truck != nil && t.tick > 0 {
			all = append(all, t.hazards.final(t.id)...)
		}
	}
	if s.faultsOut != nil && len(all) > 0 {
		s.faultsOut.write(appendFaultLines(nil, all))
	}
	return all
}
