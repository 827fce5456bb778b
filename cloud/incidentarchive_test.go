package cloud

import (
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
)

// TestIncidentsArchived checks that every incident change is archived in
// incidents/ and that the newest row of an incident is its current state.
func TestIncidentsArchived(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cl := dial(t, c.BrokerAddr(), "sim")
	overheat(t, cl, "IA", time.Now().Add(-10*time.Minute).UTC().Truncate(time.Second), 0)
	waitFor(t, "incident with both sources", func() bool {
		l := c.List()
		return len(l) == 1 && len(l[0].Sources) == 2
	})
	id := c.List()[0].ID
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	rows, err := archive.ReadIncidents(c.ArchiveDir())
	if err != nil {
		t.Fatal(err)
	}
	var newest archive.Incident
	n := 0
	for _, r := range rows {
		if r.ID != id {
			continue
		}
		n++
		if r.ChangedNS >= newest.ChangedNS {
			newest = r
		}
	}
	if n < 2 {
		t.Fatalf("%d archived states of %s, want at least 2 (opened, source joined)", n, id)
	}
	if newest.State != "open" || newest.Sources != "cloud,edge" || newest.Truck != "IA" || newest.Severity != "critical" || newest.HistoryJSON == "" {
		t.Fatalf("newest archived state %+v", newest)
	}
}
