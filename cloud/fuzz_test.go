package cloud

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzConfigJSON decodes arbitrary config files the way cmd/cloud does
// (unknown keys refused) and validates them: no input may panic, and a
// config that validates must keep validating after its defaults are
// filled in again (defaults are idempotent).
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		`{"data_dir":"d"}`,
		`{"data_dir":"d","broker_listen":"127.0.0.1:0","http_listen":"127.0.0.1:0","flush_interval":500000000}`,
		`{"data_dir":"d","broker_url":"tcp://127.0.0.1:1883","ingest":"subscribe"}`,
		`{"data_dir":"d","archive":"s3://bucket/prefix","s3":{"region":"eu-west-1","glacier_after_days":30}}`,
		`{"data_dir":"d","notify":{"webhooks":[{"url":"http://127.0.0.1:1/","secret":"s"}],"sns_topic_arn":"arn:aws:sns:x"}}`,
		`{"data_dir":"d","broker_tls":{"cert_file":"c","key_file":"k","client_ca_file":"ca","admins":["cloud"]}}`,
		`{"data_dir":"d","limits":{"MaxPayload":-1}}`, `{"data_dir":"d","detect":{}}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg Config
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return
		}
		cfg.setDefaults()
		if err := cfg.Validate(); err != nil {
			return
		}
		again := cfg
		again.setDefaults()
		if err := again.Validate(); err != nil {
			t.Fatalf("valid config invalid after setDefaults again: %v", err)
		}
	})
}

// FuzzParseStatus: the status payload parser never panics and accepts
// only what the gateway sends.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"online", "offline", "", "maybe", "ONLINE", "online\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		online, err := parseStatus(b)
		if err != nil {
			return
		}
		if want := string(b) == "online"; online != want || (string(b) != "online" && string(b) != "offline") {
			t.Fatalf("parseStatus(%q) = %v", b, online)
		}
	})
}
