// Package gateway wires one truck's sensors -> detect -> buffer -> uplink,
// and serves the in-cab display. It holds no protocol or storage code of
// its own.
package gateway
