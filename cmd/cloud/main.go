// Command cloud runs the tankguard cloud: MQTT broker (embedded unless
// -broker-url is given), ingest, re-detection, archive and fleet console.
//
//	cloud [flags]              run until SIGINT/SIGTERM
//	cloud -config cloud.json   the same, with settings from a JSON file (flags win)
//	cloud hash-password [-alg bcrypt|argon2id] [-name N -role R] < password
//	                           print a password hash (or a users-file entry) for the console
//	cloud athena-ddl -archive s3://bucket/prefix [-database tankguard]
//	                           print CREATE EXTERNAL TABLE statements (partition projection)
//	cloud help, cloud -h       print usage with the subcommands and flags
//
// It prints the console URL and the broker address once ready.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/abc4logistics/tankguard/cloud"
	"github.com/abc4logistics/tankguard/cloud/archive"
)

// athenaDDL prints the Athena table definitions for an S3 archive.
func athenaDDL(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cloud athena-ddl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := fs.String("archive", "", "the archive's S3 location, s3://bucket/prefix (required)")
	db := fs.String("database", "tankguard", "Athena database (schema) name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, _, err := archive.ParseS3URL(*loc); err != nil {
		return fmt.Errorf("athena-ddl: -archive: %w", err)
	}
	_, err := io.WriteString(stdout, archive.AthenaDDL(*loc, *db))
	return err
}

