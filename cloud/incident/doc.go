// Package incident turns alert transitions from the edge and the cloud
// into incidents: one per excursion, merging both sources, with a
// lifecycle (open, acknowledged, resolved), a history, and an outbox of
// notifications, one per state change, kept in the cloud's bbolt file.
//
// An incident resolves when every source reports its condition cleared
// (or, for a truck offline, when data returns); an operator's Resolve is
// refused while a source still reports it (ErrActive), so it keeps
// repeating until acknowledged. Every acknowledgement, the driver's from
// the cab and the fleet team's, is kept as made and notified.
//
// Changes caused by ingested data are made inside the ingest transaction,
// so a crash keeps data, incident and outbox consistent. Every method
// that writes takes the bbolt transaction first and the Manager's lock
// second. It sends nothing itself (see cloud/notify) and must not import
// cloud.
package incident
