package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// BootstrapAdmin is the user created by Bootstrap.
const BootstrapAdmin = "admin"

// InitialPasswordFile is the file, beside the users file, where Bootstrap
// writes the first admin's password (mode 0600).
const InitialPasswordFile = "initial-admin-password"

// Bootstrap returns the users in the users file at path. If there is no
// such file it creates one (mode 0600) holding one admin user,
// BootstrapAdmin, with a random password that it writes, once, to
// InitialPasswordFile in the same directory (mode 0600, readable only by
// the cloud's user). It logs where the password is, never the password:
// logs are shipped and kept where anyone with log access would read it.
// Delete the file after the first sign-in; it is never written again.
func Bootstrap(path string, log *slog.Logger) ([]User, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		us, err := ParseUsers(data)
		if err != nil {
			return nil, fmt.Errorf("users file %s: %w", path, err)
		}
		return us, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("users file: %w", err)
	}
	password := NewToken()[:20]
	h, err := HashPassword(password, AlgBcrypt)
	if err != nil {
		return nil, err
	}
	us := []User{{Name: BootstrapAdmin, Role: RoleAdmin, PasswordHash: h}}
	out, _ := json.MarshalIndent(UsersFile{Users: us}, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("users file dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	pwPath := filepath.Join(filepath.Dir(path), InitialPasswordFile)
	if err := os.WriteFile(pwPath+".tmp", []byte(password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("initial admin password: %w", err)
	}
	if err := os.Rename(pwPath+".tmp", pwPath); err != nil {
		return nil, fmt.Errorf("initial admin password: %w", err)
	}
	if log != nil {
		log.Warn("console admin created: its password is in the file named here (mode 0600); sign in, then delete the file and keep or replace users.json",
			"user", BootstrapAdmin, "password_file", pwPath, "users_file", path)
	}
	return us, nil
}
