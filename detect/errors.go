package detect

import "errors"

// Sentinel errors. Match them with errors.Is; the wrapped message names the
// field or byte offset that was wrong.
var (
	// ErrConfig reports an invalid detector configuration.
	ErrConfig = errors.New("invalid detector config")
	// ErrState reports saved detector state that cannot be restored.
	ErrState = errors.New("invalid detector state")
	// ErrTruck reports an empty truck id.
	ErrTruck = errors.New("empty truck id")
)
