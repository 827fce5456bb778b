//go:build linux

package cab

import (
	"fmt"

	"github.com/warthog618/go-gpiocdev"
)

// openLine requests the configured GPIO line as an output, initially off.
func openLine(c GPIOConfig) (line, error) {
	opts := []gpiocdev.LineReqOption{gpiocdev.WithConsumer("tankguard-cab"), gpiocdev.AsOutput(0)}
	if c.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	l, err := gpiocdev.RequestLine(c.Chip, c.Line, opts...)
	if err != nil {
		return nil, fmt.Errorf("request gpio %s line %d: %w", c.Chip, c.Line, err)
	}
	return l, nil
}
