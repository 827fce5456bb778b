package gateway

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// dtcStaleAfter is how long an ECU's trouble codes stay shown without a
// new DM1 (J1939-73 ECUs send one every second): an ECU that went quiet,
// or was switched off, no longer reports them.
const dtcStaleAfter = 10 * time.Second

// dtcTable holds the latest DM1 of every ECU heard.
type dtcTable struct {
	mu   sync.Mutex
	ecus map[uint8]sensors.DM1
}

// listLocked returns the ECUs' DM1s sorted by source address.
func (d *dtcTable) listLocked() []sensors.DM1 {
	out := make([]sensors.DM1, 0, len(d.ecus))
	for _, m := range d.ecus {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b sensors.DM1) int { return int(a.Source) - int(b.Source) })
	return out
}

// expireLocked drops the ECUs whose last DM1 is older than now minus
// dtcStaleAfter and reports whether it dropped any.
func (d *dtcTable) expireLocked(now int64) bool {
	n := len(d.ecus)
	for src, m := range d.ecus {
		if now-m.Time > int64(dtcStaleAfter) {
			delete(d.ecus, src)
		}
	}
	return len(d.ecus) != n
}

// onDM1 takes one ECU's DM1 from a CAN source or replay (its goroutine):
// the cab shows the codes and the uplink reports them, both only when
// they changed. Times are the DM1s' own (the log's, for a replay).
func (g *Gateway) onDM1(m sensors.DM1) {
	g.dtc.mu.Lock()
	prev, had := g.dtc.ecus[m.Source]
	g.dtc.ecus[m.Source] = m
	g.dtc.expireLocked(m.Time)
	list := g.dtc.listLocked()
	g.dtc.mu.Unlock()
	if !had || prev.Lamps != m.Lamps || !slices.Equal(prev.DTCs, m.DTCs) {
		codes := make([]string, 0, len(m.DTCs))
		for _, c := range m.DTCs {
			codes = append(codes, sensors.SPNName(c.SPN)+": "+sensors.FMIName(c.FMI))
		}
		g.log.Info("ECU trouble codes", "source", m.Source, "codes", len(m.DTCs), "red_stop", m.Lamps.RedStop, "amber", m.Lamps.AmberWarning, "active", codes)
	}
	g.showDTCs(list, m.Time)
}

// showDTCs hands the ECUs' codes to the cab and the uplink, which both
// ignore a list equal to the last one.
func (g *Gateway) showDTCs(list []sensors.DM1, t int64) {
	if g.cab != nil {
		g.cab.SetDTCs(list)
	}
	g.pub.SetDTCs(uplink.NewDTCReport(g.cfg.Truck, t, list))
}

// DTCs returns the latest DM1 of every ECU heard in the last
// dtcStaleAfter, sorted by source address; the caller owns the slice.
func (g *Gateway) DTCs() []sensors.DM1 {
	g.dtc.mu.Lock()
	defer g.dtc.mu.Unlock()
	return g.dtc.listLocked()
}

// expireDTCs drops, on the gateway's clock, the codes of ECUs that went
// quiet, for live buses (a replay expires them on the log's time in
// onDM1).
func (g *Gateway) expireDTCs(ctx context.Context) error {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		now := g.now().UnixNano()
		g.dtc.mu.Lock()
		dropped := g.dtc.expireLocked(now)
		list := g.dtc.listLocked()
		g.dtc.mu.Unlock()
		if dropped {
			g.showDTCs(list, now)
		}
	}
}
