package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAthenaDDLCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    string
	}{
		{"ok", []string{"athena-ddl", "-archive", "s3://fleet/p", "-database", "fleet"}, false, "CREATE EXTERNAL TABLE IF NOT EXISTS fleet.readings"},
		{"missing archive", []string{"athena-ddl"}, true, ""},
		{"local archive", []string{"athena-ddl", "-archive", "/tmp/x"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(tc.args, &out, &errb)
			if (err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("err %v, out %q", err, out.String())
			}
		})
	}
}

func TestBadConfigFile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key": `{"data_dir":"x","nope":1}`,
		"not json":    `data_dir = x`,
		"invalid":     `{"data_dir":"x","flush_interval":-1}`,
	} {
		t.Run(name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(name, " ", "_") + ".json"
			if err := writeFile(p, body); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if err := run([]string{"-config", p}, &out, &errb); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

// TestPlainBrokerNeedsFlag: the cloud does not run its embedded broker on
// plain TCP unless told to, and says how (issue 15, observation 7).
func TestPlainBrokerNeedsFlag(t *testing.T) {
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() {
		done <- run([]string{"-data", t.TempDir(), "-broker-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"}, io.Discard, &errb)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "broker_plain_tcp") || !strings.Contains(err.Error(), "broker_tls") {
			t.Fatalf("run: %v, want a refusal naming broker_tls and broker_plain_tcp", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cloud started its embedded broker on plain TCP without -broker-plain-tcp")
	}
}
