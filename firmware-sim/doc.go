// Package firmwaresim simulates trucks: ECUs sending J1939 frames on a CAN
// bus, a GNSS receiver and tank probes on serial ports, with physics,
// injected faults and a ground-truth record of every value emitted.
//
// It is a test and demo tool; nothing in the data path imports it.
//
// # Transports
//
// Each truck gets a CAN bus and an NMEA serial port:
//
//   - CAN: by default a TCP listener on 127.0.0.1:0 that sends SocketCAN
//     frames (16-byte struct can_frame, einride socketcan wire format) to
//     every connected client; sensors.CANSource reads it with
//     Addr "tcp://127.0.0.1:PORT". With Config.CAN naming SocketCAN
//     interfaces, frames go to the real (or vcan) interface instead.
//   - Serial: a pseudo-terminal (raw, no echo) streaming NMEA RMC and GGA at
//     1 Hz; sensors.NMEASource reads its slave path (/dev/pts/N).
//
// A truck's clock starts when its first CAN client connects, so nothing is
// emitted into the void. Messages follow the DBC cycle times: ET1 (coolant),
// VP (position) and CTT (cargo temperature) every 1 s, CCVS (wheel speed)
// every 100 ms.
//
// # Manifest
//
// Once every truck is ready, the manifest is passed to Config.OnReady and
// written to Config.ManifestPath (atomically):
//
//	{"trucks":[{"id":"truck-01","can":"tcp://127.0.0.1:40123","serial":"/dev/pts/3"}]}
//
// # Ground truth
//
// With Config.TruthPath, every value actually emitted while a client was
// connected is written as CSV with the header truck,signal,time_unix_ns,value.
// signal is sensors.Signal.String(); time is the simulator's clock at
// emission; value is what a gateway decodes, bit for bit: the simulator
// decodes its own frames and sentences with the sensors package and records
// the result (formatted with strconv 'g' -1, so it parses back exactly).
// ReadTruth parses the file.
//
// # Scenario
//
// A JSON scenario (example: testdata/scenario.json) sets per-truck options
// and a fault timeline; times are offsets after the truck starts, written as
// Go durations ("60s") or seconds:
//
//	{
//	  "seed": 7,
//	  "default": {"warm": true},
//	  "trucks": {
//	    "truck-01": {"faults": [{"kind": "overheat", "at": "60s", "ramp": "30s", "peak": 115}]}
//	  }
//	}
//
// Fault kinds: overheat (coolant ramps from its thermostat band, 88-92 °C,
// to peak, default 115 °C, over ramp, default 30 s, then holds; a hazard).
// "warm": true starts the engine at its normal temperature; otherwise it
// warms up from ambient over several minutes.
package firmwaresim
