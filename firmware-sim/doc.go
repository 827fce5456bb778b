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
// # Offline
//
// Sim.Simulate runs the trucks in simulated time, without transports or
// wall clock, passing each tick's decoded readings (and the noise-free
// temperatures) to a callback: the same values a live run with NoSerial
// emits, for measuring detection over thousands of truck-hours. The
// command's -offline flag does the same from a scenario file.
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
// Go durations ("60s") or seconds. The same seed gives the same values.
//
//	{
//	  "seed": 7,
//	  "default": {"warm": true},
//	  "trucks": {
//	    "truck-01": {"faults": [{"kind": "overheat", "at": "60s", "ramp": "30s", "peak": 115}]},
//	    "truck-02": {"cargo_probe": "serial", "vtg": true, "ambient": 30,
//	                 "route": [[51.95, 4.14], [51.26, 4.40]],
//	                 "faults": [{"kind": "sensor_stuck", "signal": "cargo_temp", "at": "2m", "duration": "5m"}]}
//	  }
//	}
//
// Truck options: warm (start at operating temperature instead of ambient),
// ambient (daily mean °C), route ([lat, lon] stops, driven in a loop),
// cargo_probe ("can" or "serial"), vtg (also send VTG).
//
// Fault kinds (hazard = must raise an alert) and their parameters:
//
//	overheat       hazard  coolant ramps from its band to peak (115) over ramp (30s)
//	coolant_loss   hazard  coolant equilibrium rises rate (4 °C/min) up to peak (125)
//	fan_failure    hazard  no fan: coolant settles 15-25 °C higher, more under load
//	cargo_heating  hazard  fire: cargo rises rate (20 °C/min) up to peak (150)
//	sensor_stuck           signal repeats its value from the fault start
//	sensor_dropout         signal's message not sent (mode "missing"), or sent
//	                       with J1939 "error" / "not_available" values
//	glitch                 count (1) single samples off by amplitude (+40), every (10s) apart
//	noise_burst            extra Gaussian noise of sigma amplitude (3) on signal
//	can_silence            no CAN frames at all
//	can_garbage            probability (0.1) per frame: bit flip, short DLC,
//	                       11-bit id, unknown PGN; plus random junk frames
//	nmea_garbage           probability (0.1) per sentence: bad checksum,
//	                       truncation, changed character, line noise
//	gps_loss               RMC status V, GGA fix 0; VP not available
//	clock_jump             GNSS time in RMC/GGA shifted by offset
//	thermostat_stuck hazard thermostat stuck closed: only the bypass cools
//	                       (realistic model only)
//
// Every fault lasts duration (0 = until the end). Sensor faults take a
// signal (sensors.Signal name, default coolant_temp). With
// Config.FaultsPath, each truck's faults are written when it starts as CSV
// truck,kind,signal,start_unix_ns,end_unix_ns,hazard (end empty = open).
//
// With the realistic model, the faults file ends (when the run stops) with
// lines of kind hazard_present: when the hazard was physically there, from
// the noise-free temperatures: coolant_temp while the true coolant is above
// HazardCoolant (104 °C), cargo_temp while the true cargo is above
// HazardCargo (45 °C) or a fire heats it (end empty: still present).
// Sim.Simulate's samples carry the same as CoolantHazard and CargoHazard.
//
// # Realistic model
//
// A truck with "model": "truck" is a heavy-diesel tanker; without it a
// truck keeps the original physics below, value for value, so every
// scenario written before means what it meant. The realistic model has:
//
//   - Ignition: the engine stops at engine-off stops. The engine ECU sends
//     0 rpm for 3 s, then EEC1, ET1, AMB and CCVS stop; the cargo probe
//     and VP keep sending (they are powered with the gateway).
//   - An engine of three heat capacities (head, coolant, block): heat from
//     the load, a thermostat opening over 7-9 °C from 82-86 °C, a radiator
//     with ram air and an on/off fan (on at about 95 °C, off 5-7 °C lower:
//     the 5-6 °C, ~2 min sawtooth of a real engine idling on a hot day), a
//     cab heater on cold days, heat soak after a hot stop (2-6 °C), then a
//     cool-down towards ambient with a time constant of about 3 h. Warm-up
//     from cold takes 15-30 min on a warm day, longer on a cold one.
//   - Load from the power the drive needs: rolling resistance, air drag,
//     grade and acceleration of 15 t plus the payload (up to 25 t), and
//     the PTO pump while loading; engine speed follows it.
//   - Oil temperature (above the coolant under load) and fuel temperature
//     (between ambient and the engine) on ET1, engine speed on EEC1,
//     ambient air on AMB.
//   - Weather: a daily mean from -22 to +33 °C (or "ambient", -30..50), a
//     diurnal swing of 3-8 °C ("ambient_swing") and sun on the tank
//     ("sun_load"); the tank reacts faster when nearly empty.
//   - A duty cycle at route points ("stops": "random"): short and long
//     idles, engine-off stops of 10 min to 8 h (some deliver the load), and
//     loading warm product from storage at up to 35 °C. "events" script
//     engine_off, idle, climb (grade %) and load (product_temp) at given
//     times.
//
// Realistic fields: model, ambient_swing, sun_load, payload (0..1), hills
// (steepest generated grade, %), stops, events. In it, overheat ramps from
// the coolant's temperature when it starts (not from the set point),
// coolant_loss takes away up to 90 % of the radiator over ramp (10m), and
// fan_failure and thermostat_stuck act on the physics, so whether and when
// they become hazardous depends on load and weather (hazard_present says).
// The calibration against recorded vehicles is in README.md; an example
// scenario is testdata/realistic.json.
//
// # Physics (original model)
//
// Each truck drives a route (generated tours between Benelux and
// Rhine-Ruhr depots, or the scenario's) at the road's limit with
// acceleration limits, stops and traffic jams; position follows the road
// at the simulated speed. The engine warms from ambient at a rate set by
// load until the thermostat (set point 88-92 °C) regulates it; load,
// ambient and airflow move it within the band and the fan caps it. The cargo
// tank follows the diurnal ambient temperature plus sun (local solar time
// from the clock and longitude, cloud cover) with a time constant of hours.
// Sensors add noise; the DBC and NMEA formats quantise.
package firmwaresim
