package cloud

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/uplink"
)

// Config configures a Cloud. Start from DefaultConfig; the zero value of a
// field means its default (see DefaultConfig). JSON names are the keys of
// cmd/cloud's config file.
type Config struct {
	// DataDir holds the cloud's database (cloud.db) and, unless Archive
	// names S3, the archive (DataDir/archive). Required.
	DataDir string `json:"data_dir"`
	// BrokerListen is the host:port of the embedded MQTT broker's TCP
	// listener ("127.0.0.1:0" picks a free port). Exactly one of
	// BrokerListen and BrokerURL is set; with neither, the embedded broker
	// listens on 127.0.0.1:1883.
	BrokerListen string `json:"broker_listen,omitempty"`
	// BrokerURL is an external broker to subscribe to instead, e.g.
	// "tcp://127.0.0.1:1883" (Mosquitto).
	BrokerURL string `json:"broker_url,omitempty"`
	// BrokerClientTLS configures the cloud's TLS client for an external
	// broker (BrokerURL ssl://, tls:// or wss://): a client certificate for
	// Mosquitto's require_certificate or AWS IoT Core, and the CA that
	// signs the broker's certificate.
	BrokerClientTLS ClientTLSConfig `json:"broker_client_tls"`
	// BrokerTLS, if set, makes the embedded broker's listener mutual TLS
	// with per-truck identity (see cloud/broker/auth.go); the cloud's own
	// client then connects over the unix socket DataDir/broker.sock.
	BrokerTLS BrokerTLSConfig `json:"broker_tls"`
	// BrokerPlainTCP allows the embedded broker without BrokerTLS: plain
	// TCP, no client identity, so anyone who reaches its port may publish
	// as any truck and read every command. The embedded broker refuses to
	// start without BrokerTLS unless this is set, and the cloud logs a
	// warning at every start with it. For development on loopback only.
	BrokerPlainTCP bool `json:"broker_plain_tcp,omitempty"`
	// Ingest says how the cloud takes uplinked data from the embedded
	// broker: IngestHook (default) ingests inside the broker before it
	// acknowledges the gateway, so a gateway's PUBACK means the data is
	// durable in the cloud even if the process is killed at once;
	// IngestSubscribe uses an MQTT subscription as with an external
	// broker. With BrokerURL it must be IngestSubscribe (or empty).
	Ingest string `json:"ingest,omitempty"`
	// ClientID is the cloud's MQTT client id. Its session is persistent
	// (clean session false), so it must be stable across restarts.
	ClientID string `json:"client_id,omitempty"`
	// HTTPListen is the console's host:port ("127.0.0.1:0" picks one).
	HTTPListen string `json:"http_listen,omitempty"`
	// Archive is where readings and alerts are archived: "" for the local
	// directory DataDir/archive, or "s3://bucket/prefix".
	Archive string `json:"archive,omitempty"`
	// S3 configures the S3 client when Archive is an s3:// URL.
	S3 S3Config `json:"s3"`
	// Detect configures the cloud's own re-detection.
	Detect detect.Config `json:"detect"`
	// Limits bound what the cloud accepts in one uplinked message.
	Limits uplink.Limits `json:"limits"`
	// Time bounds the event times of accepted readings relative to when
	// the cloud received them; readings outside are quarantined.
	Time TimeConfig `json:"time"`
	// FlushInterval is how often staged records are written to the archive.
	FlushInterval time.Duration `json:"flush_interval,omitempty"`
	// FlushBytes is how many bytes of staged records start a flush before
	// the interval ends, and the most one archive object set covers.
	FlushBytes int `json:"flush_bytes,omitempty"`
	// Incidents configures incident merging, repeats, escalation and the
	// truck-offline check (see incident.Config). Zero durations take
	// defaults; negative ones disable.
	Incidents incident.Config `json:"incidents"`
	// Notify says where incident notifications go.
	Notify NotifyConfig `json:"notify"`
	// MinFreeBytes is the free space the data disk must keep: below it,
	// ingest stops taking messages (they stay unacknowledged, so gateways
	// and the broker keep them), Stats.DiskFull and the metric
	// tankguard_cloud_disk_full say so, the broker and console stay up,
	// and ingest resumes by itself once space returns (checked every
	// second). Default 64 MiB; negative: no check.
	MinFreeBytes int64 `json:"min_free_bytes,omitempty"`
	// MaxBatchMessages is how many MQTT messages one database commit
	// covers at most. Messages are acknowledged after their commit.
	MaxBatchMessages int `json:"max_batch_messages,omitempty"`
	// Console configures the fleet console: users file, sessions, map
	// tiles, chart history (see console.Config).
	Console console.Config `json:"console"`
}

