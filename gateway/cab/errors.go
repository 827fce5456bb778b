package cab

import "errors"

// Sentinel errors of package cab. Match them with errors.Is.
var (
	// ErrNoAlert means an acknowledgement named an alert that is not open
	// (it was cleared, or never existed).
	ErrNoAlert = errors.New("no such open alert")
	// ErrBadRequest means an HTTP request from the page was malformed.
	ErrBadRequest = errors.New("bad request")
)
