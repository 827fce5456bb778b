// Package detect is the 10-second deviation detector. It is pure: readings
// come in, alert transitions go out. It does no I/O and never reads a
// clock: time comes in the readings (and in Advance, for missing data), so
// the gateway and the cloud, fed the same readings, produce the same
// transitions bit for bit. Arithmetic is written so that no fused
// multiply-add can change a result between amd64 and arm64.
//
// Everything it learns or counts is measured in the readings' time, never
// in numbers of readings, so the same signal sampled at 0.5 or 10 Hz gives
// the same alerts.
//
// Per truck and temperature signal (coolant, cargo) a Detector learns a
// normal band from the readings: a level only once it has stopped moving,
// an excursion only once it came back, nothing past a limit and nothing
// while an alert is open, so a slow fault is never learned as normal. It
// raises one alert at a time per signal, carrying the most urgent of these
// conditions and, in Transition.Active, every one active (kinds, see
// README.md):
//
//   - deviation: readings outside the band by more than a margin, sustained;
//   - limit: readings beyond configured absolute limits (per cargo
//     product for the tank), sustained;
//   - rate_of_rise: a rise above the band faster than configured, sustained;
//   - stuck: the value did not change for a long time, or for a short time
//     while engine oil temperature moved (judged on its own, beside every
//     other condition);
//   - missing: no reading for longer than the grace period while the engine
//     runs (via Advance).
//
// Engine speed tells the detector the engine's state: a stopped engine is
// no missing data, and the heat soak after it is no deviation. A truck
// that never sends engine speed counts as running.
//
// Observe is the hot path: one call per reading, no allocation. State can
// be saved (MarshalBinary) and restored (UnmarshalBinary); a restored
// detector continues exactly as the original would have. Series runs the
// same algorithm on one signal of unknown nature (cmd/detect-replay).
//
// It imports only sensors, upstream of it. See README.md for the alert
// kinds and severities, the configuration and the measured quality.
package detect
