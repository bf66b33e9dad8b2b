package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// backdate is subtracted from NotBefore so that a certificate is already
// valid on API servers whose clocks run slightly behind ours.
const backdate = 5 * time.Minute

// newCA returns a self-signed ECDSA P-256 CA certificate and its key, PEM.
func newCA(now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return create(&x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("tollgate-webhook-ca@%d", now.Unix())},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil, now, validity)
}

// issue returns an ECDSA P-256 serving certificate for the given names
// signed by ca, and its key, PEM. It never outlives the CA.
func issue(ca *x509.Certificate, caKey crypto.Signer, dnsNames []string, ips []net.IP, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	cn := "tollgate-webhook"
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	return create(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, ca, caKey, now, validity)
}

// create completes tmpl with a fresh key, serial number and validity, and
// signs it with parentKey, or self-signs it when parent is nil.
func create(tmpl, parent *x509.Certificate, parentKey crypto.Signer, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, fmt.Errorf("generating serial number: %w", err)
	}
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-backdate), now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	} else if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// parseCerts decodes every CERTIFICATE block in data. Blocks that do not
// parse are reported in the error but do not stop the others.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	var errs []error
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			if len(bytes.TrimSpace(data)) > 0 {
				errs = append(errs, errors.New("trailing data is not PEM"))
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			errs = append(errs, fmt.Errorf("unexpected PEM block %q", block.Type))
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		certs = append(certs, c)
	}
	return certs, errors.Join(errs...)
}

// parseCA decodes a CA certificate and the private key that belongs to it.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	certs, err := parseCerts(certPEM)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("parsing %s: %w", CACertKey, err)
	case len(certs) != 1:
		return nil, nil, fmt.Errorf("%s holds %d certificates, want 1", CACertKey, len(certs))
	}
	ca := certs[0]
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", CACertKey)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, nil, fmt.Errorf("%s is not PEM", CAKeyKey)
	}
	var key any
	key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		key, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", CAKeyKey, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s holds an unsupported key type %T", CAKeyKey, key)
	}
	pub, ok := ca.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return nil, nil, fmt.Errorf("%s does not match %s", CAKeyKey, CACertKey)
	}
	return ca, signer, nil
}

// encodeCerts PEM-encodes certs in order.
func encodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// renewalDue reports whether less than fraction of c's validity remains.
func renewalDue(c *x509.Certificate, now time.Time, fraction float64) bool {
	// The validity counts from issue time, not from the backdated NotBefore:
	// with short-lived certificates the backdate would otherwise swamp it.
	lifetime := c.NotAfter.Sub(c.NotBefore) - backdate
	if lifetime <= 0 {
		lifetime = c.NotAfter.Sub(c.NotBefore)
	}
	window := time.Duration(float64(lifetime) * fraction)
	return !now.Before(c.NotAfter.Add(-window))
}

// sameSANs reports whether c names exactly dnsNames and ips, in any order.
func sameSANs(c *x509.Certificate, dnsNames []string, ips []net.IP) bool {
	sans := func(dnsNames []string, ips []net.IP) []string {
		var out []string
		for _, n := range dnsNames {
			out = append(out, "dns:"+strings.ToLower(n))
		}
		for _, ip := range ips {
			out = append(out, "ip:"+ip.String())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(sans(c.DNSNames, c.IPAddresses), sans(dnsNames, ips))
}
