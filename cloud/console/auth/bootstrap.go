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

// Bootstrap returns the users in the users file at path. If there is no
// such file it creates one (mode 0600) holding one admin user, BootstrapAdmin,
// with a random password that it logs once, at warning level, as
//
//	msg="console admin created: sign in with this password, then keep or replace users.json" user=admin password=... users_file=...
//
// It is never stored in clear and never shown again. This is the only
// place where this package logs a secret, on purpose.
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
	if log != nil {
		log.Warn("console admin created: sign in with this password, then keep or replace users.json",
			"user", BootstrapAdmin, "password", password, "users_file", path)
	}
	return us, nil
}
