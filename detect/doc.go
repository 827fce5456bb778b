// Package detect is the 10-second deviation detector. It is pure: readings
// come in, alert transitions go out. It does no I/O and never reads a
// clock: time comes in the readings, so the gateway and the cloud, fed the
// same readings, produce the same transitions bit for bit.
//
// It imports only sensors, upstream of it.
package detect
