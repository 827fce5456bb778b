// Command tankguard-ca creates a fleet certificate authority and issues the
// certificates for mutual TLS between trucks and the cloud's broker
// (ECDSA P-256, crypto/x509). Keys are written with mode 0600.
//
//	tankguard-ca init   -dir pki [-name "tankguard fleet CA"] [-days 3650]
//	    ca.pem, ca-key.pem
//	tankguard-ca broker -dir pki [-host 127.0.0.1,broker.example.com] [-days 825]
//	    broker.pem, broker-key.pem (server certificate for those hosts)
//	tankguard-ca cloud  -dir pki [-name tankguard-cloud] [-days 825]
//	    cloud.pem, cloud-key.pem (client certificate; list its name in
//	    the cloud's broker_tls.admins to allow it every topic)
//	tankguard-ca truck  -dir pki [-days 825] truck-01 [truck-02 ...]
//	    truck-01.pem, truck-01-key.pem, ... (client certificates: subject
//	    CN and DNS SAN are the truck id, which is the identity the broker
//	    enforces)
//
// The cloud uses ca.pem as broker_tls.client_ca_file; gateways use it as
// the CA that signs the broker's certificate.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abc4logistics/tankguard/uplink"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // the help was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "tankguard-ca:", err)
		os.Exit(1)
	}
}

const usage = "usage: tankguard-ca init|broker|cloud|truck -dir DIR [flags] [truck ids]"

// help is what -h, --help and help print.
const help = `tankguard-ca creates a fleet certificate authority and issues the
certificates for mutual TLS between trucks and the cloud's broker.

` + usage + `

  tankguard-ca init   -dir pki [-name "tankguard fleet CA"] [-days 3650]   ca.pem, ca-key.pem
  tankguard-ca broker -dir pki [-host 127.0.0.1,broker.example.com]      broker.pem, broker-key.pem
  tankguard-ca cloud  -dir pki [-name tankguard-cloud]                   cloud.pem, cloud-key.pem
  tankguard-ca truck  -dir pki truck-01 [truck-02 ...]                   truck-01.pem, truck-01-key.pem, ...

Run "tankguard-ca COMMAND -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, help)
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("tankguard-ca "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "pki", "directory holding ca.pem and ca-key.pem")
	days := fs.Int("days", 0, "validity in days (default 3650 for the CA, 825 otherwise)")
	var name, hosts *string
	switch cmd {
	case "init":
		name = fs.String("name", "tankguard fleet CA", "the CA's common name")
	case "broker":
		hosts = fs.String("host", "127.0.0.1,localhost", "comma-separated IP addresses and DNS names the broker is reached at")
	case "cloud":
		name = fs.String("name", "tankguard-cloud", "the cloud client's identity (CN)")
	case "truck":
	default:
		return fmt.Errorf("unknown command %q; %s", cmd, usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if cmd != "truck" && fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, fs.Args())
	}
	if *days < 0 {
		return fmt.Errorf("-days must be positive, got %d", *days)
	}
	validity := func(def int) time.Duration {
		if *days == 0 {
			return time.Duration(def) * 24 * time.Hour
		}
		return time.Duration(*days) * 24 * time.Hour
	}
	if cmd == "init" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(*dir, "ca-key.pem")); err == nil {
			return fmt.Errorf("init: %s already exists; refusing to replace the fleet CA", filepath.Join(*dir, "ca-key.pem"))
		}
		tmpl := template(*name, validity(3650))
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		if err := issue(*dir, "ca", tmpl, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*dir, "ca.pem"))
		return nil
	}
	ca, caKey, err := loadCA(*dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "broker":
		tmpl := template("tankguard broker", validity(825))
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range strings.Split(*hosts, ",") {
			h = strings.TrimSpace(h)
			switch ip := net.ParseIP(h); {
			case h == "":
			case ip != nil:
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			default:
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		if len(tmpl.IPAddresses)+len(tmpl.DNSNames) == 0 {
			return errors.New("broker: -host names no address")
		}
		return write(stdout, *dir, "broker", tmpl, ca, caKey)
	case "cloud":
		if *name == "" {
			return errors.New("cloud: -name is empty")
		}
		tmpl := template(*name, validity(825))
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		return write(stdout, *dir, "cloud", tmpl, ca, caKey)
	}
	if fs.NArg() == 0 {
		return errors.New("truck: name at least one truck id")
	}
	for _, id := range fs.Args() {
		if !uplink.ValidTruckID(id) {
			return fmt.Errorf("truck %q: a truck id is 1-64 letters, digits, '-' or '_'", id)
		}
	}
	for _, id := range fs.Args() {
		tmpl := template(id, validity(825))
		tmpl.DNSNames = []string{id}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if err := write(stdout, *dir, id, tmpl, ca, caKey); err != nil {
			return err
		}
	}
	return nil
}

func write(stdout io.Writer, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	if err := issue(dir, name, tmpl, ca, caKey); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, name+".pem"))
	return nil
}

// template returns a certificate template for cn valid from an hour ago
// (clock skew) for d, with a random 128-bit serial number.
func template(cn string, d time.Duration) *x509.Certificate {
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"tankguard"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(d),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

// issue makes a key, signs tmpl with caKey (self-signed when ca is nil)
// and writes dir/name.pem and dir/name-key.pem.
func issue(dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("%s: key: %w", name, err)
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return fmt.Errorf("%s: sign: %w", name, err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("%s: key: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA (run tankguard-ca init first): %w", err)
	}
	kb, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA key: %w", err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, fmt.Errorf("fleet CA in %s: not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("fleet CA key: not ECDSA")
	}
	return cert, key, nil
}
