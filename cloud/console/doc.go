// Package console is the fleet web console served by the cloud: embedded
// pages and plain JavaScript (no CDN, no npm build), a JSON API and a live
// event stream (Server-Sent Events). Every route but the sign-in page
// needs a signed-in user or an API token (package auth); acting on
// incidents needs the operator role, and who acted is always the
// signed-in user.
//
// The map is one canvas with Web Mercator projection: map tiles when a
// tile URL is configured, else a graticule, so trucks show with no
// internet. The page batches live updates and draws at most once per
// animation frame, and the fleet list recycles a fixed pool of rows, so
// 1,000 trucks stay responsive.
//
// It keeps only the latest view of each truck, a bounded chart history per
// truck (Config.History at Config.HistoryStep, in memory) and a bounded
// list of recent alerts; the archive and the cloud's database are the
// record. It must not import cloud.
package console
