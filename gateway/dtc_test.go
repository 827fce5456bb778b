package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

type dtcAllowAll struct{ mochi.HookBase }

func (*dtcAllowAll) ID() string { return "allow-all" }
func (*dtcAllowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (*dtcAllowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (*dtcAllowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// TestReplayedDM1ReachesCabAndUplink replays a candump log in which the
// engine reports a coolant code in one frame, then three codes by BAM
// (coolant, oil pressure, oil temperature), while the transmission (SA
// 03) starts a BAM it never finishes and then reports no codes. The cab's
// state lists the three codes with readable names, and the broker holds
// the retained DTC report the gateway uplinked.
func TestReplayedDM1ReachesCabAndUplink(t *testing.T) {
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(dtcAllowAll), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var reports []uplink.DTCReport
	var decodeErr error
	err := srv.Subscribe(uplink.Topic("T-DTC", uplink.KindDTC), 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		r, err := uplink.DecodeDTCReport(pk.Payload)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			decodeErr = err
			return
		}
		reports = append(reports, r)
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Truck = "T-DTC"
	cfg.DataDir = t.TempDir()
	cfg.Replay = []string{filepath.Join("testdata", "dm1_bam.candump")}
	cfg.ReplayFollow = true
	cfg.Cab.Listen = "127.0.0.1:0"
	cfg.Uplink.BrokerURL = "tcp://" + tcp.Address()
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-g.ReplaysDone():
	case <-ctx.Done():
		t.Fatal("replay did not finish")
	}

	// The gateway's own view.
	wantCodes := []sensors.DTC{{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 100, FMI: 1, Occurrences: 1}, {SPN: 175, FMI: 16, Occurrences: 126}}
	ecus := g.DTCs()
	if len(ecus) != 2 || ecus[0].Source != 0 || !slices.Equal(ecus[0].DTCs, wantCodes) || ecus[1].Source != 3 || len(ecus[1].DTCs) != 0 {
		t.Fatalf("gateway DTCs %+v", ecus)
	}

	// The cab page's state.
	<-g.Cab().Ready()
	resp, err := http.Get("http://" + g.Cab().Addr() + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st struct {
		Status struct {
			Faults struct {
				Amber   bool `json:"amber"`
				RedStop bool `json:"redStop"`
				Codes   []struct {
					Source  uint8  `json:"source"`
					SPN     uint32 `json:"spn"`
					FMI     uint8  `json:"fmi"`
					Name    string `json:"name"`
					Failure string `json:"failure"`
				} `json:"codes"`
			} `json:"faults"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("cab state %s: %v", body, err)
	}
	f := st.Status.Faults
	if !f.Amber || f.RedStop || len(f.Codes) != 3 {
		t.Fatalf("cab faults %+v", f)
	}
	for i, want := range []string{"engine coolant temperature", "engine oil pressure", "engine oil temperature"} {
		if c := f.Codes[i]; c.Name != want || c.SPN != wantCodes[i].SPN || c.FMI != wantCodes[i].FMI {
			t.Errorf("cab code %d = %+v, want %s", i, c, want)
		}
	}
	if f.Codes[0].Failure != "above normal (most severe)" {
		t.Errorf("cab code 0 failure %q", f.Codes[0].Failure)
	}

	// The uplinked report: retained on the broker, the latest with the
	// three codes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(reports)
		var last uplink.DTCReport
		if n > 0 {
			last = reports[n-1]
		}
		mu.Unlock()
		if n > 0 && len(last.ECUs) == 2 && len(last.ECUs[0].DTCs) == 3 {
			if last.Truck != "T-DTC" || last.ECUs[0].Lamps.AmberWarning != "on" || last.ECUs[0].DTCs[2] != (uplink.DTCCode{SPN: 175, FMI: 16, Occurrences: 126}) {
				t.Fatalf("last report %+v", last)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DTC report with three codes; got %d reports, last %+v, decode error %v", n, last, decodeErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rm := srv.Topics.Messages(uplink.Topic("T-DTC", uplink.KindDTC)); len(rm) != 1 || !rm[0].FixedHeader.Retain {
		t.Fatalf("retained DTC reports on the broker: %d", len(rm))
	}
	mu.Lock()
	defer mu.Unlock()
	if decodeErr != nil {
		t.Fatal(decodeErr)
	}
}

// TestDTCsOfQuietECUExpire: an ECU whose last DM1 is more than
// dtcStaleAfter older than another ECU's latest no longer counts (it went
// quiet or was switched off); one that keeps reporting stays.
func TestDTCsOfQuietECUExpire(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Truck = "T-EXP"
	cfg.DataDir = t.TempDir()
	cfg.CAN = []string{"tcp://127.0.0.1:1"}
	cfg.Cab.Listen = CabOff
	cfg.Uplink.BrokerURL = "tcp://127.0.0.1:1"
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Queue().Close()
	const s = int64(time.Second)
	coolant := []sensors.DTC{{SPN: 110, FMI: 0, Occurrences: 1}}
	g.onDM1(sensors.DM1{Source: 3, Time: 0, DTCs: []sensors.DTC{{SPN: 190, FMI: 2, Occurrences: 1}}})
	for i := int64(0); i <= 12; i++ {
		g.onDM1(sensors.DM1{Source: 0, Time: i * s, DTCs: coolant})
	}
	got := g.DTCs()
	if len(got) != 1 || got[0].Source != 0 || !slices.Equal(got[0].DTCs, coolant) {
		t.Fatalf("DTCs after 12 s %+v, want only the engine's", got)
	}
	// The live expiry on the gateway's clock: everything heard in 1970 is
	// stale now.
	g.dtc.mu.Lock()
	dropped := g.dtc.expireLocked(time.Now().UnixNano())
	g.dtc.mu.Unlock()
	if !dropped || len(g.DTCs()) != 0 {
		t.Fatalf("expire on the gateway's clock: dropped %v, left %+v", dropped, g.DTCs())
	}
}
