package cloud

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/gateway"
	"github.com/abc4logistics/tankguard/sensors"
	"github.com/abc4logistics/tankguard/uplink"
)

// TestDTCReportOnTruckPage: a gateway's retained DTC report reaches the
// truck's console view with readable names; a later report replaces it; a
// report of a newer version or naming another truck is refused and
// counted, and changes nothing. Each report is archived once (dtcs/), the
// same report delivered again is not.
func TestDTCReportOnTruckPage(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, dir, nil)
	cl := dial(t, c.BrokerAddr(), "T-DTC")
	topic := uplink.Topic("T-DTC", uplink.KindDTC)
	report := func(dm1s ...sensors.DM1) []byte {
		p, err := uplink.EncodeDTCReport(uplink.NewDTCReport("T-DTC", 1767225600e9, dm1s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	type view struct {
		Truck struct {
			Faults []struct {
				Source  uint8  `json:"source"`
				SPN     uint32 `json:"spn"`
				FMI     uint8  `json:"fmi"`
				OC      uint8  `json:"oc"`
				Name    string `json:"name"`
				Failure string `json:"failure"`
			} `json:"faults"`
			FaultLamp string `json:"fault_lamp"`
		} `json:"truck"`
	}
	get := func() view {
		var v view
		getJSON(t, "http://"+c.HTTPAddr()+"/api/trucks/T-DTC", &v)
		return v
	}
	// tryGet is get for wait loops: the truck may not be known yet.
	tryGet := func() (view, bool) {
		var v view
		resp, err := http.DefaultClient.Do(authed("GET", "http://"+c.HTTPAddr()+"/api/trucks/T-DTC", nil))
		if err != nil {
			return v, false
		}
		defer resp.Body.Close()
		return v, resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&v) == nil
	}
	first := report(sensors.DM1{Source: 0, Lamps: sensors.Lamps{RedStop: sensors.LampOn},
		DTCs: []sensors.DTC{{SPN: 110, FMI: 0, Occurrences: 3}, {SPN: 175, FMI: 16, Occurrences: 1}}})
	for range 2 { // the second as a broker redelivers a retained report
		if tok := cl.Publish(topic, 1, true, first); !tok.WaitTimeout(5e9) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	waitFor(t, "DTC reports accepted", func() bool { v, ok := tryGet(); return ok && c.Stats().DTCReports == 2 && len(v.Truck.Faults) == 2 })
	v := get()
	if len(v.Truck.Faults) != 2 || v.Truck.FaultLamp != "red_stop" {
		t.Fatalf("truck view %+v", v.Truck)
	}
	if f := v.Truck.Faults[0]; f.SPN != 110 || f.FMI != 0 || f.OC != 3 || f.Name != "engine coolant temperature" || f.Failure != "above normal (most severe)" {
		t.Fatalf("fault 0 %+v", f)
	}
	if f := v.Truck.Faults[1]; f.Name != "engine oil temperature" {
		t.Fatalf("fault 1 %+v", f)
	}

	bad := c.Stats().BadPayloads
	newer := strings.Replace(string(report()), `"v":1`, `"v":2`, 1)
	publish(t, cl, topic, []byte(newer))
	other, _ := uplink.EncodeDTCReport(uplink.NewDTCReport("T-OTHER", 1, nil))
	publish(t, cl, topic, other)
	waitFor(t, "two reports refused", func() bool { return c.Stats().BadPayloads == bad+2 })
	if v := get(); len(v.Truck.Faults) != 2 {
		t.Fatalf("refused reports changed the faults: %+v", v.Truck)
	}

	cleared, err := uplink.EncodeDTCReport(uplink.NewDTCReport("T-DTC", 1767225660e9, []sensors.DM1{{Source: 0}}))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, cl, topic, cleared)
	waitFor(t, "cleared report shown", func() bool { v, ok := tryGet(); return ok && c.Stats().DTCReports == 3 && len(v.Truck.Faults) == 0 })
	if v := get(); v.Truck.FaultLamp != "" {
		t.Fatalf("lamp not cleared: %+v", v.Truck)
	}

	// The archive: the first report's two codes once, then the cleared
	// report's "no code" row.
	var rows []archive.DTC
	waitFor(t, "DTC rows archived", func() bool {
		rows, err = archive.ReadAll[archive.DTC](context.Background(), archive.Dir{Root: filepath.Join(dir, "archive")}, archive.DatasetDTCs)
		return err == nil && len(rows) >= 3
	})
	slices.SortFunc(rows, func(a, b archive.DTC) int { return cmp.Or(cmp.Compare(a.TimeNS, b.TimeNS), cmp.Compare(a.SPN, b.SPN)) })
	want := []archive.DTC{
		{Truck: "T-DTC", TimeNS: 1767225600e9, SPN: 110, FMI: 0, Occurrences: 3, RedStop: "on", AmberWarning: "off", Malfunction: "off", Protect: "off"},
		{Truck: "T-DTC", TimeNS: 1767225600e9, SPN: 175, FMI: 16, Occurrences: 1, RedStop: "on", AmberWarning: "off", Malfunction: "off", Protect: "off"},
		{Truck: "T-DTC", TimeNS: 1767225660e9, SPN: -1, RedStop: "off", AmberWarning: "off", Malfunction: "off", Protect: "off"},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("archived DTC rows\n got %+v\nwant %+v", rows, want)
	}
}

// TestGatewayDM1ToConsole replays a candump log with a BAM DM1 through a
// real gateway uplinking to the cloud's embedded broker: the engine's three
// codes reach the truck's console view.
func TestGatewayDM1ToConsole(t *testing.T) {
	c := startCloud(t, t.TempDir(), nil)
	cfg := gateway.DefaultConfig()
	cfg.Truck = "T-GW"
	cfg.DataDir = t.TempDir()
	cfg.Replay = []string{"../gateway/testdata/dm1_bam.candump"}
	cfg.ReplayFollow = true
	cfg.Cab.Listen = gateway.CabOff
	cfg.Uplink.BrokerURL = "tcp://" + c.BrokerAddr()
	g, err := gateway.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	var v struct {
		Truck struct {
			Faults []struct {
				SPN  uint32 `json:"spn"`
				Name string `json:"name"`
			} `json:"faults"`
			FaultLamp string `json:"fault_lamp"`
		} `json:"truck"`
	}
	waitFor(t, "the engine's codes on the console", func() bool {
		resp, err := http.DefaultClient.Do(authed("GET", "http://"+c.HTTPAddr()+"/api/trucks/T-GW", nil))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		v.Truck.Faults = nil
		return json.NewDecoder(resp.Body).Decode(&v) == nil && len(v.Truck.Faults) == 3
	})
	var names []string
	for _, f := range v.Truck.Faults {
		names = append(names, f.Name)
	}
	if want := []string{"engine coolant temperature", "engine oil pressure", "engine oil temperature"}; !slices.Equal(names, want) || v.Truck.FaultLamp != "amber_warning" {
		t.Fatalf("faults %q lamp %q, want %q and amber_warning", names, v.Truck.FaultLamp, want)
	}
}
