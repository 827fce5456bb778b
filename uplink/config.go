package uplink

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"time"
)

// Config configures a Publisher. Zero fields take the defaults of
// DefaultConfig; Validate reports values that make no sense.
type Config struct {
	// BrokerURL is the MQTT broker: tcp://host:port, or ssl://host:port
	// (also tls:// and mqtts://) for TLS.
	BrokerURL string
	// Truck is this gateway's truck id (see ValidTruckID); it names the
	// topics and every batch.
	Truck string
	// ClientID is the MQTT client id; default "tankguard-gw-" + Truck.
	// AWS IoT Core requires it to match the thing name policy.
	ClientID string
	// Username and Password, if set, are sent in CONNECT.
	Username, Password string
	// TLS is used for ssl:// brokers: set Certificates for mutual TLS and
	// RootCAs for a private CA (see TLSConfig). nil with ssl:// means the
	// system roots and no client certificate.
	TLS *tls.Config
	// ConnectTimeout bounds one connection attempt. Default 10 s.
	ConnectTimeout time.Duration
	// PublishTimeout is how long a publish may wait for its PUBACK before
	// the connection is deemed broken and re-established. Default 30 s.
	PublishTimeout time.Duration
	// KeepAlive is the MQTT keep-alive interval. Default 30 s.
	KeepAlive time.Duration
	// BatchDelay is the longest a reading waits to be batched with later
	// ones while the link is up and there is no backlog; larger batches
	// compress better. Alerts never wait. Default 10 s.
	BatchDelay time.Duration
	// MaxBatchReadings is the most readings per telemetry batch. Default
	// 16384. A batch whose encoding exceeds MaxPayload is split.
	MaxBatchReadings int
	// MaxPayload is the largest MQTT payload sent. Default and maximum
	// MaxPayloadSize (128 KiB, the AWS IoT Core limit).
	MaxPayload int
	// Window is the most telemetry batches published and not yet
	// acknowledged (with Confirm: confirmed). Alerts are sent regardless.
	// Default 8.
	Window int
	// Confirm makes the publisher delete a batch only once the cloud has
	// confirmed every payload of it durable (KindDurable, see
	// PayloadID), not on the broker's PUBACK: correct with any broker in
	// between. Without it a PUBACK deletes, which is right only with the
	// cloud's embedded broker. The gateway sets it.
	Confirm bool
	// ConfirmTimeout, with Confirm, is how long a batch the broker
	// acknowledged may wait for the cloud's confirmation before the
	// publisher reconnects and sends everything unconfirmed again (the
	// cloud drops duplicates). Default 30 s.
	ConfirmTimeout time.Duration
	// MinPublishInterval spaces telemetry publishes at least this far
	// apart (0: no limit). AWS IoT Core accepts at most 100 publishes per
	// second per connection; 12 ms stays under it while draining a
	// backlog. Alerts are not delayed.
	MinPublishInterval time.Duration
	// ReconnectMin and ReconnectMax bound the exponential reconnect
	// backoff; each wait is drawn at random from [d/2, d]. Defaults 500 ms
	// and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults for zero fields of a Config.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout:   10 * time.Second,
		PublishTimeout:   30 * time.Second,
		ConfirmTimeout:   30 * time.Second,
		KeepAlive:        30 * time.Second,
		BatchDelay:       10 * time.Second,
		MaxBatchReadings: 16384,
		MaxPayload:       MaxPayloadSize,
		Window:           8,
		ReconnectMin:     500 * time.Millisecond,
		ReconnectMax:     30 * time.Second,
		Now:              time.Now,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ClientID == "" && c.Truck != "" {
		c.ClientID = "tankguard-gw-" + c.Truck
	}
	set := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.ConnectTimeout, d.ConnectTimeout)
	set(&c.PublishTimeout, d.PublishTimeout)
	set(&c.ConfirmTimeout, d.ConfirmTimeout)
	set(&c.KeepAlive, d.KeepAlive)
	set(&c.BatchDelay, d.BatchDelay)
	set(&c.ReconnectMin, d.ReconnectMin)
	set(&c.ReconnectMax, d.ReconnectMax)
	if c.MaxBatchReadings == 0 {
		c.MaxBatchReadings = d.MaxBatchReadings
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = d.MaxPayload
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Validate reports the first problem with c (after defaults), naming the
// field. It does no I/O.
func (c Config) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BrokerURL)
	switch {
	case c.BrokerURL == "":
		return fmt.Errorf("uplink config: broker_url is required")
	case err != nil:
		return fmt.Errorf("uplink config: broker_url: %w", err)
	case u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtts" && u.Scheme != "mqtt":
		return fmt.Errorf("uplink config: broker_url %q: scheme must be tcp, mqtt, ssl, tls or mqtts", c.BrokerURL)
	case u.Host == "":
		return fmt.Errorf("uplink config: broker_url %q: no host", c.BrokerURL)
	case !ValidTruckID(c.Truck):
		return fmt.Errorf("uplink config: truck %q: must be 1-64 letters, digits, '-' or '_'", c.Truck)
	case len(c.ClientID) > 128:
		return fmt.Errorf("uplink config: client_id longer than 128 bytes")
	case c.ConnectTimeout < 0, c.PublishTimeout < 0, c.ConfirmTimeout < 0, c.KeepAlive < 0, c.BatchDelay < 0, c.MinPublishInterval < 0:
		return fmt.Errorf("uplink config: timeouts must be positive")
	case c.MaxBatchReadings < 1 || c.MaxBatchReadings > MaxBatchRecords:
		return fmt.Errorf("uplink config: max_batch_readings must be in 1..%d, got %d", MaxBatchRecords, c.MaxBatchReadings)
	case c.MaxPayload < 1024 || c.MaxPayload > MaxPayloadSize:
		return fmt.Errorf("uplink config: max_payload must be in 1024..%d, got %d", MaxPayloadSize, c.MaxPayload)
	case c.Window < 1 || c.Window > 1024:
		return fmt.Errorf("uplink config: window must be in 1..1024, got %d", c.Window)
	case c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("uplink config: need 0 < reconnect_min (%v) <= reconnect_max (%v)", c.ReconnectMin, c.ReconnectMax)
	}
	return nil
}
