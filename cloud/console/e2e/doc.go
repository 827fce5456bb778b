// Package e2e holds the fleet console's browser tests: a real cloud
// (embedded broker, ingest, re-detection, incidents) fed by a synthetic
// fleet over MQTT, and headless Chromium driven with chromedp. It has no
// code outside its tests; nothing imports it.
package e2e
