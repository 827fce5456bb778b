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
//	tankguard-ca revoke -dir pki [-days 365] [-serial HEX] [truck-01.pem ...]
//	    crl.pem: the fleet CA's certificate revocation list, with the
//	    named certificates (files or hex serial numbers) added to the ones
//	    already revoked; with nothing named it is re-signed as it is (run
//	    it before -days runs out). The embedded broker (broker_tls.revoked_file)
//	    re-reads it within seconds; Mosquitto reads it as crlfile on restart
//	    or SIGHUP. Revoking cannot be undone here: issue a new certificate.
//
// The cloud's certificate carries the subject OU broker.CloudRole, which
// the broker requires of an admin; truck certificates carry broker.TruckRole.
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

	"github.com/abc4logistics/tankguard/cloud/broker"
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

const usage = "usage: tankguard-ca init|broker|cloud|truck|revoke -dir DIR [flags] [truck ids | certificate files]"

// help is what -h, --help and help print.
const help = `tankguard-ca creates a fleet certificate authority and issues the
certificates for mutual TLS between trucks and the cloud's broker.

` + usage + `

  tankguard-ca init   -dir pki [-name "tankguard fleet CA"] [-days 3650]   ca.pem, ca-key.pem
  tankguard-ca broker -dir pki [-host 127.0.0.1,broker.example.com]      broker.pem, broker-key.pem
  tankguard-ca cloud  -dir pki [-name tankguard-cloud]                   cloud.pem, cloud-key.pem
  tankguard-ca truck  -dir pki truck-01 [truck-02 ...]                   truck-01.pem, truck-01-key.pem, ...
  tankguard-ca revoke -dir pki [-serial HEX] [truck-01.pem ...]          crl.pem (the broker re-reads it)

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
	var name, hosts, serials *string
	switch cmd {
	case "init":
		name = fs.String("name", "tankguard fleet CA", "the CA's common name")
	case "broker":
		hosts = fs.String("host", "127.0.0.1,localhost", "comma-separated IP addresses and DNS names the broker is reached at")
	case "cloud":
		name = fs.String("name", "tankguard-cloud", "the cloud client's identity (CN)")
	case "truck":
	case "revoke":
		serials = fs.String("serial", "", "comma-separated hex serial numbers to revoke (as well as any certificate files named)")
	default:
		return fmt.Errorf("unknown command %q; %s", cmd, usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if cmd != "truck" && cmd != "revoke" && fs.NArg() > 0 {
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
	case "revoke":
		return revoke(stdout, *dir, *serials, fs.Args(), validity(365), ca, caKey)
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
		tmpl.Subject.OrganizationalUnit = []string{broker.CloudRole}
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
		if strings.EqualFold(id, "tankguard-cloud") {
			// Mosquitto and AWS IoT know the cloud by this CN alone.
			return fmt.Errorf("truck %q: reserved for the cloud's certificate (tankguard-ca cloud)", id)
		}
	}
	for _, id := range fs.Args() {
		tmpl := template(id, validity(825))
		tmpl.Subject.OrganizationalUnit = []string{broker.TruckRole}
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

// CRLFile is the revocation list revoke writes in the PKI directory.
const CRLFile = "crl.pem"

// revoke adds the certificates in files and the hex serials to dir's
// revocation list, signs it with the CA, valid for d, and writes it
// atomically (mode 0644: it is public).
func revoke(stdout io.Writer, dir, serials string, files []string, d time.Duration, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	path := filepath.Join(dir, CRLFile)
	list := &x509.RevocationList{Number: big.NewInt(1)}
	if b, err := os.ReadFile(path); err == nil {
		p, _ := pem.Decode(b)
		if p == nil || p.Type != "X509 CRL" {
			return fmt.Errorf("revoke: existing %s is not a PEM CRL", path)
		}
		old, err := x509.ParseRevocationList(p.Bytes)
		if err != nil {
			return fmt.Errorf("revoke: existing %s: %w", path, err)
		}
		if err := old.CheckSignatureFrom(ca); err != nil {
			return fmt.Errorf("revoke: existing %s is not signed by this fleet CA: %w", path, err)
		}
		list.RevokedCertificateEntries = old.RevokedCertificateEntries
		if old.Number != nil {
			list.Number = new(big.Int).Add(old.Number, big.NewInt(1))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("revoke: %w", err)
	}
	have := map[string]bool{}
	for _, e := range list.RevokedCertificateEntries {
		have[e.SerialNumber.Text(16)] = true
	}
	now := time.Now()
	add := func(sn *big.Int, what string) {
		if have[sn.Text(16)] {
			fmt.Fprintf(stdout, "already revoked: %s (serial %s)\n", what, sn.Text(16))
			return
		}
		have[sn.Text(16)] = true
		list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: now})
		fmt.Fprintf(stdout, "revoked %s (serial %s)\n", what, sn.Text(16))
	}
	for _, h := range strings.Split(serials, ",") {
		h = strings.TrimSpace(strings.ReplaceAll(h, ":", ""))
		if h == "" {
			continue
		}
		sn, ok := new(big.Int).SetString(h, 16)
		if !ok || sn.Sign() <= 0 {
			return fmt.Errorf("revoke: -serial %q: want a positive hex number", h)
		}
		add(sn, "serial "+h)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		p, _ := pem.Decode(b)
		if p == nil || p.Type != "CERTIFICATE" {
			return fmt.Errorf("revoke: %s: not a PEM certificate", f)
		}
		c, err := x509.ParseCertificate(p.Bytes)
		if err != nil {
			return fmt.Errorf("revoke: %s: %w", f, err)
		}
		if c.CheckSignatureFrom(ca) != nil {
			return fmt.Errorf("revoke: %s: not issued by this fleet CA", f)
		}
		add(c.SerialNumber, fmt.Sprintf("%s (CN %s)", f, c.Subject.CommonName))
	}
	list.ThisUpdate, list.NextUpdate = now.Add(-time.Hour), now.Add(d)
	der, err := x509.CreateRevocationList(rand.Reader, list, ca, caKey)
	if err != nil {
		return fmt.Errorf("revoke: sign: %w (a CA made before revocation existed lacks the CRL-signing usage: see SECURITY.md)", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d revoked, valid until %s)\n", path, len(list.RevokedCertificateEntries), list.NextUpdate.UTC().Format(time.DateOnly))
	return nil
}
