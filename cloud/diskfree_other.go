//go:build !unix

package cloud

import "errors"

// diskFree is not implemented here: the disk always counts as having room.
func diskFree(string) (int64, error) {
	return 0, errors.New("free disk space unknown on this platform")
}