// usageHead is what `cloud -h` and `cloud help` print before the flags.
const usageHead = `cloud runs the tankguard cloud: MQTT broker (embedded unless -broker-url),
ingest, re-detection, archive, incidents, notifications and the fleet console.

usage:
  cloud [flags]                 run until SIGINT/SIGTERM
  cloud -config cloud.json      the same, with settings from a JSON file (flags win)
  cloud hash-password [-alg bcrypt|argon2id] [-name N -role R] [-token] < password
                                print a password hash (or a users-file entry)
  cloud athena-ddl -archive s3://bucket/prefix [-database tankguard]
                                print the Athena DDL for an S3 archive
  cloud help                    print this help

Run "cloud SUBCOMMAND -h" for a subcommand's flags.

flags:
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // the help was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "cloud:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(args[1:], os.Stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "athena-ddl" {
		return athenaDDL(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("cloud", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if len(args) > 0 && args[0] == "help" {
		fs.SetOutput(stdout)
	}
	var (
		configFile    = fs.String("config", "", "JSON config file (keys as in cloud.Config's json tags); flags override it")
		dataDir       = fs.String("data", "./var/cloud", "data directory (database and local archive)")
		brokerListen  = fs.String("broker-listen", cloud.DefaultBrokerListen, "embedded MQTT broker listen address (host:port, port 0 = any free)")
		brokerPlain   = fs.Bool("broker-plain-tcp", false, "run the embedded broker on plain TCP without mutual TLS (INSECURE: anyone on the network may publish as any truck; development on loopback only; logged as a warning at every start)")
		brokerCert    = fs.String("broker-tls-cert", "", "embedded broker: server certificate (PEM; tankguard-ca broker)")
		brokerKey     = fs.String("broker-tls-key", "", "embedded broker: server key (PEM)")
		brokerCA      = fs.String("broker-tls-ca", "", "embedded broker: the fleet CA that signs the trucks' certificates (PEM)")
		brokerCRL     = fs.String("broker-revoked", "", "embedded broker: revocation list (tankguard-ca revoke), re-read when it changes")
		brokerURL     = fs.String("broker-url", "", "use this external MQTT broker instead of the embedded one, e.g. tcp://127.0.0.1:1883")
		clientCert    = fs.String("broker-cert", "", "client certificate (PEM) for a TLS -broker-url (ssl://host:8883), e.g. cloud.pem from tankguard-ca cloud; Mosquitto require_certificate, AWS IoT Core")
		clientKey     = fs.String("broker-key", "", "key (PEM) of -broker-cert")
		clientCA      = fs.String("broker-ca", "", "CA certificate (PEM) that signs the broker's certificate (default: system roots)")
		brokerName    = fs.String("broker-server-name", "", "name to check in the broker's certificate (default: the -broker-url host)")
		clientID      = fs.String("client-id", cloud.DefaultClientID, "MQTT client id (persistent session)")
		httpListen    = fs.String("http", cloud.DefaultHTTPListen, "console listen address (host:port)")
		archiveURL    = fs.String("archive", "", `archive location: "" = <data>/archive, or s3://bucket/prefix`)
		s3Endpoint    = fs.String("s3-endpoint", "", "S3 endpoint override, e.g. http://127.0.0.1:7070 (versitygw, MinIO)")
		s3Region      = fs.String("s3-region", cloud.DefaultS3Region, "S3 region")
		s3PathStyle   = fs.Bool("s3-path-style", false, "path-style S3 addressing (most S3-compatible servers)")
		glacierDays   = fs.Int("glacier-after-days", 0, "with an s3:// archive: apply a lifecycle rule moving it to GLACIER after this many days (0 = leave the bucket's lifecycle alone)")
		ingestMode    = fs.String("ingest", "", `how to take data from the embedded broker: "hook" (default; the gateway's PUBACK waits for the durable commit) or "subscribe"`)
		webhookURL    = fs.String("webhook", "", "incident notification webhook URL (more in the config file)")
		webhookSecret = fs.String("webhook-secret", "", "HMAC-SHA256 secret for -webhook (default: env TANKGUARD_WEBHOOK_SECRET)")
		snsTopic      = fs.String("sns-topic", "", "incident notification SNS topic ARN")
		snsEndpoint   = fs.String("sns-endpoint", "", "SNS endpoint override URL")
		flushInterval = fs.Duration("flush-interval", cloud.DefaultFlushInterval, "how often staged records are written to the archive")
		logLevel      = fs.String("log-level", "info", "log level: debug, info, warn, error")
		usersFile     = fs.String("users", "", "console users file (JSON; hashes from 'cloud hash-password'); default <data>/users.json, created with a random admin password written to <data>/initial-admin-password (0600)")
		tileURL       = fs.String("tiles", "", "console map tile URL template, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (default: none, a graticule)")
	)
	if len(args) > 0 && args[0] == "help" {
		if len(args) > 1 {
			return fmt.Errorf("help: unexpected arguments %q", args[1:])
		}
		fs.Usage()
		return flag.ErrHelp
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (subcommands: hash-password, athena-ddl, help)", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var cfg cloud.Config
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(name string, fn func()) {
		if set[name] || *configFile == "" {
			fn()
		}
	}
	apply("data", func() { cfg.DataDir = *dataDir })
	apply("broker-url", func() { cfg.BrokerURL = *brokerURL })
	apply("broker-listen", func() {
		if cfg.BrokerURL == "" || set["broker-listen"] {
			cfg.BrokerListen = *brokerListen
		}
	})
	apply("broker-plain-tcp", func() { cfg.BrokerPlainTCP = *brokerPlain })
	apply("broker-tls-cert", func() { cfg.BrokerTLS.CertFile = *brokerCert })
	apply("broker-tls-key", func() { cfg.BrokerTLS.KeyFile = *brokerKey })
	apply("broker-tls-ca", func() { cfg.BrokerTLS.ClientCAFile = *brokerCA })
	apply("broker-revoked", func() { cfg.BrokerTLS.RevokedFile = *brokerCRL })
	apply("broker-cert", func() { cfg.BrokerClientTLS.CertFile = *clientCert })
	apply("broker-key", func() { cfg.BrokerClientTLS.KeyFile = *clientKey })
	apply("broker-ca", func() { cfg.BrokerClientTLS.CAFile = *clientCA })
	apply("broker-server-name", func() { cfg.BrokerClientTLS.ServerName = *brokerName })
	apply("client-id", func() { cfg.ClientID = *clientID })
	apply("http", func() { cfg.HTTPListen = *httpListen })
	apply("archive", func() { cfg.Archive = *archiveURL })
	apply("s3-endpoint", func() { cfg.S3.Endpoint = *s3Endpoint })
	apply("s3-region", func() { cfg.S3.Region = *s3Region })
	apply("s3-path-style", func() { cfg.S3.PathStyle = *s3PathStyle })
	apply("flush-interval", func() { cfg.FlushInterval = *flushInterval })
	apply("glacier-after-days", func() { cfg.S3.GlacierAfterDays = int32(*glacierDays) })
	apply("ingest", func() { cfg.Ingest = *ingestMode })
	if *webhookURL != "" {
		secret := *webhookSecret
		if secret == "" {
			secret = os.Getenv("TANKGUARD_WEBHOOK_SECRET")
		}
		cfg.Notify.Webhooks = append(cfg.Notify.Webhooks, cloud.WebhookConfig{URL: *webhookURL, Secret: secret})
	}
	apply("sns-topic", func() { cfg.Notify.SNSTopicARN = *snsTopic })
	apply("sns-endpoint", func() { cfg.Notify.SNSEndpoint = *snsEndpoint })
	apply("users", func() { cfg.Console.UsersFile = *usersFile })
	apply("tiles", func() { cfg.Console.TileURL = *tileURL })
	if cfg.BrokerURL != "" && !set["broker-listen"] {
		cfg.BrokerListen = ""
	}

	c, err := cloud.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-c.Ready():
			fmt.Fprintf(stdout, "console: http://%s/\nbroker: %s\n", c.HTTPAddr(), c.BrokerAddr())
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	err = c.Run(ctx)
	log.Info("cloud stopped", "uptime", time.Since(start).Round(time.Second), "err", err)
	return err
}
