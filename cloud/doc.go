// Package cloud takes uplinked batches from an MQTT broker (embedded by
// default), deduplicates them by (truck, seq), re-runs the detector, turns
// alerts into incidents, archives readings and alerts, and serves the fleet
// console. It is the only package that links the AWS SDK.
package cloud
