package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/broker"
	"github.com/abc4logistics/tankguard/cloud/console"
	"github.com/abc4logistics/tankguard/cloud/incident"
	"github.com/abc4logistics/tankguard/cloud/notify"
	"github.com/abc4logistics/tankguard/cloud/store"
	"github.com/abc4logistics/tankguard/uplink"
)

// Cloud is the fleet back end: broker (embedded or external), ingest,
// re-detection, archive and console. Create it with New and start it with
// Run, once. Its accessor methods are safe for concurrent use.
type Cloud struct {
	cfg     Config
	log     *slog.Logger
	cnt     counters
	console *console.Console

	ready      chan struct{}
	brokerAddr string         // set before ready closes
	brk        *broker.Broker // the embedded broker, or nil; set before ready closes
	httpAddr   string
	archive    archive.Store
	inc        *incident.Manager
	client     mqtt.Client
	clientTLS  *tls.Config // BrokerClientTLS loaded, nil without (brokertls.go)

	runOnce sync.Once
	// flushNow asks the archiver to flush without waiting for its
	// interval (tests and benchmarks); set before Ready.
	flushNow func()
}

// New checks cfg (filling defaults) and returns a Cloud ready to Run. It
// does no I/O.
func New(cfg Config, log *slog.Logger) (*Cloud, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cloud{cfg: cfg, log: log, ready: make(chan struct{})}
	var err error
	if c.clientTLS, err = loadClientTLS(cfg.BrokerClientTLS); err != nil {
		return nil, err
	}
	c.console = console.New(log.With("component", "console"), console.Options{
		Stats:        func() any { return c.Stats() },
		Incidents:    c,
		OfflineAfter: max(cfg.Incidents.OfflineSilence, 0),
		Config:       cfg.Console,
		DataDir:      cfg.DataDir,
		Detect:       cfg.Detect,
	})
	return c, nil
}

// Config returns the configuration in use, with defaults filled in.
func (c *Cloud) Config() Config { return c.cfg }

// Ready is closed once Run has bound the broker and console listeners and
// subscribed to the uplink topics.
func (c *Cloud) Ready() <-chan struct{} { return c.ready }

// BrokerAddr returns the host:port of the broker the cloud uses (the
// embedded broker's bound address, or the external broker's). Valid after
// Ready is closed.
func (c *Cloud) BrokerAddr() string {
	select {
	case <-c.ready:
		return c.brokerAddr
	default:
		return ""
	}
}

// HTTPAddr returns the console's bound host:port. Valid after Ready.
func (c *Cloud) HTTPAddr() string {
	select {
	case <-c.ready:
		return c.httpAddr
	default:
		return ""
	}
}

// ArchiveDir returns the local archive directory, or "" when archiving to S3.
func (c *Cloud) ArchiveDir() string {
	if c.cfg.Archive != "" {
		return ""
	}
	return filepath.Join(c.cfg.DataDir, "archive")
}

// Stats returns a snapshot of the counters.
func (c *Cloud) Stats() Stats {
	s := c.cnt.snapshot()
	s.ConsoleBadRequests = c.console.BadRequests()
	select {
	case <-c.ready:
		if c.brk != nil {
			s.Broker = c.brk.Stats()
		}
	default:
	}
	return s
}

func (c *Cloud) started() (*incident.Manager, error) {
	select {
	case <-c.ready:
		return c.inc, nil
	default:
		return nil, ErrNotStarted
	}
}

// List returns the incidents in memory, newest first (for the console).
func (c *Cloud) List() []incident.Incident {
	m, err := c.started()
	if err != nil {
		return nil
	}
	return m.List()
}

// Incident returns one incident by id.
func (c *Cloud) Incident(id string) (incident.Incident, error) {
	m, err := c.started()
	if err != nil {
		return incident.Incident{}, err
	}
	return m.Get(id)
}

// DeadLetters returns the notifications no channel accepted.
func (c *Cloud) DeadLetters() ([]incident.DeadLetter, error) {
	m, err := c.started()
	if err != nil {
		return nil, err
	}
	return m.DeadLetters()
}

