package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/blakesmith/ar"

	"github.com/abc4logistics/tankguard/cloud"
)

// Installing the packages under systemd needs a container or chroot with
// systemd as PID 1, which this machine cannot run. Instead these tests
// read every package back (ar + tar, as dpkg does), check its control
// data, files, modes and conffiles, cross-check with dpkg-deb when it is
// installed, and run the maintainer scripts against a sandbox root with
// the system commands they call replaced by recorders.

// tinyBinary builds a small static Go program for arch (Debian name) and
// returns its path; the packages only need a real ELF of that machine.
func tinyBinary(t *testing.T, arch string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"tiny\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goarch := map[string]string{"amd64": "amd64", "arm64": "arm64", "armhf": "arm"}[arch]
	bin := filepath.Join(dir, "tiny-"+arch)
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM=7", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tiny %s: %v\n%s", arch, err, out)
	}
	return bin
}

// debFile is one entry of a package's data or control archive.
type debFile struct {
	mode        int64
	owner, grp  string
	typ         byte
	content     []byte
	linkTarget  string
	controlPart bool
}

// readDeb reads a .deb as dpkg does: an ar archive with debian-binary,
// control.tar.gz and data.tar.gz.
func readDeb(t *testing.T, path string) (control, data map[string]debFile) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := ar.NewReader(f)
	var members []string
	control, data = map[string]debFile{}, map[string]debFile{}
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("ar: %v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		members = append(members, name)
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "debian-binary":
			if string(b) != "2.0\n" {
				t.Errorf("debian-binary = %q", b)
			}
		case "control.tar.gz":
			readTarGz(t, b, control)
		case "data.tar.gz":
			readTarGz(t, b, data)
		default:
			t.Errorf("unexpected ar member %q", name)
		}
	}
	if want := []string{"debian-binary", "control.tar.gz", "data.tar.gz"}; !slices.Equal(members, want) {
		t.Errorf("ar members %v, want %v (dpkg needs this order)", members, want)
	}
	return control, data
}

func readTarGz(t *testing.T, b []byte, into map[string]debFile) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		into[strings.TrimPrefix(h.Name, "./")] = debFile{mode: h.Mode & 0o7777, owner: h.Uname, grp: h.Gname, typ: h.Typeflag, content: c, linkTarget: h.Linkname}
	}
}

// controlFields parses a Debian control file's simple fields.
func controlFields(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestPackages(t *testing.T) {
	bins := map[string]string{}
	for _, a := range []string{"amd64", "arm64", "armhf"} {
		bins[a] = tinyBinary(t, a)
	}
	out := t.TempDir()
	for _, pkg := range []string{"gateway", "cloud"} {
		sp := specs[pkg]
		for _, arch := range sp.archs {
			t.Run(pkg+"_"+arch, func(t *testing.T) {
				path, err := build(pkg, arch, bins[arch], "1.2.3", out)
				if err != nil {
					t.Fatal(err)
				}
				if want := sp.name + "_1.2.3_" + arch + ".deb"; filepath.Base(path) != want {
					t.Errorf("file name %s, want %s", filepath.Base(path), want)
				}
				control, data := readDeb(t, path)
				checkControl(t, sp, arch, control)
				checkData(t, pkg, sp, bins[arch], data)
				dpkgDeb(t, path, sp, arch)
			})
		}
	}
}

func checkControl(t *testing.T, sp spec, arch string, control map[string]debFile) {
	t.Helper()
	fields := controlFields(control["control"].content)
	for k, want := range map[string]string{"Package": sp.name, "Version": "1.2.3", "Architecture": arch, "Depends": "passwd"} {
		if fields[k] != want {
			t.Errorf("control %s = %q, want %q", k, fields[k], want)
		}
	}
	if got, want := strings.TrimSpace(string(control["conffiles"].content)), "/etc/tankguard/"+sp.config; got != want {
		t.Errorf("conffiles = %q, want %q", got, want)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		f, ok := control[s]
		if !ok {
			t.Errorf("no %s script", s)
			continue
		}
		if f.mode&0o111 == 0 {
			t.Errorf("%s mode %o is not executable", s, f.mode)
		}
		if !bytes.HasPrefix(f.content, []byte("#!/bin/sh\n")) {
			t.Errorf("%s does not start with #!/bin/sh", s)
		}
		if !strings.Contains(string(f.content), sp.name) {
			t.Errorf("%s does not name %s", s, sp.name)
		}
	}
}

func checkData(t *testing.T, pkg string, sp spec, bin string, data map[string]debFile) {
	t.Helper()
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		mode  int64
		check func(t *testing.T, content []byte)
	}{
		{"usr/bin/" + sp.name, 0o755, func(t *testing.T, c []byte) {
			if !bytes.Equal(c, want) {
				t.Error("packaged binary differs from -bin")
			}
		}},
		{"lib/systemd/system/" + sp.name + ".service", 0o644, func(t *testing.T, c []byte) {
			for _, line := range []string{
				"User=tankguard", "ExecStart=/usr/bin/" + sp.name + " -config /etc/tankguard/" + sp.config,
				"StateDirectory=tankguard/" + pkg, "Restart=always", "WantedBy=multi-user.target",
			} {
				if !strings.Contains(string(c), line) {
					t.Errorf("unit lacks %q", line)
				}
			}
		}},
		{"etc/tankguard/" + sp.config, 0o640, func(t *testing.T, c []byte) { checkConfig(t, pkg, c) }},
	}
	for _, tc := range tests {
		f, ok := data[tc.path]
		if !ok {
			t.Errorf("%s missing from the package", tc.path)
			continue
		}
		if f.mode != tc.mode || f.owner != "root" || f.grp != "root" {
			t.Errorf("%s: mode %o owner %s:%s, want %o root:root", tc.path, f.mode, f.owner, f.grp, tc.mode)
		}
		tc.check(t, f.content)
	}
	for p, f := range data {
		if f.typ == tar.TypeReg && !slices.ContainsFunc(tests, func(tc struct {
			path  string
			mode  int64
			check func(t *testing.T, content []byte)
		}) bool {
			return tc.path == p
		}) {
			t.Errorf("unexpected file %s in the package", p)
		}
	}
}