// TimeConfig bounds accepted event times. A reading whose time is more
// than MaxFuture after the cloud received it, or more than MaxPast before,
// or (flagged sensors.ClockUntrusted) more than UntrustedSkew either way,
// is quarantined: counted (Stats.QuarantinedReadings, metric
// tankguard_cloud_rejected_total{cause="quarantined_time"}), logged,
// archived in the quarantine dataset by receive time, and never shown as
// the truck's last value or fed to the cloud's detector. The bounds also
// bound the archive objects one batch can create (one per event-time hour).
type TimeConfig struct {
	// MaxFuture: default 5 min (clock skew and batching).
	MaxFuture time.Duration `json:"max_future,omitempty"`
	// MaxPast: default 7 days (a gateway's backlog after a long outage;
	// older readings are still archived, in quarantine).
	MaxPast time.Duration `json:"max_past,omitempty"`
	// UntrustedSkew: default 10 min. A reading taken before the gateway's
	// clock was confirmed is accepted only if its time is this close to
	// receive time (the clock was about right and it is live).
	UntrustedSkew time.Duration `json:"untrusted_skew,omitempty"`
}

// S3Config configures the archive's S3 client. Credentials come from the
// usual AWS sources (environment, shared config, instance role).
type S3Config struct {
	// Region is the bucket's region (default "us-east-1").
	Region string `json:"region,omitempty"`
	// Endpoint overrides the S3 endpoint URL, for S3-compatible servers
	// such as versitygw or MinIO; "" uses AWS.
	Endpoint string `json:"endpoint,omitempty"`
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint; most S3-compatible servers need it.
	PathStyle bool `json:"path_style,omitempty"`
	// GlacierAfterDays, if positive, makes Run apply a bucket lifecycle
	// rule (PutBucketLifecycleConfiguration, replacing the bucket's
	// lifecycle configuration) moving the archive prefix to GLACIER after
	// that many days. A failure is logged and counted, not fatal.
	GlacierAfterDays int32 `json:"glacier_after_days,omitempty"`
}

// BrokerTLSConfig names the PEM files of the embedded broker's mutual
// TLS (cmd/tankguard-ca makes them). Set all three files or none.
type BrokerTLSConfig struct {
	// CertFile and KeyFile are the broker's certificate and key.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ClientCAFile is the fleet CA that signs the trucks' certificates.
	ClientCAFile string `json:"client_ca_file,omitempty"`
	// Admins are certificate identities (CN) allowed every topic, for
	// cloud services connecting over TLS rather than the unix socket. The
	// certificate must also carry the cloud role (OU broker.CloudRole, as
	// tankguard-ca cloud issues it).
	Admins []string `json:"admins,omitempty"`
	// RevokedFile is a PEM X.509 CRL signed by the fleet CA listing
	// revoked client certificates (tankguard-ca revoke writes pki/crl.pem).
	// The broker re-reads it when it changes, refuses those certificates
	// and disconnects their clients. A missing file: nothing revoked.
	RevokedFile string `json:"revoked_file,omitempty"`
}