// Acknowledge records that operator by acknowledged incident id and
// tells the truck (an alert_ack command on its cmd topic), so its cab
// shows the acknowledgement.
func (c *Cloud) Acknowledge(id, by string) (incident.Incident, error) {
	m, err := c.started()
	if err != nil {
		return incident.Incident{}, err
	}
	now := time.Now()
	inc, err := m.Acknowledge(id, by, now)
	if err != nil {
		return inc, err
	}
	if err := c.sendAck(inc, by, now); err != nil {
		c.cnt.commandErrors.Add(1)
		c.log.Warn("ack command not sent", "incident", id, "truck", inc.Truck, "err", err)
	}
	return inc, nil
}

// Resolve records that operator by resolved incident id.
func (c *Cloud) Resolve(id, by string) (incident.Incident, error) {
	m, err := c.started()
	if err != nil {
		return incident.Incident{}, err
	}
	return m.Resolve(id, by, time.Now())
}

// sendAck publishes an alert_ack command for inc to its truck. It names
// the edge's alert when the edge raised one, else the cloud's.
func (c *Cloud) sendAck(inc incident.Incident, by string, now time.Time) error {
	src := inc.Sources[incident.SourceEdge]
	if src == nil {
		src = inc.Sources[incident.SourceCloud]
	}
	if src == nil || inc.Signal == "" {
		return nil // nothing the truck knows about (e.g. offline)
	}
	p, err := uplink.EncodeCommand(uplink.Command{
		ID:   fmt.Sprintf("ack-%s-%d", inc.ID, now.UnixNano()),
		Type: uplink.CommandAlertAck,
		Ack:  &uplink.AlertAck{Signal: inc.Signal, Start: src.Start.UnixNano(), Time: now.UnixNano(), By: by, Severity: inc.Severity},
	})
	if err != nil {
		return err
	}
	tok := c.client.Publish(uplink.Topic(inc.Truck, uplink.KindCommand), 1, false, p)
	if !tok.WaitTimeout(5 * time.Second) {
		return errors.New("publish timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.cnt.commands.Add(1)
	return nil
}

// Run starts everything and blocks until ctx ends or a component fails;
// then it stops receiving, archives what is staged (for up to 10 s) and
// closes the broker and database. It returns nil after a clean stop.
func (c *Cloud) Run(ctx context.Context) error {
	err := errors.New("cloud: Run called twice")
	c.runOnce.Do(func() { err = c.run(ctx) })
	return err
}

func (c *Cloud) run(ctx context.Context) error {
	log := c.log
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("cloud data dir: %w", err)
	}
	db, err := store.Open(filepath.Join(c.cfg.DataDir, "cloud.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := c.openArchive(ctx)
	if err != nil {
		return err
	}
	c.archive = st
	known, err := db.Trucks()
	if err != nil {
		return err
	}
	c.console.Known(known)
	c.inc, err = incident.Open(db.Bolt(), c.cfg.Incidents, time.Now(), known, c.console.IncidentChanged)
	if err != nil {
		return err
	}
	senders, err := c.senders(ctx)
	if err != nil {
		return err
	}
	ntf := newNotifier(c.cfg.Notify, log.With("component", "notify"), c.inc, senders, &c.cnt)

	arch := newArchiver(c.cfg, log.With("component", "archive"), db, st, &c.cnt)
	c.flushNow = arch.flushSoon
	in := newIngester(c.cfg, log.With("component", "ingest"), db, &c.cnt, c.console, arch.staged)
	in.inc = c.inc
	in.remember = arch.remember
	confirms := make(chan confirmation, 4*c.cfg.MaxBatchMessages)
	in.confirm = func(truck string, ids []uint64) {
		select {
		case confirms <- confirmation{truck, ids}:
		default:
			// The gateway sends the payloads again after its confirm
			// timeout; the cloud drops them as duplicates and confirms.
			c.cnt.confirmDropped.Add(1)
		}
	}

	brokerURL := c.cfg.BrokerURL
	if c.cfg.BrokerListen != "" {
		opts := broker.Options{Listen: c.cfg.BrokerListen, CloudClientID: c.cfg.ClientID}
		if t := c.cfg.BrokerTLS; t.Enabled() {
			if opts.TLS, err = broker.LoadServerTLS(t.CertFile, t.KeyFile, t.ClientCAFile); err != nil {
				return err
			}
			opts.Admins, opts.Internal = t.Admins, filepath.Join(c.cfg.DataDir, "broker.sock")
			if t.RevokedFile != "" {
				if opts.RevokedCA, err = os.ReadFile(t.ClientCAFile); err != nil {
					return fmt.Errorf("broker revocation list CA: %w", err)
				}
				opts.RevokedFile = t.RevokedFile
			}
		} else {
			log.Warn("INSECURE: the embedded MQTT broker runs on plain TCP (broker_plain_tcp): anyone who reaches it may publish as any truck and read every command; configure broker_tls for anything but development on loopback",
				"listen", c.cfg.BrokerListen)
		}
		if c.cfg.Ingest == IngestHook {
			opts.Match, opts.Intercept = isUpTopic, in.intercept
		}
		brk, err := broker.Start(opts, log.With("component", "broker"))
		if err != nil {
			return err
		}
		defer brk.Close()
		c.brokerAddr, c.brk = brk.Addr(), brk
		brokerURL = brk.ClientURL()
	} else {
		u, _ := url.Parse(brokerURL)
		c.brokerAddr = u.Host
	}

	ln, err := net.Listen("tcp", c.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("cloud console listen: %w", err)
	}
	c.httpAddr = ln.Addr().String()
	if err := c.console.Open(); err != nil {
		ln.Close()
		return err
	}
	srv := c.console.Server(c.httpHandler())
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("cloud console: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return c.console.Run(gctx) })
	g.Go(func() error { c.console.LoadHistory(gctx, st); return nil })
	g.Go(func() error { return arch.run(gctx) })
	g.Go(func() error { return in.run(gctx) })
	g.Go(func() error { return ntf.run(gctx) })

	subscribed := make(chan struct{})
	filters := map[string]byte{uplink.StatusFilter: 1}
	if c.cfg.Ingest == IngestSubscribe {
		filters[uplink.UpFilter] = 1
	} else {
		// The broker hook ingests batches only; DTC reports (state, retained)
		// come by subscription.
		filters[uplink.DTCFilter] = 1
	}
	client := c.connect(brokerURL, filters, in.handle, subscribed, log.With("component", "mqtt"))
	c.client = client
	g.Go(func() error { c.sendConfirmations(gctx, confirms); return nil }) // after c.client is set
	g.Go(func() error {
		select {
		case <-subscribed:
			log.Info("cloud ready", "broker", c.brokerAddr, "console", "http://"+c.httpAddr+"/", "archive", st.String())
			close(c.ready)
		case <-gctx.Done():
		}
		return nil
	})

	err = g.Wait()
	client.Disconnect(250)
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ferr := arch.flushAll(fctx); ferr != nil {
		log.Error("final archive flush failed; records stay staged for the next start", "err", ferr)
	}
	return err
}

// confirmation names payloads of one truck now durable in the cloud.
type confirmation struct {
	truck string
	ids   []uint64
}

// sendConfirmations publishes each confirmation on its truck's durable
// topic (QoS 1) until ctx ends. A confirmation that cannot be sent is
// counted; the gateway sends the payloads again and they are confirmed
// then.
func (c *Cloud) sendConfirmations(ctx context.Context, ch <-chan confirmation) {
	for {
		var cf confirmation
		select {
		case <-ctx.Done():
			return
		case cf = <-ch:
		}
		for len(cf.ids) > 0 {
			n := min(len(cf.ids), 1<<16)
			p, err := uplink.EncodeDurable(cf.ids[:n])
			cf.ids = cf.ids[n:]
			if err != nil {
				continue
			}
			tok := c.client.Publish(uplink.Topic(cf.truck, uplink.KindDurable), 1, false, p)
			select {
			case <-tok.Done():
				if tok.Error() != nil {
					c.cnt.confirmDropped.Add(1)
				} else {
					c.cnt.confirmsSent.Add(1)
				}
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
				c.cnt.confirmDropped.Add(1)
			}
		}
	}
}

// connect starts the MQTT client: persistent session, manual acks, and a
// subscription to the uplink and status topics on every (re)connect.
// subscribed is closed after the first successful subscription.
func (c *Cloud) connect(brokerURL string, filters map[string]byte, handler mqtt.MessageHandler, subscribed chan struct{}, log *slog.Logger) mqtt.Client {
	var once sync.Once
	opts := mqtt.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(c.cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(handler).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("broker connection lost; reconnecting", "broker", brokerURL, "err", err)
		}).
		SetConnectionNotificationHandler(c.connectionLog(brokerURL, log)).
		SetOnConnectHandler(func(cl mqtt.Client) {
			tok := cl.SubscribeMultiple(filters, handler)
			go func() {
				tok.Wait()
				if err := tok.Error(); err != nil {
					log.Error("subscribe failed", "err", err)
					return
				}
				once.Do(func() { close(subscribed) })
			}()
		})
	if c.clientTLS != nil {
		opts.SetTLSConfig(c.clientTLS)
	}
	client := mqtt.NewClient(opts)
	client.Connect() // retries in the background until Disconnect
	return client
}

// isUpTopic reports whether topic is a truck's uplink data topic.
func isUpTopic(topic string) bool {
	_, kind, err := uplink.ParseTopic(topic)
	return err == nil && (kind == uplink.KindTelemetry || kind == uplink.KindAlerts)
}

// senders builds the notification channels from the configuration.
func (c *Cloud) senders(ctx context.Context) ([]notify.Sender, error) {
	var out []notify.Sender
	for _, w := range c.cfg.Notify.Webhooks {
		out = append(out, &notify.Webhook{URL: w.URL, Secret: w.Secret, EscalationOnly: w.EscalationOnly})
	}
	n := c.cfg.Notify
	if n.SNSTopicARN == "" && n.SNSEscalationTopicARN == "" {
		return out, nil
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(n.SNSRegion))
	if err != nil {
		return nil, fmt.Errorf("cloud sns config: %w", err)
	}
	client := sns.NewFromConfig(ac, func(o *sns.Options) {
		if n.SNSEndpoint != "" {
			o.BaseEndpoint = aws.String(n.SNSEndpoint)
		}
	})
	if n.SNSTopicARN != "" {
		out = append(out, &notify.SNS{Client: client, TopicARN: n.SNSTopicARN})
	}
	if n.SNSEscalationTopicARN != "" {
		out = append(out, &notify.SNS{Client: client, TopicARN: n.SNSEscalationTopicARN, EscalationOnly: true})
	}
	return out, nil
}

func (c *Cloud) openArchive(ctx context.Context) (archive.Store, error) {
	if c.cfg.Archive == "" {
		dir := filepath.Join(c.cfg.DataDir, "archive")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cloud archive dir: %w", err)
		}
		return archive.Dir{Root: dir}, nil
	}
	bucket, prefix, err := archive.ParseS3URL(c.cfg.Archive)
	if err != nil {
		return nil, err
	}
	client, err := newS3Client(ctx, c.cfg.S3)
	if err != nil {
		return nil, err
	}
	if d := c.cfg.S3.GlacierAfterDays; d > 0 {
		switch err := archive.ApplyLifecycle(ctx, client, bucket, prefix, d); {
		case errors.Is(err, archive.ErrLifecycleNotSupported):
			// A property of the server (versitygw, some S3-compatible
			// stores), not a fault: said once per start, not counted.
			c.log.Warn("archive lifecycle rule not applied: the S3 server does not support lifecycle rules; glacier_after_days has no effect there",
				"bucket", bucket, "glacier_after_days", d)
		case err != nil:
			c.cnt.archiveErrors.Add(1)
			c.log.Error("archive lifecycle rule not applied", "err", err)
		default:
			c.log.Info("archive lifecycle rule applied", "bucket", bucket, "prefix", prefix, "glacier_after_days", d)
		}
	}
	return archive.S3{Client: client, Bucket: bucket, Prefix: prefix}, nil
}

// newS3Client builds an S3 client from the usual AWS credential sources
// and cfg.
func newS3Client(ctx context.Context, cfg S3Config) (*s3.Client, error) {
	ac, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("cloud s3 config: %w", err)
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}
