// Package notify sends incident notifications to the fleet team's
// channels: Amazon SNS (with message attributes truck, severity, kind and
// signal for subscription filter policies) and webhooks (JSON body signed
// with HMAC-SHA256 over a timestamp and the body, "t=...,v1=...", which a
// receiver checks with Verify, refusing replays outside DefaultTolerance),
// with retries and backoff. It decides nothing about
// when to notify (see cloud/incident) and must not import cloud.
package notify
