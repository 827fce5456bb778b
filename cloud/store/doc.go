// Package store is the cloud's embedded bbolt database: the staging area
// for accepted records awaiting the archive, the dedup state per truck,
// the detector state per truck and the marker of an in-progress archive
// flush. One Commit holds everything one ingest step changed, so a crash
// leaves either all of it or none.
//
// It stores opaque bytes and knows nothing of their encoding; it must not
// import cloud.
package store
