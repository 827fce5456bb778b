package incident

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/sensors"
)

// TestAckOriginTyped: an incident records whether the driver at the cab
// or a named fleet user acknowledged it, from where the ack came, not from
// its name: a console user called "driver" is a fleet user (issue 15,
// observation 3).
func TestAckOriginTyped(t *testing.T) {
	C := detect.SeverityCritical
	for _, tc := range []struct {
		name    string
		fromCab bool
		by      string
		want    detect.AckOrigin
	}{
		{"the cab button", true, "driver", detect.AckDriver},
		{"a console user named driver", false, "driver", detect.AckFleet},
		{"a console user", false, "ops", detect.AckFleet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openDB(t)
			m, err := Open(db, Config{MergeWindow: time.Minute}, t0, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var acks []detect.Ack
			if tc.fromCab {
				acks = []detect.Ack{{Truck: "T1", Signal: sensors.CoolantTemp, Start: t0.UnixNano(), Time: t0.Add(15 * time.Second).UnixNano(), By: tc.by, Severity: C, Origin: detect.AckDriver}}
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				return m.Observe(tx, t0, "edge", []detect.Transition{tr(detect.Raised, C, 0, 10)}, acks, []string{"T1"})
			}); err != nil {
				t.Fatal(err)
			}
			inc := m.List()[0]
			if !tc.fromCab {
				if inc, err = m.Acknowledge(inc.ID, tc.by, t0.Add(20*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			last := inc.History[len(inc.History)-1]
			if last.Type != EventAcknowledged || last.Origin != tc.want {
				t.Errorf("history %+v, want an acknowledgement from %v", last, tc.want)
			}
			if inc.State != StateAcknowledged || inc.AckedBy != tc.by || inc.AckedFrom != tc.want || inc.summary().AckedFrom != tc.want {
				t.Errorf("state %s, acked by %q from %v; want %q from %v", inc.State, inc.AckedBy, inc.AckedFrom, tc.by, tc.want)
			}
		})
	}
}