// checkConfig makes sure the shipped default configuration is one the
// program accepts.
func checkConfig(t *testing.T, pkg string, b []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch pkg {
	case "cloud":
		var cfg cloud.Config
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("cloud.json: %v", err)
		}
		if _, err := cloud.New(cfg, nil); err != nil {
			t.Errorf("cloud.json rejected: %v", err)
		}
		if cfg.DataDir != "/var/lib/tankguard/cloud" {
			t.Errorf("cloud data_dir %q", cfg.DataDir)
		}
	case "gateway":
		// The keys of cmd/gateway's fileConfig.
		var cfg struct {
			Truck   string   `json:"truck"`
			DataDir string   `json:"data_dir"`
			CAN     []string `json:"can"`
			Serial  []string `json:"serial"`
			Broker  string   `json:"broker"`
			Cab     string   `json:"cab_listen"`
		}
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("gateway.json: %v", err)
		}
		if cfg.DataDir != "/var/lib/tankguard/gateway" || len(cfg.CAN) == 0 {
			t.Errorf("gateway.json %+v: want data under /var/lib/tankguard/gateway and a CAN bus", cfg)
		}
	}
}

// dpkgDeb cross-checks the package with Debian's own tool.
func dpkgDeb(t *testing.T, path string, sp spec, arch string) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dpkg-deb not installed")
		}
		t.Log("dpkg-deb not installed; skipping the cross-check")
		return
	}
	out, err := exec.Command("dpkg-deb", "--field", path, "Package", "Architecture").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --field: %v\n%s", err, out)
	}
	if want := "Package: " + sp.name + "\nArchitecture: " + arch + "\n"; string(out) != want {
		t.Errorf("dpkg-deb --field = %q, want %q", out, want)
	}
	out, err = exec.Command("dpkg-deb", "--contents", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "./usr/bin/"+sp.name) {
		t.Errorf("dpkg-deb --contents lacks the binary:\n%s", out)
	}
}

