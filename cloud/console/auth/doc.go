// Package auth signs fleet-console users in: users with roles (viewer,
// operator, admin) from an operator-written users file holding bcrypt or
// argon2id password hashes, expiring server-side sessions carried in an
// HttpOnly SameSite=Strict cookie with a per-session CSRF token, and
// bearer API tokens (stored as SHA-256) for scripts.
//
// It never logs or returns a password, a session token or an API token;
// it logs sign-ins and refusals by user name and remote address only.
// It does no file I/O except in Bootstrap, which the console calls once
// at start.
package auth
