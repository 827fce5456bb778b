package console

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
)

// Config configures the console: who may sign in, sessions, the map and
// the per-truck history it keeps. It is the "console" object of the
// cloud's config file. Zero fields take the defaults below.
type Config struct {
	// UsersFile is the JSON users file (see auth.UsersFile; create hashes
	// with `cloud hash-password`). Empty: <data dir>/users.json, which the
	// console creates at first start with one admin user and a random
	// password that it writes to <data dir>/initial-admin-password (0600).
	UsersFile string `json:"users_file,omitempty"`
	// Users, when not empty, are used instead of any users file (tests,
	// programs embedding the cloud).
	Users []auth.User `json:"users,omitempty"`
	// Auth configures sessions: lifetime, idle timeout, Secure cookie.
	Auth auth.Config `json:"auth"`
	// TileURL is a map tile URL template with {z}, {x} and {y}, e.g.
	// "https://tile.openstreetmap.org/{z}/{x}/{y}.png". Empty (default):
	// no tiles; the map draws a graticule, so trucks show with no
	// internet. The page's Content-Security-Policy allows images from
	// this origin only.
	TileURL string `json:"tile_url,omitempty"`
	// TileAttribution is shown in the map corner when tiles are used.
	TileAttribution string `json:"tile_attribution,omitempty"`
	// History is how far back each truck's charts reach (kept in memory).
	History time.Duration `json:"history,omitempty"`
	// HistoryStep is the chart resolution of the kept history: one point
	// per step holding the highest temperatures and the last speed.
	HistoryStep time.Duration `json:"history_step,omitempty"`
	// ReadTimeout bounds reading one request, headers and body, so a
	// half-sent request cannot hold a connection (default 15s);
	// WriteTimeout bounds writing one answer (default 30s); IdleTimeout
	// closes a keep-alive connection idle this long (default 2m). The
	// live event stream is exempt from the first two and instead bounds
	// each event by EventWriteTimeout (default 10s): a page that does not
	// take its events in time is disconnected (it reconnects).
	ReadTimeout       time.Duration `json:"read_timeout,omitempty"`
	WriteTimeout      time.Duration `json:"write_timeout,omitempty"`
	IdleTimeout       time.Duration `json:"idle_timeout,omitempty"`
	EventWriteTimeout time.Duration `json:"event_write_timeout,omitempty"`
}

// Defaults.
const (
	DefaultHistory     = 6 * time.Hour
	DefaultHistoryStep = 20 * time.Second

	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultEventWriteTimeout = 10 * time.Second
	// UsersFileName is the users file in the data directory by default.
	UsersFileName = "users.json"
)

func (c *Config) setDefaults() {
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.HistoryStep == 0 {
		c.HistoryStep = DefaultHistoryStep
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&c.ReadTimeout, DefaultReadTimeout}, {&c.WriteTimeout, DefaultWriteTimeout}, {&c.IdleTimeout, DefaultIdleTimeout}, {&c.EventWriteTimeout, DefaultEventWriteTimeout}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
}

// Validate reports the first problem with c (after defaults where zero),
// naming the field. It does no I/O.
func (c Config) Validate() error {
	if len(c.Users) > 0 {
		if err := auth.ValidateUsers(c.Users); err != nil {
			return fmt.Errorf("users: %w", err)
		}
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if c.TileURL != "" {
		u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(c.TileURL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			!strings.Contains(c.TileURL, "{z}") || !strings.Contains(c.TileURL, "{x}") || !strings.Contains(c.TileURL, "{y}") {
			return fmt.Errorf("tile_url %q: want an http(s) URL template with {z}, {x} and {y}", c.TileURL)
		}
	}
	switch {
	case c.History < 0 || c.HistoryStep < 0:
		return fmt.Errorf("history and history_step must not be negative")
	case c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.EventWriteTimeout < 0:
		return fmt.Errorf("read_timeout, write_timeout, idle_timeout and event_write_timeout must not be negative")
	case c.History > 0 && c.HistoryStep > 0 && c.History/c.HistoryStep > 100000:
		return fmt.Errorf("history/history_step: at most 100000 points per truck, got %d", c.History/c.HistoryStep)
	}
	return nil
}

// tileOrigin returns scheme://host of the tile URL, for the CSP.
func (c Config) tileOrigin() string {
	if c.TileURL == "" {
		return ""
	}
	u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(c.TileURL))
	if err != nil {
		return ""
	}
	if strings.Contains(c.TileURL, "{s}") {
		// Subdomains a, b, c: allow them all.
		return u.Scheme + "://" + strings.Replace(u.Host, "a.", "*.", 1)
	}
	return u.Scheme + "://" + u.Host
}
