// Package disktest gives tests a small real filesystem to fill up. It is a
// test helper only: no production code imports it.
package disktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Small mounts a tmpfs of the given size (mount's size= syntax, e.g.
// "8m") in a temporary directory for the test, unmounted when it ends,
// and returns its path. It skips the test when it cannot mount one (not
// root, or no mount permission here).
func Small(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}
