// Package sensors turns what truck hardware sends into Readings: J1939
// frames on a CAN bus decoded through the repository's DBC file, NMEA 0183
// sentences and cargo-tank probe lines on serial ports.
//
// It is the most upstream package: it imports no other tankguard package.
// It must not detect, store or send anything; hardware and OS dependencies
// (SocketCAN, serial ports) live here and nowhere else.
//
// # Pieces
//
//   - DefaultDBC (tankguard.dbc) and NewCANDecoder: J1939 decoding by PGN,
//     any source address, J1939 special values and bad frames counted.
//   - CANSource: one bus, "tcp://127.0.0.1:PORT" (SocketCAN frames over
//     loopback TCP, as firmware-sim serves) or an interface name ("can0").
//     Run one per bus; several may share one CANDecoder.
//   - CandumpReplay, ParseCandumpLine, AppendCandumpLine: can-utils candump
//     logs, replayed through the same decoder.
//   - NMEAParser, NMEASource: RMC, GGA and VTG from any talker.
//   - ProbeParser, ProbeSource: the serial cargo-tank probe protocol
//     ($PTGCT, documented in probe.go).
//   - Clock: reading times in UTC, corrected by GNSS, never running
//     backwards, with ClockUntrusted until confirmed.
//
// A gateway wires them like this:
//
//	clock := sensors.NewClock(sensors.ClockConfig{})
//	dec, _ := sensors.NewCANDecoder(sensors.DefaultDBC)
//	can := &sensors.CANSource{Addr: addr, Decoder: dec, Now: clock.Now, Flags: clock.Flags}
//	gps := &sensors.NMEASource{Port: tty, Now: clock.Now, Flags: clock.Flags, OnFix: clock.OnFix}
//	g.Go(func() error { return can.Run(ctx, emit) })
//	g.Go(func() error { return gps.Run(ctx, emit) })
//
// Every source calls emit from its own goroutine with a batch it reuses
// afterwards: emit must copy what it keeps. Every counter (Stats methods)
// is safe to read concurrently.
package sensors
