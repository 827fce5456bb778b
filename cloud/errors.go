package cloud

import "errors"

// Sentinel errors. Match them with errors.Is.
var (
	// ErrConfig reports an invalid Config; the wrapping error names the field.
	ErrConfig = errors.New("cloud: invalid config")
	// ErrBadPayload reports an uplinked message the cloud rejected.
	ErrBadPayload = errors.New("cloud: bad payload")
	// ErrNotStarted reports a call that needs Run to have started.
	ErrNotStarted = errors.New("cloud: not started")
)