// ClientTLSConfig names the PEM files of the cloud's MQTT client TLS.
type ClientTLSConfig struct {
	// CertFile and KeyFile are the client certificate and key
	// (tankguard-ca cloud); set both or neither.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// CAFile is the CA certificate that signs the broker's certificate;
	// empty uses the system roots (AWS IoT Core).
	CAFile string `json:"ca_file,omitempty"`
	// ServerName overrides the name checked in the broker's certificate;
	// default the host of BrokerURL.
	ServerName string `json:"server_name,omitempty"`
}

// Enabled reports whether any client TLS file is configured.
func (t ClientTLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// Enabled reports whether mutual TLS is configured.
func (t BrokerTLSConfig) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != ""
}

// NotifyConfig configures incident notifications. With no webhook and no
// SNS topic, incidents are only shown in the console.
type NotifyConfig struct {
	Webhooks []WebhookConfig `json:"webhooks,omitempty"`
	// SNSTopicARN gets every notification; SNSEscalationTopicARN only
	// escalations.
	SNSTopicARN           string `json:"sns_topic_arn,omitempty"`
	SNSEscalationTopicARN string `json:"sns_escalation_topic_arn,omitempty"`
	// SNSRegion is the topics' region (default: S3.Region).
	SNSRegion string `json:"sns_region,omitempty"`
	// SNSEndpoint overrides the SNS endpoint URL (tests, emulators).
	SNSEndpoint string `json:"sns_endpoint,omitempty"`
	// Attempts is how many times a notification is tried per channel
	// before it is dead-lettered; RetryInitial the first wait, doubling up
	// to RetryMax.
	Attempts     int           `json:"attempts,omitempty"`
	RetryInitial time.Duration `json:"retry_initial,omitempty"`
	RetryMax     time.Duration `json:"retry_max,omitempty"`
	// GroupWait delays a notification this long so that a burst of changes
	// to one incident goes out as one notification.
	GroupWait time.Duration `json:"group_wait,omitempty"`
	// Tick is how often repeat, escalation and offline timers are checked.
	Tick time.Duration `json:"tick,omitempty"`
}

// WebhookConfig is one webhook receiver.
type WebhookConfig struct {
	URL string `json:"url"`
	// Secret keys the HMAC-SHA256 signature header (t=<unix>,v1=<hex>
	// over "<unix>." + body; receivers verify with notify.Verify, see
	// SECURITY.md).
	Secret string `json:"secret"`
	// EscalationOnly: the webhook gets only escalations (an on-call pager).
	EscalationOnly bool `json:"escalation_only,omitempty"`
}

// Ingest modes.
const (
	IngestHook      = "hook"
	IngestSubscribe = "subscribe"
)

// Defaults.
const (
	DefaultBrokerListen     = "127.0.0.1:1883"
	DefaultHTTPListen       = "127.0.0.1:8080"
	DefaultClientID         = "tankguard-cloud"
	DefaultFlushInterval    = 10 * time.Second
	DefaultFlushBytes       = 32 << 20
	DefaultMaxBatchMessages = 256
	DefaultMinFreeBytes     = 64 << 20
	DefaultS3Region         = "us-east-1"
	DefaultMaxFuture        = 5 * time.Minute
	DefaultMaxPast          = 7 * 24 * time.Hour
	DefaultUntrustedSkew    = 10 * time.Minute

	DefaultMergeWindow    = 2 * time.Minute
	DefaultRepeatInterval = 30 * time.Minute
	DefaultEscalateAfter  = 15 * time.Minute
	DefaultOfflineSilence = 2 * time.Minute
	DefaultOfflineGrace   = 5 * time.Minute
	DefaultKeepResolved   = 1000
	DefaultRetainResolved = 90 * 24 * time.Hour
	DefaultNotifyAttempts = 6
	DefaultRetryInitial   = time.Second
	DefaultRetryMax       = time.Minute
	DefaultGroupWait      = 100 * time.Millisecond
	DefaultNotifyTick     = time.Second
)

// DefaultConfig returns the configuration used for every field left zero,
// with DataDir unset.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

