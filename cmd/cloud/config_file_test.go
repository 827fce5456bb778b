package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigFileErrorsNameTheField: every bad config file is refused at
// start with an error naming the offending key and the problem.
func TestConfigFileErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown key", `{"data_dir":"DIR/x","nope":1}`, []string{`unknown field "nope"`}},
		{"syntax", `{"data_dir":"DIR/x",}`, []string{"invalid character"}},
		{"wrong type", `{"data_dir":7}`, []string{"data_dir", "string"}},
		{"duration as text", `{"data_dir":"DIR/x","flush_interval":"500ms"}`, []string{"flush_interval", "time.Duration"}},
		{"negative duration", `{"data_dir":"DIR/x","flush_interval":-1}`, []string{"flush_interval must be positive"}},
		{"broker url scheme", `{"data_dir":"DIR/x","broker_url":"http://127.0.0.1:1"}`, []string{"broker_url", "scheme"}},
		{"ingest mode", `{"data_dir":"DIR/x","ingest":"sometimes"}`, []string{"ingest", "sometimes"}},
		{"webhook url", `{"data_dir":"DIR/x","notify":{"webhooks":[{"url":"ftp://x","secret":"s"}]}}`, []string{"notify.webhooks[0].url"}},
		{"webhook secret", `{"data_dir":"DIR/x","notify":{"webhooks":[{"url":"http://127.0.0.1:1/"}]}}`, []string{"notify.webhooks[0].secret"}},
		{"sns arn", `{"data_dir":"DIR/x","notify":{"sns_topic_arn":"topic"}}`, []string{"notify.sns_topic_arn"}},
		{"archive url", `{"data_dir":"DIR/x","archive":"ftp://bucket"}`, []string{"archive"}},
		{"broker tls incomplete", `{"data_dir":"DIR/x","broker_tls":{"cert_file":"c.pem"}}`, []string{"broker_tls", "client_ca_file"}},
		{"broker tls with external broker", `{"data_dir":"DIR/x","broker_url":"tcp://127.0.0.1:1","broker_tls":{"cert_file":"c","key_file":"k","client_ca_file":"ca"}}`, []string{"broker_tls", "embedded broker"}},
		{"broker tls file missing", `{"data_dir":"DIR","broker_listen":"127.0.0.1:0","http_listen":"127.0.0.1:0","broker_tls":{"cert_file":"DIR/none.pem","key_file":"DIR/k","client_ca_file":"DIR/ca"}}`, []string{"broker tls", "none.pem"}},
		{"detect", `{"data_dir":"DIR/x","detect":{"coolant":{"nonsense":1}}}`, []string{"nonsense"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := writeFile(p, strings.ReplaceAll(tc.body, "DIR", dir)); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- run([]string{"-config", p}, &out, &errb) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("accepted: the cloud is running")
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
