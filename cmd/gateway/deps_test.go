package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are import path prefixes the gateway binary must never
// link: they belong to the cloud, and would bloat the truck's binary
// (the AWS SDK alone is several MB) or pull in servers it must not run.
var forbiddenDeps = []string{
	"github.com/aws/",
	"github.com/parquet-go/",
	"github.com/chromedp/",
	"github.com/mochi-mqtt/",
	"github.com/goreleaser/",
	"github.com/abc4logistics/tankguard/cloud",
	"github.com/abc4logistics/tankguard/firmware-sim",
	"golang.org/x/crypto/bcrypt",
}

// allowedModules are the modules the gateway binary links today (in the
// spirit of tailscale's depaware.txt): a change that adds a module fails
// here, so the new module shows up in review and is added on purpose.
var allowedModules = []string{
	"github.com/abc4logistics/tankguard",
	"github.com/adrianmo/go-nmea",
	"github.com/beorn7/perks",
	"github.com/cespare/xxhash/v2",
	"github.com/eclipse/paho.mqtt.golang",
	"github.com/gorilla/websocket",
	"github.com/klauspost/compress",
	"github.com/munnerz/goautoneg",
	"github.com/prometheus/client_golang",
	"github.com/prometheus/client_model",
	"github.com/prometheus/common",
	"github.com/prometheus/procfs",
	"github.com/tarm/serial",
	"github.com/warthog618/go-gpiocdev",
	"go.einride.tech/can",
	"go.etcd.io/bbolt",
	"golang.org/x/net",
	"golang.org/x/sync",
	"golang.org/x/sys",
	"google.golang.org/protobuf",
}

// TestGatewayDependencies lists what the gateway binary links, for the
// truck's platforms, and fails on a cloud-only package or a module not in
// allowedModules.
func TestGatewayDependencies(t *testing.T) {
	for _, arch := range []string{"arm64", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .Module}}{{.Module.Path}}{{end}}", ".")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			pkgs, mods := parseDeps(string(out))
			if len(pkgs) < 50 {
				t.Fatalf("go list -deps listed only %d packages; parsing broke", len(pkgs))
			}
			if bad := forbiddenIn(pkgs); len(bad) > 0 {
				t.Errorf("gateway links cloud-only packages (keep them out of gateway/sensors/detect/buffer/uplink):\n  %s", strings.Join(bad, "\n  "))
			}
			for _, m := range mods {
				if !slices.Contains(allowedModules, m) {
					t.Errorf("gateway links module %s, not in allowedModules: add it there on purpose if the truck needs it", m)
				}
			}
		})
	}
}

// parseDeps splits `go list -deps` lines "importpath module" into the
// import paths and the sorted, distinct module paths.
func parseDeps(out string) (pkgs, mods []string) {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs = append(pkgs, f[0])
		if len(f) > 1 && !slices.Contains(mods, f[1]) {
			mods = append(mods, f[1])
		}
	}
	slices.Sort(mods)
	return pkgs, mods
}

// forbiddenIn returns the packages of pkgs under a forbiddenDeps prefix.
func forbiddenIn(pkgs []string) []string {
	var bad []string
	for _, p := range pkgs {
		for _, f := range forbiddenDeps {
			if p == f || strings.HasPrefix(p, f) && (strings.HasSuffix(f, "/") || p[len(f)] == '/') {
				bad = append(bad, p)
			}
		}
	}
	return bad
}

// TestForbiddenInCatchesCloudPackages checks the guard itself on a made-up
// list, so a typo in a prefix cannot make the real check pass vacuously.
func TestForbiddenInCatchesCloudPackages(t *testing.T) {
	pkgs := []string{
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/parquet-go/parquet-go",
		"github.com/abc4logistics/tankguard/cloud/archive",
		"github.com/abc4logistics/tankguard/cloudish", // not the cloud package
		"github.com/abc4logistics/tankguard/uplink",
		"github.com/mochi-mqtt/server/v2",
	}
	got := forbiddenIn(pkgs)
	want := []string{pkgs[0], pkgs[1], pkgs[2], pkgs[5]}
	if !slices.Equal(got, want) {
		t.Fatalf("forbiddenIn = %q, want %q", got, want)
	}
}