// setDefaults fills every zero field with its default. It is the one place
// defaults are decided.
func (c *Config) setDefaults() {
	if c.BrokerListen == "" && c.BrokerURL == "" {
		c.BrokerListen = DefaultBrokerListen
	}
	if c.Ingest == "" {
		c.Ingest = IngestHook
		if c.BrokerURL != "" {
			c.Ingest = IngestSubscribe
		}
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.HTTPListen == "" {
		c.HTTPListen = DefaultHTTPListen
	}
	if c.S3.Region == "" {
		c.S3.Region = DefaultS3Region
	}
	if reflect.ValueOf(c.Detect).IsZero() {
		c.Detect = detect.DefaultConfig()
	}
	if reflect.ValueOf(c.Limits).IsZero() {
		c.Limits = uplink.DefaultLimits()
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = DefaultFlushBytes
	}
	if c.MaxBatchMessages == 0 {
		c.MaxBatchMessages = DefaultMaxBatchMessages
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Time.MaxFuture, DefaultMaxFuture)
	def(&c.Time.MaxPast, DefaultMaxPast)
	def(&c.Time.UntrustedSkew, DefaultUntrustedSkew)
	ic := &c.Incidents
	def(&ic.MergeWindow, DefaultMergeWindow)
	def(&ic.RepeatInterval, DefaultRepeatInterval)
	def(&ic.EscalateAfter, DefaultEscalateAfter)
	def(&ic.OfflineSilence, DefaultOfflineSilence)
	def(&ic.OfflineGrace, DefaultOfflineGrace)
	if ic.KeepResolved == 0 {
		ic.KeepResolved = DefaultKeepResolved
	}
	def(&ic.RetainResolved, DefaultRetainResolved)
	n := &c.Notify
	if n.Attempts == 0 {
		n.Attempts = DefaultNotifyAttempts
	}
	def(&n.RetryInitial, DefaultRetryInitial)
	def(&n.RetryMax, DefaultRetryMax)
	def(&n.GroupWait, DefaultGroupWait)
	def(&n.Tick, DefaultNotifyTick)
	if n.SNSRegion == "" {
		n.SNSRegion = c.S3.Region
	}
}

// Validate reports the first problem with c (after defaults), naming the
// field. It does no I/O.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.DataDir == "":
		return bad("data_dir is required")
	case c.BrokerListen != "" && c.BrokerURL != "":
		return bad("set broker_listen or broker_url, not both")
	case c.Ingest != IngestHook && c.Ingest != IngestSubscribe:
		return bad("ingest %q: want %q or %q", c.Ingest, IngestHook, IngestSubscribe)
	case c.Ingest == IngestHook && c.BrokerURL != "":
		return bad("ingest %q needs the embedded broker; use %q with broker_url", IngestHook, IngestSubscribe)
	case c.BrokerTLS.Enabled() && (c.BrokerTLS.CertFile == "" || c.BrokerTLS.KeyFile == "" || c.BrokerTLS.ClientCAFile == ""):
		return bad("broker_tls: cert_file, key_file and client_ca_file are all required")
	case c.BrokerTLS.RevokedFile != "" && !c.BrokerTLS.Enabled():
		return bad("broker_tls.revoked_file needs broker_tls")
	case c.BrokerTLS.Enabled() && c.BrokerListen == "":
		return bad("broker_tls needs the embedded broker (broker_listen), not broker_url")
	case c.BrokerTLS.Enabled() && c.BrokerPlainTCP:
		return bad("set broker_tls or broker_plain_tcp, not both")
	case c.HTTPListen == "":
		return bad("http_listen is required")
	case c.ClientID == "":
		return bad("client_id is required")
	case c.FlushInterval <= 0:
		return bad("flush_interval must be positive, got %v", c.FlushInterval)
	case c.FlushBytes <= 0:
		return bad("flush_bytes must be positive, got %d", c.FlushBytes)
	case c.MaxBatchMessages <= 0:
		return bad("max_batch_messages must be positive, got %d", c.MaxBatchMessages)
	case c.Time.MaxFuture < 0 || c.Time.MaxPast < 0 || c.Time.UntrustedSkew < 0:
		return bad("time.max_future, max_past and untrusted_skew must not be negative, got %+v", c.Time)
	case c.Limits.MaxPayload <= 0 || c.Limits.MaxRecords <= 0:
		return bad("limits must be positive, got %+v", c.Limits)
	}
	if c.BrokerURL != "" {
		u, err := url.Parse(c.BrokerURL)
		if err != nil || u.Host == "" || !(u.Scheme == "tcp" || u.Scheme == "mqtt" || u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "ws" || u.Scheme == "wss") {
			return bad("broker_url %q: want scheme://host:port with scheme tcp, mqtt, ssl, tls, ws or wss", c.BrokerURL)
		}
		if t := c.BrokerClientTLS; t.Enabled() && !(u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "wss") {
			return bad("broker_client_tls is set but broker_url %q is not TLS: use ssl://, tls:// or wss://", c.BrokerURL)
		}
	}
	if t := c.BrokerClientTLS; (t.CertFile == "") != (t.KeyFile == "") {
		return bad("broker_client_tls: cert_file and key_file go together (got cert_file %q, key_file %q)", t.CertFile, t.KeyFile)
	}
	if c.BrokerClientTLS.Enabled() && c.BrokerURL == "" {
		return bad("broker_client_tls needs broker_url (the embedded broker's own client uses its unix socket)")
	}
	if c.Archive != "" {
		if _, _, err := archive.ParseS3URL(c.Archive); err != nil {
			return bad("archive: %v", err)
		}
	}
	for i, w := range c.Notify.Webhooks {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("notify.webhooks[%d].url %q: want an http or https URL", i, w.URL)
		}
		if w.Secret == "" {
			return bad("notify.webhooks[%d].secret is required", i)
		}
	}
	for name, arn := range map[string]string{"sns_topic_arn": c.Notify.SNSTopicARN, "sns_escalation_topic_arn": c.Notify.SNSEscalationTopicARN} {
		if arn != "" && !strings.HasPrefix(arn, "arn:") {
			return bad("notify.%s %q: want an ARN", name, arn)
		}
	}
	switch {
	case c.Notify.Attempts < 1:
		return bad("notify.attempts must be at least 1, got %d", c.Notify.Attempts)
	case c.Notify.RetryInitial < 0 || c.Notify.RetryMax < c.Notify.RetryInitial:
		return bad("notify.retry_initial/retry_max: want 0 <= initial <= max")
	case c.Notify.GroupWait < 0 || c.Notify.Tick <= 0:
		return bad("notify.group_wait must be >= 0 and notify.tick > 0")
	}
	if c.Notify.SNSEndpoint != "" && !strings.Contains(c.Notify.SNSEndpoint, "://") {
		return bad("notify.sns_endpoint %q: want a URL", c.Notify.SNSEndpoint)
	}
	if c.S3.GlacierAfterDays < 0 {
		return bad("s3.glacier_after_days must not be negative")
	}
	if c.S3.Endpoint != "" && !strings.Contains(c.S3.Endpoint, "://") {
		return bad("s3.endpoint %q: want a URL such as http://127.0.0.1:7070", c.S3.Endpoint)
	}
	if err := c.Console.Validate(); err != nil {
		return bad("console: %v", err)
	}
	if err := c.Detect.Validate(); err != nil {
		return bad("detect: %v", err)
	}
	if c.BrokerListen != "" && !c.BrokerTLS.Enabled() && !c.BrokerPlainTCP {
		return bad("the embedded broker needs broker_tls (mutual TLS, see cloud/broker/ACCESS.md); to run it on plain TCP, where anyone on the network may publish as any truck, set broker_plain_tcp (cloud -broker-plain-tcp)")
	}
	return nil
}
