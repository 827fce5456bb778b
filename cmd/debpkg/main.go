// Command debpkg builds tankguard's Debian packages with nfpm
// (github.com/goreleaser/nfpm/v2): tankguard-gateway for amd64, arm64 and
// armhf, tankguard-cloud for amd64 and arm64. It is a build tool, kept out
// of the gateway and cloud binaries.
//
//	debpkg -pkg gateway -arch arm64 -bin dist/gateway-linux-arm64 -version 0.1.0 -out dist
//
// Each package holds the static binary as /usr/bin/tankguard-<pkg>, a
// systemd unit, a default configuration under /etc/tankguard (a conffile:
// upgrades keep local edits) and maintainer scripts that create the
// dedicated system user tankguard and /var/lib/tankguard/<pkg>, enable the
// service and start it (the gateway only once a truck id is configured).
// The unit, configuration and scripts are embedded from files/.
// `make deb` builds every package into dist/.
package main

import (
	"debug/elf"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed files
var embedded embed.FS

// spec describes one package.
type spec struct {
	name        string   // package name, also the binary's and unit's name
	config      string   // default config file name in /etc/tankguard
	archs       []string // Debian architectures built
	description string
}

var specs = map[string]spec{
	"gateway": {
		name:   "tankguard-gateway",
		config: "gateway.json",
		archs:  []string{"amd64", "arm64", "armhf"},
		description: "tankguard truck gateway\n" +
			" Reads a fuel tanker's CAN (J1939) and NMEA sensors, detects temperature\n" +
			" excursions, alerts the driver on the in-cab display, and uplinks every\n" +
			" reading and alert over MQTT through a store-and-forward queue.",
	},
	"cloud": {
		name:   "tankguard-cloud",
		config: "cloud.json",
		archs:  []string{"amd64", "arm64"},
		description: "tankguard cloud\n" +
			" MQTT broker, ingest with de-duplication, re-detection, incidents and\n" +
			" notifications, archive (local or S3) and the fleet web console.",
	},
}

// elfMachine is the ELF machine a binary for each Debian architecture has.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}

// Version is the package version used when -version is not given.
const Version = "0.1.0"

func main() {
	pkg := flag.String("pkg", "", "package: gateway or cloud")
	arch := flag.String("arch", "", "Debian architecture: amd64, arm64 or armhf (gateway only)")
	bin := flag.String("bin", "", "the static binary to package, built for -arch")
	version := flag.String("version", Version, "package version")
	out := flag.String("out", "dist", "output directory")
	flag.Parse()
	path, err := build(*pkg, *arch, *bin, *version, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "debpkg:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build writes the package and returns its path.
func build(pkg, arch, bin, version, outDir string) (string, error) {
	sp, ok := specs[pkg]
	if !ok {
		return "", fmt.Errorf("-pkg %q: want gateway or cloud", pkg)
	}
	if !slices.Contains(sp.archs, arch) {
		return "", fmt.Errorf("-arch %q: %s is built for %v", arch, sp.name, sp.archs)
	}
	if err := checkELF(bin, arch); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "debpkg-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src, err := fs.Sub(embedded, "files/"+pkg)
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(tmp, src); err != nil {
		return "", fmt.Errorf("unpack embedded files: %w", err)
	}
	file := func(name string) string { return filepath.Join(tmp, name) }
	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Mode: m, Owner: "root", Group: "root"}
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        sp.name,
		Arch:        arch,
		Version:     version,
		Section:     "misc",
		Priority:    "optional",
		Maintainer:  "tankguard team <tankguard@abc4logistics.invalid>",
		Description: sp.description,
		Vendor:      "abc4logistics",
		Homepage:    "https://github.com/abc4logistics/tankguard",
		License:     "Proprietary",
		Overridables: nfpm.Overridables{
			Depends: []string{"passwd"}, // useradd, groupadd, usermod
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/" + sp.name, FileInfo: mode(0o755)},
				{Source: file(sp.name + ".service"), Destination: "/lib/systemd/system/" + sp.name + ".service", FileInfo: mode(0o644)},
				{Destination: "/etc/tankguard", Type: files.TypeDir, FileInfo: mode(0o755)},
				{Source: file(sp.config), Destination: "/etc/tankguard/" + sp.config, Type: files.TypeConfigNoReplace, FileInfo: mode(0o640)},
			},
			Scripts: nfpm.Scripts{
				PostInstall: file("postinst"),
				PreRemove:   file("prerm"),
				PostRemove:  file("postrm"),
			},
		},
	})
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(outDir, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("package %s %s: %w", sp.name, arch, err)
	}
	return path, f.Close()
}

// checkELF makes sure bin is a Linux executable for arch, so a package
// never carries another architecture's binary.
func checkELF(bin, arch string) error {
	if bin == "" {
		return errors.New("-bin is required")
	}
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("-bin %s: %w", bin, err)
	}
	defer f.Close()
	if want := elfMachine[arch]; f.Machine != want {
		return fmt.Errorf("-bin %s is built for %v, not %s (%v)", bin, f.Machine, arch, want)
	}
	return nil
}
