// Package detect is the 10-second deviation detector. It is pure: readings
// come in, alert transitions go out. It does no I/O and never reads a
// clock: time comes in the readings (and in Advance, for missing data), so
// the gateway and the cloud, fed the same readings, produce the same
// transitions bit for bit. Arithmetic is written so that no fused
// multiply-add can change a result between amd64 and arm64.
//
// Per truck and temperature signal (coolant, cargo) a Detector learns a
// normal band from the readings, and raises one alert at a time carrying
// the most urgent of these conditions (kinds, see README.md):
//
//   - deviation: readings outside the band by more than a margin, sustained;
//   - limit: readings beyond configured absolute limits, sustained;
//   - rate_of_rise: a rise faster than configured, sustained;
//   - stuck: the value did not change at all for a long time;
//   - missing: no reading for longer than the grace period (via Advance).
//
// Observe is the hot path: one call per reading, no allocation. State can
// be saved (MarshalBinary) and restored (UnmarshalBinary); a restored
// detector continues exactly as the original would have. Series runs the
// same algorithm on one signal of unknown nature (cmd/detect-replay).
//
// It imports only sensors, upstream of it. See README.md for the alert
// kinds and severities, the configuration and the measured quality.
package detect
