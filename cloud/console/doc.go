// Package console is the fleet web console served by the cloud: an
// embedded page (no CDN), a JSON API (/api/trucks, /api/alerts,
// /api/stats) and a live event stream (/api/events, Server-Sent Events).
//
// It keeps only the latest view of each truck and a bounded list of recent
// alerts in memory; the archive and the cloud's database are the record.
// It must not import cloud.
package console
