package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
)

// TestHelp: `cloud help` and `cloud -h` print the usage with every
// subcommand and readable flag help, and start no cloud (nothing is
// created in the working directory, where the default data directory
// would be).
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
			var out, errb bytes.Buffer
			err := run(args, &out, &errb)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run %q = %v, want flag.ErrHelp (exit 0)", args, err)
			}
			text := out.String() + errb.String()
			for _, want := range []string{"cloud hash-password", "cloud athena-ddl", "cloud help", "  -users string\n", "  -broker-cert string\n", "  -data string\n"} {
				if !strings.Contains(text, want) {
					t.Errorf("help lacks %q:\n%s", want, text)
				}
			}
			if args[0] == "help" && out.Len() == 0 {
				t.Error("`cloud help` printed nothing on stdout")
			}
			if ents, _ := os.ReadDir("."); len(ents) != 0 {
				t.Errorf("help created %v", ents)
			}
		})
	}
}

func TestUnexpectedArguments(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"-data", "x", "extra"}, {"help", "me"}} {
		t.Chdir(t.TempDir())
		var out, errb bytes.Buffer
		err := run(args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
			t.Errorf("run %q = %v, want unexpected arguments", args, err)
		}
	}
}
