// Package broker runs the cloud's embedded MQTT broker
// (github.com/mochi-mqtt/server/v2) on a TCP listener. It routes messages
// only; it must not decode payloads or import cloud.
package broker
