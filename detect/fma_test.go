package detect

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestNoFusedMultiplyAdd compiles this package for the architectures that
// may fuse a*b+c into one instruction (the gateway runs on arm64) and fails
// if the compiler did so anywhere: a fused result can differ in the last
// bit, and the gateway and the cloud must decide identically.
func TestNoFusedMultiplyAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package for other architectures")
	}
	fused := regexp.MustCompile(`\b(FN?M(ADD|SUB)[DS]?|VFN?M(ADD|SUB)\w*)\b`)
	for _, env := range [][]string{{"GOARCH=arm64"}, {"GOARCH=amd64", "GOAMD64=v3"}} {
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", os.DevNull, "-gcflags=-S", ".")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
		if m := fused.FindAll(out, 5); m != nil {
			t.Errorf("%v: fused multiply-add in detect: %q", env, m)
		}
	}
}
