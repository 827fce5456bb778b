package cloud

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBrokerClientTLSConfig: TLS client options are refused at start with
// the field named when they cannot work.
func TestBrokerClientTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		mod  func(*Config)
		want string // in the error; "" = accepted
	}{
		{"cert without key", func(c *Config) {
			c.BrokerURL, c.BrokerClientTLS.CertFile = "ssl://127.0.0.1:8883", "cloud.pem"
		}, "cert_file and key_file go together"},
		{"TLS files with a plain broker", func(c *Config) {
			c.BrokerURL, c.BrokerClientTLS.CAFile = "tcp://127.0.0.1:1883", "ca.pem"
		}, "is not TLS"},
		{"TLS files with the embedded broker", func(c *Config) { c.BrokerClientTLS.CAFile = "ca.pem" }, "needs broker_url"},
		{"missing CA file", func(c *Config) {
			c.BrokerURL, c.BrokerClientTLS.CAFile = "ssl://127.0.0.1:8883", filepath.Join(dir, "nope.pem")
		}, "broker_client_tls.ca_file"},
		{"system roots", func(c *Config) { c.BrokerURL = "ssl://127.0.0.1:8883" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DataDir: dir, HTTPListen: "127.0.0.1:0"}
			tc.mod(&cfg)
			_, err := New(cfg, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}
