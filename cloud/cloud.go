package cloud

import (
	"context"
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
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/abc4logistics/tankguard/cloud/archive"
	"github.com/abc4logistics/tankguard/cloud/broker"
	"github.com/abc4logistics/tankguard/cloud/console"
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
	brokerAddr string // set before ready closes
	httpAddr   string
	archive    archive.Store

	runOnce sync.Once
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
	c.console = console.New(log.With("component", "console"), console.Options{Stats: func() any { return c.Stats() }})
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
func (c *Cloud) Stats() Stats { return c.cnt.snapshot() }

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

	arch := newArchiver(c.cfg, log.With("component", "archive"), db, st, &c.cnt)
	in := newIngester(c.cfg, log.With("component", "ingest"), db, &c.cnt, c.console, arch.staged)

	brokerURL := c.cfg.BrokerURL
	if c.cfg.BrokerListen != "" {
		opts := broker.Options{Listen: c.cfg.BrokerListen}
		if c.cfg.Ingest == IngestHook {
			opts.Match, opts.Intercept = isUpTopic, in.intercept
		}
		brk, err := broker.Start(opts, log.With("component", "broker"))
		if err != nil {
			return err
		}
		defer brk.Close()
		c.brokerAddr = brk.Addr()
		brokerURL = "tcp://" + c.brokerAddr
	} else {
		u, _ := url.Parse(brokerURL)
		c.brokerAddr = u.Host
	}

	ln, err := net.Listen("tcp", c.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("cloud console listen: %w", err)
	}
	c.httpAddr = ln.Addr().String()
	srv := &http.Server{Handler: c.console.Handler(), ReadHeaderTimeout: 10 * time.Second}

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
	g.Go(func() error { return arch.run(gctx) })
	g.Go(func() error { return in.run(gctx) })

	subscribed := make(chan struct{})
	filters := map[string]byte{uplink.StatusFilter: 1}
	if c.cfg.Ingest == IngestSubscribe {
		filters[uplink.UpFilter] = 1
	}
	client := c.connect(brokerURL, filters, in.handle, subscribed, log.With("component", "mqtt"))
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
			log.Warn("broker connection lost", "err", err)
		}).
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
	client := mqtt.NewClient(opts)
	client.Connect() // retries in the background until Disconnect
	return client
}

// isUpTopic reports whether topic is a truck's uplink data topic.
func isUpTopic(topic string) bool {
	_, kind, err := uplink.ParseTopic(topic)
	return err == nil && (kind == uplink.KindTelemetry || kind == uplink.KindAlerts)
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
