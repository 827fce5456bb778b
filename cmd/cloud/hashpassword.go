package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
)

// hashPassword serves `cloud hash-password`: it reads a password from the
// first line of stdin and prints its hash, or with -name and -role a user
// entry for the console's users file. With -token it makes a random API
// token instead, printing the token (to give to the script) on stderr and
// the user entry with its SHA-256 on stdout.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cloud hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("alg", auth.AlgBcrypt, "hash algorithm: bcrypt or argon2id")
	name := fs.String("name", "", "print a users-file entry for this user name")
	role := fs.String("role", string(auth.RoleViewer), "the entry's role: viewer, operator or admin")
	token := fs.Bool("token", false, "make a random API token instead of reading a password")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cloud hash-password [-alg bcrypt|argon2id] [-name NAME -role ROLE] [-token] < password")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	u := auth.User{Name: *name, Role: auth.Role(*role)}
	if *token {
		if *name == "" {
			return errors.New("hash-password: -token needs -name")
		}
		tok := auth.NewToken()
		u.TokenSHA256 = auth.HashToken(tok)
		fmt.Fprintf(stderr, "API token for %s (send as \"Authorization: Bearer <token>\"; shown once):\n%s\n", *name, tok)
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("hash-password: read stdin: %w", err)
		}
		h, err := auth.HashPassword(strings.TrimRight(line, "\r\n"), *alg)
		if err != nil {
			return err
		}
		if *name == "" {
			_, err := fmt.Fprintln(stdout, h)
			return err
		}
		u.PasswordHash = h
	}
	if err := auth.ValidateUsers([]auth.User{u}); err != nil {
		return err
	}
	b, _ := json.Marshal(u)
	_, err := fmt.Fprintf(stdout, "%s\n", b)
	return err
}
