package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do. Each role may do everything the ones before
// it may.
type Role string

// Roles, in increasing power.
const (
	// RoleViewer sees the map, fleet, trucks and incidents.
	RoleViewer Role = "viewer"
	// RoleOperator also acknowledges, resolves and snoozes incidents.
	RoleOperator Role = "operator"
	// RoleAdmin also sees the user list.
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a user with role r may do what needs role min.
func (r Role) Allows(min Role) bool { return r.Valid() && r.rank() >= min.rank() }

// User is one console user as written in the users file. At least one of
// PasswordHash and TokenSHA256 is set. It is a value type.
type User struct {
	// Name is the sign-in name, recorded as who acknowledged or resolved
	// (1-64 bytes of printable UTF-8, no spaces).
	Name string `json:"name"`
	// Role is "viewer", "operator" or "admin".
	Role Role `json:"role"`
	// PasswordHash is a bcrypt hash ("$2a$", "$2b$", "$2y$") or an
	// argon2id PHC string ("$argon2id$v=19$m=65536,t=3,p=2$salt$hash"),
	// as printed by `cloud hash-password`. Empty: no password sign-in.
	PasswordHash string `json:"password_hash,omitempty"`
	// TokenSHA256 is the hex SHA-256 of an API token sent as
	// "Authorization: Bearer <token>" (scripts, monitoring). Empty: none.
	TokenSHA256 string `json:"token_sha256,omitempty"`
}

// UsersFile is the JSON users file.
type UsersFile struct {
	Users []User `json:"users"`
}

// MaxUsersFile is the largest users file accepted.
const MaxUsersFile = 1 << 20

// ParseUsers decodes and checks a users file. Unknown fields are errors.
func ParseUsers(data []byte) ([]User, error) {
	if len(data) > MaxUsersFile {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrUsers, MaxUsersFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f UsersFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsers, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrUsers)
	}
	if err := ValidateUsers(f.Users); err != nil {
		return nil, err
	}
	return f.Users, nil
}

// ValidateUsers reports the first problem with us, naming the user and
// field. It does no I/O and never echoes a hash.
func ValidateUsers(us []User) error {
	if len(us) == 0 {
		return fmt.Errorf("%w: no users", ErrUsers)
	}
	seen := map[string]bool{}
	for i, u := range us {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: users[%d] %q: %s", ErrUsers, i, u.Name, fmt.Sprintf(format, a...))
		}
		switch {
		case !validName(u.Name):
			return bad("name: want 1-64 bytes of printable UTF-8 without spaces")
		case seen[u.Name]:
			return bad("name: duplicate")
		case !u.Role.Valid():
			return bad("role %q: want viewer, operator or admin", u.Role)
		case u.PasswordHash == "" && u.TokenSHA256 == "":
			return bad("needs password_hash or token_sha256")
		}
		if u.PasswordHash != "" {
			if _, err := parseHash(u.PasswordHash); err != nil {
				return bad("password_hash: %v", err)
			}
		}
		if u.TokenSHA256 != "" {
			if b, err := hex.DecodeString(u.TokenSHA256); err != nil || len(b) != sha256.Size {
				return bad("token_sha256: want 64 hex digits")
			}
		}
		seen[u.Name] = true
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '"' || r == '<' || r == '>' || r == '&' {
			return false
		}
	}
	return true
}

// argon2id parameters used by HashPassword when asked for argon2id
// (RFC 9106's second recommendation, reduced to 64 MiB).
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 2
	argonKeyLen  = 32
)

// Hash algorithms for HashPassword.
const (
	AlgBcrypt   = "bcrypt"
	AlgArgon2id = "argon2id"
)

// MaxPassword is the longest password accepted (bcrypt reads 72 bytes).
const MaxPassword = 72

// MinBcryptCost is the lowest bcrypt cost a users file may hold: lower
// costs are cheap enough to guess at offline if the file leaks.
const MinBcryptCost = 10

// HashPassword hashes password with alg (AlgBcrypt at bcrypt.DefaultCost,
// or AlgArgon2id) for the users file.
func HashPassword(password, alg string) (string, error) {
	if len(password) < 8 || len(password) > MaxPassword {
		return "", fmt.Errorf("auth hash password: want 8-%d bytes", MaxPassword)
	}
	switch alg {
	case AlgBcrypt, "":
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return "", fmt.Errorf("auth hash password: %w", err)
		}
		return string(h), nil
	case AlgArgon2id:
		salt := make([]byte, 16)
		rand.Read(salt)
		key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		b64 := base64.RawStdEncoding
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
			b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	}
	return "", fmt.Errorf("auth hash password: algorithm %q: want bcrypt or argon2id", alg)
}

// hash is a parsed password hash.
type hash struct {
	bcrypt        []byte
	salt, key     []byte
	m, t          uint32
	p             uint8
	argon2Version int
}

func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return hash{}, fmt.Errorf("%w: bcrypt: %v", ErrHash, err)
		}
		if cost < MinBcryptCost {
			return hash{}, fmt.Errorf("%w: bcrypt cost %d is too weak, want at least %d (make a new hash with `cloud hash-password`)", ErrHash, cost, MinBcryptCost)
		}
		return hash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		parts := strings.Split(s, "$")
		if len(parts) != 6 {
			return hash{}, fmt.Errorf("%w: argon2id: want $argon2id$v=19$m=..,t=..,p=..$salt$hash", ErrHash)
		}
		var h hash
		if _, err := fmt.Sscanf(parts[2], "v=%d", &h.argon2Version); err != nil || h.argon2Version != argon2.Version {
			return hash{}, fmt.Errorf("%w: argon2id: version %q, want v=%d", ErrHash, parts[2], argon2.Version)
		}
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil || h.m < 8 || h.m > 4<<20 || h.t < 1 || h.t > 100 || h.p < 1 {
			return hash{}, fmt.Errorf("%w: argon2id: parameters %q", ErrHash, parts[3])
		}
		var err1, err2 error
		h.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
		h.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
		if err1 != nil || err2 != nil || len(h.salt) < 8 || len(h.key) < 16 || len(h.key) > 64 {
			return hash{}, fmt.Errorf("%w: argon2id: salt or hash is not base64 of a sensible length", ErrHash)
		}
		return h, nil
	}
	return hash{}, fmt.Errorf("%w: want a bcrypt ($2b$...) or argon2id ($argon2id$...) hash", ErrHash)
}

// weight is how many of the HashSlots checking h takes: an argon2id hash
// with more than 16 MiB of memory runs alone, so concurrent checks never
// hold more than one such buffer.
func (h hash) weight() int64 {
	if h.bcrypt == nil && h.m > 16<<10 {
		return HashSlots
	}
	return 1
}

// check reports whether password matches h, in time independent of where
// they differ.
func (h hash) check(password string) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password)) == nil
	}
	key := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// NewToken returns a random token (256 bits, URL-safe base64): for
// session cookies, CSRF tokens, API tokens and generated passwords.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hex SHA-256 of an API token, for a user's
// TokenSHA256.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
