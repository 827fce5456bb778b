package auth

import "errors"

// Sentinel errors. Match them with errors.Is.
var (
	// ErrUsers reports an invalid users file or user; the wrapping error
	// names the user and field.
	ErrUsers = errors.New("auth: invalid users")
	// ErrBadCredentials reports a failed sign-in (unknown user or wrong
	// password: deliberately not told apart).
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	// ErrThrottled reports a sign-in refused without checking the password
	// because the name had too many failures in a row; retry later.
	ErrThrottled = errors.New("auth: too many failed sign-ins, retry later")
	// ErrBusy reports a sign-in refused without checking the password
	// because too many passwords were being checked at once; retry soon.
	ErrBusy = errors.New("auth: too many sign-ins at once, retry soon")
	// ErrHash reports a password hash in a format this package cannot check.
	ErrHash = errors.New("auth: unsupported password hash")
)
