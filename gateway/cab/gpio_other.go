//go:build !linux

package cab

import (
	"errors"
	"fmt"
)

// openLine fails: the GPIO character device exists only on Linux.
func openLine(c GPIOConfig) (line, error) {
	return nil, fmt.Errorf("request gpio %s line %d: %w", c.Chip, c.Line, errors.ErrUnsupported)
}