func TestBuildRejects(t *testing.T) {
	arm := tinyBinary(t, "arm64")
	tests := []struct {
		name, pkg, arch, bin, want string
	}{
		{"unknown package", "console", "amd64", arm, "want gateway or cloud"},
		{"cloud is not built for armhf", "cloud", "armhf", arm, "is built for [amd64 arm64]"},
		{"binary of another architecture", "gateway", "amd64", arm, "not amd64"},
		{"no binary", "gateway", "arm64", "", "-bin is required"},
		{"not an ELF file", "gateway", "arm64", "debpkg_test.go", "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.pkg, tc.arch, tc.bin, "1.0.0", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The maintainer scripts run against a sandbox: their absolute paths are
// moved under a temporary root, and the commands that change the system
// (getent, groupadd, useradd, usermod, install, chown, chmod, systemctl)
// are recorders that log their arguments.

const recorder = `#!/bin/sh
echo "$(basename "$0") $*" >> "$SANDBOX_LOG"
if [ "$(basename "$0")" = getent ]; then
	for m in $GETENT_MISSING; do
		[ "$m" = "$2" ] && exit 2
	done
fi
exit 0
`

type scriptRun struct {
	calls  []string
	stderr string
	root   string
}

func runScript(t *testing.T, pkg, script string, args []string, missing string, configTruck string, systemd bool) scriptRun {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("runs /bin/sh scripts")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "shim")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "recorder"), []byte(recorder), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"getent", "groupadd", "useradd", "usermod", "install", "chown", "chmod", "systemctl"} {
		if err := os.Symlink("recorder", filepath.Join(bin, c)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc/tankguard", "var/lib/tankguard/" + pkg} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if systemd {
		if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := embedded.ReadFile("files/" + pkg + "/" + specs[pkg].config)
	if err != nil {
		t.Fatal(err)
	}
	if configTruck != "" {
		cfg = bytes.Replace(cfg, []byte(`"truck": ""`), []byte(`"truck": "`+configTruck+`"`), 1)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/tankguard", specs[pkg].config), cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	src, err := embedded.ReadFile("files/" + pkg + "/" + script)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, p := range []string{"/run/systemd/system", "/etc/tankguard", "/var/lib/tankguard"} {
		s = strings.ReplaceAll(s, p, root+p)
	}
	path := filepath.Join(root, script)
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(root, "calls.log")
	cmd := exec.Command("/bin/sh", append([]string{"-e", path}, args...)...)
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SANDBOX_LOG=" + log, "GETENT_MISSING=" + missing}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("%s %s %v: %v\n%s%s", pkg, script, args, err, out, stderr.String())
	}
	b, _ := os.ReadFile(log)
	var calls []string
	for line := range strings.Lines(string(b)) {
		calls = append(calls, strings.ReplaceAll(strings.TrimSpace(line), root, ""))
	}
	return scriptRun{calls: calls, stderr: stderr.String(), root: root}
}

func TestMaintainerScripts(t *testing.T) {
	has := func(calls []string, prefix string) bool {
		return slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
	}
	tests := []struct {
		name, pkg, script string
		args              []string
		missing, truck    string
		systemd           bool
		want, notWant     []string
		check             func(t *testing.T, r scriptRun)
	}{
		{
			name: "gateway first install, no truck configured", pkg: "gateway", script: "postinst", args: []string{"configure"},
			missing: "tankguard", systemd: true,
			want: []string{"groupadd --system tankguard", "useradd --system --gid tankguard", "usermod --append --groups dialout tankguard",
				"install -d -o tankguard -g tankguard -m 0750 /var/lib/tankguard /var/lib/tankguard/gateway",
				"chown root:tankguard /etc/tankguard/gateway.json", "systemctl daemon-reload", "systemctl enable tankguard-gateway.service"},
			notWant: []string{"systemctl restart"},
			check: func(t *testing.T, r scriptRun) {
				if !strings.Contains(r.stderr, `set "truck"`) {
					t.Errorf("no hint to configure the truck; stderr %q", r.stderr)
				}
			},
		},
		{
			name: "gateway reinstall, user exists, truck configured", pkg: "gateway", script: "postinst", args: []string{"configure", "0.1.0"},
			truck: "truck-17", systemd: true,
			want:    []string{"systemctl enable tankguard-gateway.service", "systemctl restart tankguard-gateway.service"},
			notWant: []string{"groupadd", "useradd"},
		},
		{
			name: "gateway without systemd running, as in a chroot", pkg: "gateway", script: "postinst", args: []string{"configure"},
			missing: "tankguard", truck: "truck-17",
			want:    []string{"useradd --system", "install -d"},
			notWant: []string{"systemctl"},
		},
		{
			name: "gateway postinst abort-upgrade does nothing", pkg: "gateway", script: "postinst", args: []string{"abort-upgrade", "0.2.0"},
			systemd: true, notWant: []string{"useradd", "systemctl", "install"},
		},
		{
			name: "cloud first install starts the service", pkg: "cloud", script: "postinst", args: []string{"configure"},
			missing: "tankguard", systemd: true,
			want:    []string{"useradd --system --gid tankguard", "install -d -o tankguard -g tankguard -m 0750 /var/lib/tankguard /var/lib/tankguard/cloud", "systemctl restart tankguard-cloud.service"},
			notWant: []string{"usermod"},
		},
		{
			name: "gateway remove stops and disables", pkg: "gateway", script: "prerm", args: []string{"remove"}, systemd: true,
			want: []string{"systemctl stop tankguard-gateway.service", "systemctl disable tankguard-gateway.service"},
		},
		{
			name: "cloud upgrade stops but keeps it enabled", pkg: "cloud", script: "prerm", args: []string{"upgrade", "0.2.0"}, systemd: true,
			want: []string{"systemctl stop tankguard-cloud.service"}, notWant: []string{"systemctl disable"},
		},
		{
			name: "gateway remove keeps the queue", pkg: "gateway", script: "postrm", args: []string{"remove"}, systemd: true,
			check: func(t *testing.T, r scriptRun) {
				if _, err := os.Stat(filepath.Join(r.root, "var/lib/tankguard/gateway")); err != nil {
					t.Errorf("remove deleted the data: %v", err)
				}
			},
		},
		{
			name: "cloud purge deletes its data, not the user", pkg: "cloud", script: "postrm", args: []string{"purge"}, systemd: true,
			notWant: []string{"userdel", "groupdel"},
			check: func(t *testing.T, r scriptRun) {
				if _, err := os.Stat(filepath.Join(r.root, "var/lib/tankguard/cloud")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("purge left the data: %v", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runScript(t, tc.pkg, tc.script, tc.args, tc.missing, tc.truck, tc.systemd)
			for _, w := range tc.want {
				if !has(r.calls, w) {
					t.Errorf("no call %q; calls:\n%s", w, strings.Join(r.calls, "\n"))
				}
			}
			for _, w := range tc.notWant {
				if has(r.calls, w) {
					t.Errorf("unexpected call %q; calls:\n%s", w, strings.Join(r.calls, "\n"))
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}
