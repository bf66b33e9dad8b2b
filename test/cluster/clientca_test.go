package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// TestWebhookClientFiles: the kubeconfig kube-apiserver reads gives every
// webhook ("*") a client certificate that verifies against the CA file for
// client auth, named WebhookClientName; the AdmissionConfiguration points
// both webhook plugins at it.
func TestWebhookClientFiles(t *testing.T) {
	dir := t.TempDir()
	ca, caFile, admission, err := writeWebhookClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := os.ReadFile(admission)
	if err != nil {
		t.Fatal(err)
	}
	kcPath := dir + "/webhook-client.kubeconfig"
	for _, want := range []string{"name: ValidatingAdmissionWebhook", "name: MutatingAdmissionWebhook", "kind: WebhookAdmissionConfiguration", `kubeConfigFile: "` + kcPath + `"`} {
		if !strings.Contains(string(adm), want) {
			t.Errorf("the AdmissionConfiguration lacks %s:\n%s", want, adm)
		}
	}
	kc, err := clientcmd.LoadFromFile(kcPath)
	if err != nil {
		t.Fatal(err)
	}
	user := kc.AuthInfos["*"]
	if user == nil {
		t.Fatalf("no user \"*\" in %v", kc.AuthInfos)
	}
	block, _ := pem.Decode(user.ClientCertificateData)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the client certificate does not verify against the CA file: %v", err)
	}
	if cert.Subject.CommonName != WebhookClientName || string(caPEM) != string(ca.PEM()) {
		t.Errorf("common name %q", cert.Subject.CommonName)
	}
	// Another CA's certificates do not verify against this one.
	other, err := NewClientCA("other")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := other.Issue(WebhookClientName)
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode(c)
	foreign, _ := x509.ParseCertificate(block.Bytes)
	if _, err := foreign.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("another CA's certificate verifies")
	}
}
