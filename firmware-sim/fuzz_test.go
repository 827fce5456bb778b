package firmwaresim

import (
	"os"
	"testing"
)

// FuzzParseScenario: any scenario file is either rejected or valid
// (Validate passes on what ParseScenario returns). Seeded with the example
// scenario and broken variants.
func FuzzParseScenario(f *testing.F) {
	if b, err := os.ReadFile("testdata/scenario.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `{"seed": 3, "default": {"warm": true}}`,
		`{"trucks": {"truck-01": {"faults": [{"kind": "overheat", "at": "10s", "ramp": "5s"}]}}}`,
		`{"trucks": {"truck-01": {"faults": [{"kind": "glitch", "at": "-1s", "count": -3}]}}}`,
		`{"trucks": {"truck-01": {"faults": [{"kind": "can_garbage", "at": "1s", "probability": 2}]}}}`,
		`{"default": {"route": [[91, 0]]}}`, `{"time_of_day": "25:00"}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScenario(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseScenario accepted a scenario that Validate rejects: %v", err)
		}
	})
}
