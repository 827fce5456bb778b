package sensors

import _ "embed"

// DefaultDBC is the repository's J1939 signal database (tankguard.dbc),
// embedded so a gateway needs no file at run time. It documents the
// proprietary cargo-tank temperature PGN 65400. Callers must not modify it.
//
//go:embed tankguard.dbc
var DefaultDBC []byte
