package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WebhookClientName is the common name of the client certificate
// kube-apiserver presents to admission webhooks when
// Options.WebhookClientCert is set: what `tollgate serve --client-name`
// allows.
const WebhookClientName = "kube-apiserver"

// ClientCA is a CA that issues TLS client certificates: the one whose
// certificate kube-apiserver presents to webhooks, or another one a test
// makes to show a foreign certificate is refused.
type ClientCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial atomic.Int64
}

// NewClientCA makes a CA valid for a day.
func NewClientCA(commonName string) (*ClientCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("client CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &ClientCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca, nil
}

// PEM is the CA certificate, PEM-encoded: the content of a client CA file.
func (ca *ClientCA) PEM() []byte { return ca.pem }

// Issue makes a client certificate (with the client-auth extended key
// usage) for commonName, valid for a day, and returns it with its key,
// both PEM-encoded.
func (ca *ClientCA) Issue(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("client key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)), Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// TLSCertificate is Issue as a certificate an HTTP client presents.
func (ca *ClientCA) TLSCertificate(commonName string) (tls.Certificate, error) {
	c, k, err := ca.Issue(commonName)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// admissionConfig is kube-apiserver's AdmissionConfiguration giving both
// webhook admission plugins the kubeconfig of their client certificate.
const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]q
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]q
`

// writeWebhookClient makes the client CA and kube-apiserver's certificate
// in dir, and the kubeconfig and AdmissionConfiguration that make
// kube-apiserver present it to every webhook (the user "*" matches any
// webhook host, whatever port a test server picks). It returns the CA and
// the AdmissionConfiguration's path.
func writeWebhookClient(dir string) (*ClientCA, string, string, error) {
	ca, err := NewClientCA("tollgate-test-webhook-client-ca")
	if err != nil {
		return nil, "", "", err
	}
	certPEM, keyPEM, err := ca.Issue(WebhookClientName)
	if err != nil {
		return nil, "", "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.AuthInfos["*"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	kcData, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, "", "", fmt.Errorf("encoding the webhook client kubeconfig: %w", err)
	}
	caPath := filepath.Join(dir, "webhook-client-ca.crt")
	kcPath := filepath.Join(dir, "webhook-client.kubeconfig")
	admPath := filepath.Join(dir, "admission-config.yaml")
	for path, data := range map[string][]byte{
		caPath:  ca.PEM(),
		kcPath:  kcData,
		admPath: fmt.Appendf(nil, admissionConfig, kcPath),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, "", "", fmt.Errorf("writing the webhook client files: %w", err)
		}
	}
	return ca, caPath, admPath, nil
}
