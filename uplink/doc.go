// Package uplink carries a truck's buffered readings and alerts to the
// cloud over MQTT: the topic scheme, the versioned batch wire format, and
// the publisher that deletes from the buffer only what the broker
// acknowledged. The cloud imports the decoder from here.
//
// It must not detect or store readings itself, and it must not import
// anything downstream of it (gateway, cloud).
package uplink
