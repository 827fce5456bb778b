// Package sensors turns what truck hardware sends into Readings: J1939
// frames on a CAN bus decoded through the repository's DBC file, NMEA 0183
// sentences and cargo-tank probe lines on serial ports.
//
// It is the most upstream package: it imports no other tankguard package.
// It must not detect, store or send anything; hardware and OS dependencies
// (SocketCAN, serial ports) live here and nowhere else.
package sensors
