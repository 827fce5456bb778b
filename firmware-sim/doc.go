// Package firmwaresim simulates trucks: ECUs sending J1939 frames on a CAN
// bus, a GNSS receiver and tank probes on serial ports, with physics,
// injected faults and a ground-truth record of every value emitted.
//
// It is a test and demo tool; nothing in the data path imports it.
package firmwaresim
