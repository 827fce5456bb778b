// Package buffer is the gateway's store-and-forward queue on bbolt: every
// accepted reading and alert is appended here, given its per-truck sequence
// number, and deleted only after the broker acknowledged it.
//
// It must not send anything over the network; it imports only sensors and
// detect, upstream of it.
package buffer
