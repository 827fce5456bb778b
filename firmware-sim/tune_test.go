package firmwaresim

import (
	"fmt"
	"testing"
	"time"
)

func TestTune2(t *testing.T) {
	cold := false
	var t80s, s40, s60 []float64
	for seed := int64(1); seed <= 12; seed++ {
		amb := 10 + float64(seed)
		var ts_, cs []float64
		truckRun(seed, TruckScenario{Warm: &cold, Ambient: &amb}, 60*time.Minute, func(s int, tr *truck, c float64) {
			ts_ = append(ts_, float64(s)); cs = append(cs, c)
		})
		a, b, c := warmup(ts_, cs)
		t80s = append(t80s, c/60); s40 = append(s40, a/c); s60 = append(s60, b/c)
	}
	fmt.Println("warmup", t80s, median(t80s), median(s40), median(s60))
	for _, amb := range []float64{-10, 0, 20} {
		var t80 []float64
		for seed := int64(1); seed <= 12; seed++ {
			a := amb
			var ts_, cs []float64
			truckRun(seed, TruckScenario{Warm: &cold, Ambient: &a}, 90*time.Minute, func(s int, tr *truck, c float64) {
				ts_ = append(ts_, float64(s)); cs = append(cs, c)
			})
			_, _, c := warmup(ts_, cs)
			t80 = append(t80, c/60)
		}
		fmt.Println("warmup at", amb, median(t80), t80)
	}
	var amps, pers []float64
	warm := true
	for seed := int64(1); seed <= 6; seed++ {
		amb := 36 + float64(seed)
		var ts_, cs []float64
		truckRun(seed, TruckScenario{Warm: &warm, Ambient: &amb, Stops: "none", Events: []Event{{Kind: EventIdle, At: Duration(5 * time.Minute), Duration: Duration(40 * time.Minute)}}}, 45*time.Minute, func(s int, tr *truck, c float64) {
			if s > 8*60 {
				ts_ = append(ts_, float64(s)); cs = append(cs, c)
			}
		})
		a, p := fanCycles(ts_, cs)
		amps = append(amps, a...); pers = append(pers, p...)
	}
	fmt.Println("fan", median(amps), median(pers), len(amps), amps, pers)
	for _, amb := range []float64{-10, -2, 5, 15, 25} {
		var falls []float64
		for seed := int64(1); seed <= 6; seed++ {
			a := amb
			first, low := -1.0, 999.0
			truckRun(seed, TruckScenario{Warm: &warm, Ambient: &a, Events: []Event{{Kind: EventEngineOff, At: Duration(40 * time.Minute), Duration: Duration(time.Duration(30+10*seed) * time.Second)}}}, 42*time.Minute, func(s int, tr *truck, c float64) {
				if !tr.phys.truck.ignition {
					if first < 0 {
						first = c
					}
					low = min(low, c)
				}
			})
			falls = append(falls, first-low)
		}
		fmt.Println("stop", amb, falls)
	}
}
