package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/abc4logistics/tankguard/detect"
	"github.com/abc4logistics/tankguard/uplink"
)

// ConfigUpdate is the body of a config_update command from the cloud: the
// parts of the gateway's configuration that may change without a restart.
// Absent sections keep their current value.
type ConfigUpdate struct {
	// Detect is a detector configuration in detect.ParseConfig's format.
	Detect json.RawMessage `json:"detect,omitempty"`
}

// recentCommands is how many command ids are remembered to ignore a
// repeated delivery (MQTT QoS 1 may deliver a command twice).
const recentCommands = 64

// handleCommands applies downlink commands until ctx ends.
func (g *Gateway) handleCommands(ctx context.Context) error {
	var seen [recentCommands]string
	next := 0
	for {
		var c uplink.Command
		select {
		case <-ctx.Done():
			return nil
		case c = <-g.pub.Commands():
		}
		dup := false
		for _, id := range seen {
			if id != "" && id == c.ID {
				dup = true
			}
		}
		if dup {
			g.log.Debug("repeated command ignored", "id", c.ID)
			continue
		}
		seen[next] = c.ID
		next = (next + 1) % recentCommands
		if err := g.applyCommand(c); err != nil {
			g.cmdErrors.Add(1)
			g.log.Error("command rejected", "id", c.ID, "type", c.Type, "err", err)
		}
	}
}

func (g *Gateway) applyCommand(c uplink.Command) error {
	switch c.Type {
	case uplink.CommandAlertAck:
		a, err := c.DetectAck(g.cfg.Truck)
		if err != nil {
			return err
		}
		g.log.Info("operator acknowledged alert", "signal", a.Signal, "by", a.By, "severity", a.Severity)
		if g.cab != nil && !g.cab.RemoteAck(a) {
			g.log.Info("operator acknowledgement names no open alert", "signal", a.Signal, "start", a.Start)
		}
		return nil
	case uplink.CommandConfigUpdate:
		return g.applyConfig(c.Config)
	}
	return fmt.Errorf("command %s: unknown type %q", c.ID, c.Type)
}

// applyConfig reloads the parts of the configuration a ConfigUpdate
// carries. An invalid update changes nothing.
func (g *Gateway) applyConfig(raw json.RawMessage) error {
	var u ConfigUpdate
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return fmt.Errorf("config update: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("config update: trailing data after the JSON object")
	}
	if len(u.Detect) == 0 {
		return nil
	}
	cfg, err := detect.ParseConfig(u.Detect)
	if err != nil {
		return fmt.Errorf("config update: detect: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.det.SetConfig(cfg); err != nil {
		return fmt.Errorf("config update: detect: %w", err)
	}
	g.log.Info("detector configuration updated", "hash", fmt.Sprintf("%016x", cfg.Hash()))
	return nil
}
