package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLSConfig builds the client TLS configuration for mutual TLS in the AWS
// IoT Core style: the gateway's certificate and key (PEM), and the CA
// certificates (PEM) that sign the broker's certificate. caPEM may be nil
// to use the system roots; serverName may be "" to use the broker URL's
// host. It does no I/O: cmd/ reads the files.
func TLSConfig(certPEM, keyPEM, caPEM []byte, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("uplink tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("uplink tls: no CA certificate found in the CA PEM")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
