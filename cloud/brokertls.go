package cloud

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/abc4logistics/tankguard/uplink"
)

// loadClientTLS reads the PEM files of t into the cloud's MQTT client TLS
// configuration; nil when t names none. Errors name the field.
func loadClientTLS(t ClientTLSConfig) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	var pems [3][]byte
	for i, f := range []struct{ field, path string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"ca_file", t.CAFile}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("cloud config: broker_client_tls.%s: %w", f.field, err)
		}
		pems[i] = b
	}
	cfg, err := uplink.TLSConfig(pems[0], pems[1], pems[2], t.ServerName)
	if err != nil {
		return nil, fmt.Errorf("cloud config: broker_client_tls: %w", err)
	}
	return cfg, nil
}

// connectLogEvery bounds how often a broker that cannot be reached is
// logged: the first failure at once, then one line per interval with
// the count of attempts since.
const connectLogEvery = 30 * time.Second

// connectionLog returns the MQTT client's connection-event handler: it
// logs a failed attempt (rate-limited, with the reason: refused, TLS,
// bad certificate, not authorised) and a connection made, so an operator
// sees why the cloud receives nothing.
func (c *Cloud) connectionLog(brokerURL string, log *slog.Logger) mqtt.ConnectionNotificationHandler {
	var (
		mu       sync.Mutex
		failures int       // since the last connection
		logged   time.Time // last failure logged
		since    int       // failures not logged since then
	)
	return func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		mu.Lock()
		defer mu.Unlock()
		switch n := n.(type) {
		case mqtt.ConnectionNotificationBrokerFailed:
			failures++
			since++
			c.cnt.brokerConnectFailures.Add(1)
			if now := time.Now(); failures == 1 || now.Sub(logged) >= connectLogEvery {
				log.Warn("cannot connect to the broker; retrying", "broker", brokerURL, "attempts", failures,
					"attempts_since_last_log", since, "err", n.Reason)
				logged, since = now, 0
			}
		case mqtt.ConnectionNotificationConnected:
			log.Info("connected to the broker", "broker", brokerURL, "failed_attempts", failures)
			failures, since = 0, 0
		}
	}
}
