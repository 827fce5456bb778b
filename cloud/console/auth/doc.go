// Package auth signs fleet-console users in: users with roles (viewer,
// operator, admin) from an operator-written users file holding bcrypt or
// argon2id password hashes, expiring server-side sessions carried in an
// HttpOnly SameSite=Strict cookie with a per-session CSRF token, and
// bearer API tokens (stored as SHA-256) for scripts.
//
// Sign-ins are throttled per name and per source address, counted before
// the password is checked so parallel tries cannot slip past, and
// password hashing is bounded (ErrBusy beyond it); see Login.
//
// It never logs or returns a password, a session token or an API token;
// it logs sign-ins and refusals by user name and remote address only.
// It does no file I/O except in Bootstrap, which the console calls once
// at start (and which writes the first admin's password to a 0600 file,
// not to the log).
package auth
