// Package dedup remembers which per-truck sequence numbers the cloud has
// already accepted, in a form small enough to persist after every commit.
//
// A Set holds a floor (every seq at or below it was seen) plus the sorted
// ranges seen above it. A truck's readings and alerts share one sequence
// space but travel on two MQTT lanes, so seqs arrive in order per lane and
// interleaved across lanes: gaps above the floor are normal and close when
// the other lane catches up. It does no I/O and must not import anything
// but the standard library.
package dedup
