// Command eval measures the default detector on firmware-sim's realistic
// trucks (scenario model "truck"): false alerts per 1,000 truck-hours of
// normal operation, and, for each fault of the fault matrix, how soon an
// alert follows the readings departing from normal and how long the hazard
// is present with no alert open. It prints one `EVAL <name> <value> <unit>`
// line per figure and a table.
//
//	eval -hours 20000 -runs 12
//
// The detector is fed as the gateway feeds it: the readings decoded from
// every CAN frame (sensors.CANDecoder, via firmwaresim.Sim.Simulate),
// Observe for each, Advance every second of simulated time.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.hours, "hours", 20000, "truck-hours of normal operation for the false-alert figure")
	flag.DurationVar(&o.trip, "trip", 10*time.Hour, "length of one simulated truck's run")
	flag.IntVar(&o.runs, "runs", 12, "trucks per fault of the fault matrix")
	flag.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "simulations run in parallel")
	flag.Int64Var(&o.seed, "seed", 1, "random seed")
	flag.StringVar(&o.only, "only", "", "run only this part: false or matrix")
	flag.DurationVar(&o.tick, "tick", time.Second, "simulator tick of the false-alert run (the fault matrix always uses 100ms)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "eval: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}
