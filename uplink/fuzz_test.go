package uplink

import "testing"

// FuzzParseTopic: any topic string either fails or yields a valid truck id
// and a known kind that Topic turns back into the same string.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{
		Topic("truck-01", KindTelemetry), Topic("T", KindAlerts), Topic("a_b-c", KindStatus), Topic("x", KindCommand),
		"tankguard/v1/trucks/", "tankguard/v1/trucks/+/up/#", "tankguard/v1/trucks/t/up/telemetry/extra", "", "/", "tankguard/v1/trucks/t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		truck, kind, err := ParseTopic(topic)
		if err != nil {
			return
		}
		if !ValidTruckID(truck) {
			t.Fatalf("ParseTopic(%q) accepted truck %q", topic, truck)
		}
		if back := Topic(truck, kind); back != topic {
			t.Fatalf("ParseTopic(%q) = %q, %q; Topic gives %q", topic, truck, kind, back)
		}
	})
}
