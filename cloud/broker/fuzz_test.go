package broker

import (
	"strings"
	"testing"

	"github.com/abc4logistics/tankguard/uplink"
)

// FuzzTruckMay: for any truck identity and any topic or filter, a truck
// may only publish under its own topics and subscribe to its own command
// topic; in particular never to a topic naming another truck, and never
// with a wildcard.
func FuzzTruckMay(f *testing.F) {
	for _, s := range [][2]string{
		{"truck-A", uplink.Topic("truck-A", uplink.KindTelemetry)},
		{"truck-A", uplink.Topic("truck-B", uplink.KindTelemetry)},
		{"truck-A", uplink.Topic("truck-A", uplink.KindCommand)},
		{"truck-A", "tankguard/v1/trucks/+/cmd"},
		{"truck-A", "#"},
		{"+", "tankguard/v1/trucks/+/cmd"},
		{"#", "tankguard/v1/trucks/#/up/telemetry"},
		{"a/b", "tankguard/v1/trucks/a/b/status"},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, id, topic string, write bool) {
		if !uplink.ValidTruckID(id) {
			return // identity() refuses such certificates before any ACL check
		}
		if !truckMay(id, topic, write) {
			return
		}
		if strings.ContainsAny(topic, "+#") {
			t.Fatalf("truck %q may use wildcard %q", id, topic)
		}
		truck, kind, err := uplink.ParseTopic(topic)
		if err != nil || truck != id {
			t.Fatalf("truck %q may use %q (parsed truck %q, %v)", id, topic, truck, err)
		}
		if write == (kind == uplink.KindCommand) {
			t.Fatalf("truck %q may %s %q", id, map[bool]string{true: "publish to", false: "subscribe to"}[write], topic)
		}
	})
}
