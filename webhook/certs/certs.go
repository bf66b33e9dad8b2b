// Package certs runs the self-managed certificate authority and serving
// certificate of Tollgate's admission webhook server, and rotates both.
//
// State lives in one Secret of type kubernetes.io/tls:
//
//	tls.crt      serving certificate (PEM), signed by the CA in ca-cert.crt
//	             or, for PublishGrace after a rotation, by a previous CA
//	tls.key      serving private key (PKCS#8 PEM)
//	ca.crt       CA bundle (PEM): the signing CA first, then previous CAs
//	             until they expire; this is what goes into every webhook's
//	             clientConfig.caBundle
//	ca-cert.crt  the signing CA certificate (PEM, exactly one)
//	ca.key       the signing CA private key (PKCS#8 PEM)
//
// and the annotation tollgate.dev/ca-published-at (RFC 3339) records when
// the bundle holding the signing CA was published to the webhook
// configurations.
//
// The leader calls [Rotator.Reconcile]; it keeps the CA and the serving
// certificate fresh, always in a safe order: a new CA is added to the bundle
// and published first, and serving certificates are issued from it only
// after PublishGrace, so the API server never sees a certificate it cannot
// verify. Every replica calls [Rotator.Sync] to copy the serving files into
// its CertDir, where controller-runtime's certwatcher picks them up.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the Secret, beyond corev1.TLSCertKey and corev1.TLSPrivateKeyKey.
const (
	// CABundleKey holds the PEM bundle of every CA clients should trust.
	CABundleKey = "ca.crt"
	// CACertKey holds the PEM certificate of the CA that signs new
	// serving certificates.
	CACertKey = "ca-cert.crt"
	// CAKeyKey holds the PEM private key of the signing CA.
	CAKeyKey = "ca.key"
	// PublishedAtAnnotation records, in RFC 3339, when the bundle holding
	// the signing CA was published to the webhook configurations.
	PublishedAtAnnotation = "tollgate.dev/ca-published-at"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultCAValidity   = 365 * 24 * time.Hour
	DefaultCertValidity = 90 * 24 * time.Hour
	DefaultRenewBefore  = 1.0 / 3
	DefaultPublishGrace = time.Minute
)

// ErrNoCertificate is returned by Sync when the Secret holds no usable
// serving certificate yet.
var ErrNoCertificate = errors.New("no usable serving certificate")

// Options configures a Rotator. Zero durations and fractions take the
// Default* values.
type Options struct {
	// Client reads and writes the Secret and the webhook configurations.
	Client client.Client
	// Namespace and SecretName locate the Secret holding the CA and the
	// serving certificate.
	Namespace  string
	SecretName string
	// DNSNames and IPAddresses are the serving certificate's SANs, for
	// example the Service name "tollgate-webhook.tollgate-system.svc", or
	// 127.0.0.1 for local development. At least one is required.
	DNSNames    []string
	IPAddresses []net.IP
	// CertDir is where this replica writes tls.crt, tls.key and ca.crt.
	CertDir string
	// CAValidity and CertValidity are the lifetimes of new CA and serving
	// certificates. CertValidity must not exceed CAValidity.
	CAValidity   time.Duration
	CertValidity time.Duration
	// RenewBefore is the fraction of a certificate's validity, in (0, 1),
	// that may remain before it is replaced.
	RenewBefore float64
	// PublishGrace is how long a new CA must have been published to the
	// webhook configurations before serving certificates are issued from it.
	PublishGrace time.Duration
	// MutatingWebhooks and ValidatingWebhooks name the
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration
	// objects whose every webhook's clientConfig.caBundle is kept current.
	MutatingWebhooks   []string
	ValidatingWebhooks []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives progress and problems; nil means slog.Default().
	Logger *slog.Logger
}

// OptionError reports an invalid Options field.
type OptionError struct {
	Field   string // for example "CertDir" or "DNSNames[1]"
	Problem string
}

// Error implements error.
func (e *OptionError) Error() string {
	return "invalid options: " + e.Field + " " + e.Problem
}

// Validate reports the first invalid field as an *OptionError.
func (o Options) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &OptionError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	ca, cert := orDefault(o.CAValidity, DefaultCAValidity), orDefault(o.CertValidity, DefaultCertValidity)
	switch {
	case o.Client == nil:
		return bad("Client", "is required")
	case o.Namespace == "":
		return bad("Namespace", "is required")
	case o.SecretName == "":
		return bad("SecretName", "is required")
	case len(o.DNSNames) == 0 && len(o.IPAddresses) == 0:
		return bad("DNSNames", "or IPAddresses must name at least one SAN")
	case o.CertDir == "":
		return bad("CertDir", "is required")
	case o.CAValidity < 0:
		return bad("CAValidity", "must not be negative (zero means the default), got %s", o.CAValidity)
	case o.CertValidity < 0:
		return bad("CertValidity", "must not be negative (zero means the default), got %s", o.CertValidity)
	case cert > ca:
		return bad("CertValidity", "(%s) must not exceed CAValidity (%s)", cert, ca)
	case o.RenewBefore < 0 || o.RenewBefore >= 1:
		return bad("RenewBefore", "must be a fraction in (0, 1), got %g", o.RenewBefore)
	case o.PublishGrace < 0:
		return bad("PublishGrace", "must not be negative, got %s", o.PublishGrace)
	}
	lists := []struct {
		field string
		names []string
	}{{"DNSNames", o.DNSNames}, {"MutatingWebhooks", o.MutatingWebhooks}, {"ValidatingWebhooks", o.ValidatingWebhooks}}
	for _, l := range lists {
		for i, n := range l.names {
			if n == "" {
				return bad(fmt.Sprintf("%s[%d]", l.field, i), "is empty")
			}
		}
	}
	return nil
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Rotator keeps the webhook CA and serving certificate current. It holds no
// mutable state, so its methods are safe for concurrent use.
type Rotator struct {
	opts Options
	log  *slog.Logger
}

// New validates opts, applies defaults and returns a Rotator.
func New(opts Options) (*Rotator, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	opts.CAValidity = orDefault(opts.CAValidity, DefaultCAValidity)
	opts.CertValidity = orDefault(opts.CertValidity, DefaultCertValidity)
	opts.RenewBefore = orDefault(opts.RenewBefore, DefaultRenewBefore)
	opts.PublishGrace = orDefault(opts.PublishGrace, DefaultPublishGrace)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("namespace", opts.Namespace, "secret", opts.SecretName)
	return &Rotator{opts: opts, log: log}, nil
}

// Reconcile brings the Secret and the webhook configurations to the
// desired state; it is the leader's job and is idempotent. It creates a CA
// when there is none or it is due for renewal, publishes the bundle, and
// issues a serving certificate when the current one is missing, broken,
// due, has the wrong SANs, or was signed by a previous CA that has now been
// superseded for PublishGrace. A conflicting concurrent write is returned
// as an error; the next call retries.
func (r *Rotator) Reconcile(ctx context.Context) error {
	return r.reconcile(ctx, false)
}

// RotateCA replaces the signing CA now, keeping the previous one in the
// bundle, and otherwise behaves like Reconcile: serving certificates move
// to the new CA only once it has been published for PublishGrace.
func (r *Rotator) RotateCA(ctx context.Context) error {
	return r.reconcile(ctx, true)
}

// CABundle returns the current PEM CA bundle, for writing new webhook
// configurations.
func (r *Rotator) CABundle(ctx context.Context) ([]byte, error) {
	sec, err := r.secret(ctx)
	if err != nil {
		return nil, err
	}
	if len(sec.Data[CABundleKey]) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no %s yet", r.opts.Namespace, r.opts.SecretName, CABundleKey)
	}
	return sec.Data[CABundleKey], nil
}

func (r *Rotator) secret(ctx context.Context) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	key := client.ObjectKey{Namespace: r.opts.Namespace, Name: r.opts.SecretName}
	if err := r.opts.Client.Get(ctx, key, sec); err != nil {
		return nil, fmt.Errorf("reading secret %s: %w", key, err)
	}
	return sec, nil
}

func (r *Rotator) reconcile(ctx context.Context, forceCA bool) error {
	now := r.opts.Now()
	sec, err := r.secret(ctx)
	create := apierrors.IsNotFound(err)
	switch {
	case create:
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: r.opts.Namespace, Name: r.opts.SecretName},
			Type:       corev1.SecretTypeTLS,
		}
	case err != nil:
		return err
	}
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	published, _ := time.Parse(time.RFC3339, sec.Annotations[PublishedAtAnnotation])

	// 1. The signing CA.
	var previous []*x509.Certificate
	ca, caKey, err := parseCA(data[CACertKey], data[CAKeyKey])
	reason := ""
	switch {
	case forceCA:
		reason = "rotation requested"
	case err != nil && len(data[CACertKey]) == 0:
		reason = "no CA yet"
	case err != nil:
		r.log.Warn("CA in secret is invalid", "problem", err)
		reason = "invalid CA"
	case renewalDue(ca, now, r.opts.RenewBefore):
		reason = "CA renewal due"
	}
	if reason != "" {
		if old, _ := parseCerts(data[CACertKey]); len(old) > 0 {
			previous = old
		}
		certPEM, keyPEM, err := newCA(now, r.opts.CAValidity)
		if err != nil {
			return fmt.Errorf("creating CA: %w", err)
		}
		if ca, caKey, err = parseCA(certPEM, keyPEM); err != nil {
			return fmt.Errorf("creating CA: %w", err)
		}
		data[CACertKey], data[CAKeyKey] = certPEM, keyPEM
		published = time.Time{}
		r.log.Info("created CA", "reason", reason, "subject", ca.Subject.CommonName, "notAfter", ca.NotAfter)
	}

	// 2. The bundle: signing CA first, then earlier CAs until they expire.
	bundle := r.bundle(ca, data[CABundleKey], previous, now)
	data[CABundleKey] = encodeCerts(bundle)
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}

	// 3. Publish before any certificate depends on it.
	if err := r.publish(ctx, data[CABundleKey]); err != nil {
		return err
	}
	if published.IsZero() {
		published = now
	}

	// 4. The serving certificate.
	if problem, broken := r.servingProblem(data, ca, roots, now); problem != "" {
		if broken || !now.Before(published.Add(r.opts.PublishGrace)) {
			certPEM, keyPEM, err := issue(ca, caKey, r.opts.DNSNames, r.opts.IPAddresses, now, r.opts.CertValidity)
			if err != nil {
				return fmt.Errorf("issuing serving certificate: %w", err)
			}
			data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey] = certPEM, keyPEM
			r.log.Info("issued serving certificate", "reason", problem, "ca", ca.Subject.CommonName)
		} else {
			r.log.Debug("serving certificate waits for CA publish grace", "reason", problem, "publishedAt", published)
		}
	}

	// 5. Write back, only when something changed.
	stamp := published.UTC().Format(time.RFC3339)
	if !create && maps.EqualFunc(data, sec.Data, bytes.Equal) && sec.Annotations[PublishedAtAnnotation] == stamp {
		return nil
	}
	sec.Data = data
	metav1.SetMetaDataAnnotation(&sec.ObjectMeta, PublishedAtAnnotation, stamp)
	if create {
		err = r.opts.Client.Create(ctx, sec)
	} else {
		err = r.opts.Client.Update(ctx, sec)
	}
	if err != nil {
		return fmt.Errorf("writing secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	return nil
}

// bundle returns signer followed by every other unexpired CA from the
// existing bundle and previous, without duplicates.
func (r *Rotator) bundle(signer *x509.Certificate, existing []byte, previous []*x509.Certificate, now time.Time) []*x509.Certificate {
	certs, err := parseCerts(existing)
	if err != nil {
		r.log.Warn("dropping unparsable CA bundle entries", "problem", err)
	}
	out := []*x509.Certificate{signer}
	for _, c := range append(previous, certs...) {
		seen := false
		for _, o := range out {
			seen = seen || o.Equal(c)
		}
		switch {
		case seen:
		case !c.IsCA:
			r.log.Warn("dropping non-CA certificate from bundle", "subject", c.Subject.CommonName)
		case now.After(c.NotAfter):
			r.log.Info("dropping expired CA from bundle", "subject", c.Subject.CommonName, "notAfter", c.NotAfter)
		default:
			out = append(out, c)
		}
	}
	return out
}

// servingProblem says why the serving certificate in data should be
// replaced, if at all. broken means it cannot be used as it is, so it is
// replaced without waiting for PublishGrace.
func (r *Rotator) servingProblem(data map[string][]byte, signer *x509.Certificate, roots *x509.CertPool, now time.Time) (problem string, broken bool) {
	if len(data[corev1.TLSCertKey]) == 0 {
		return "no serving certificate yet", true
	}
	pair, err := tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey])
	if err != nil {
		r.log.Warn("serving certificate in secret is invalid", "problem", err)
		return "invalid serving certificate", true
	}
	leaf := pair.Leaf
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	switch {
	case err != nil:
		r.log.Warn("serving certificate does not verify against the CA bundle", "problem", err)
		return "serving certificate not trusted", true
	case renewalDue(leaf, now, r.opts.RenewBefore):
		return "serving certificate renewal due", false
	case !sameSANs(leaf, r.opts.DNSNames, r.opts.IPAddresses):
		return "serving certificate SANs changed", false
	case leaf.CheckSignatureFrom(signer) != nil:
		return "serving certificate signed by a previous CA", false
	}
	return "", false
}

// publish sets caBundle on every webhook of the named configurations.
// A configuration that does not exist yet is skipped.
func (r *Rotator) publish(ctx context.Context, bundle []byte) error {
	for _, name := range r.opts.MutatingWebhooks {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		err := r.patch(ctx, "MutatingWebhookConfiguration", name, cfg, func() (changed bool) {
			for i := range cfg.Webhooks {
				changed = setBundle(&cfg.Webhooks[i].ClientConfig, bundle) || changed
			}
			return changed
		})
		if err != nil {
			return err
		}
	}
	for _, name := range r.opts.ValidatingWebhooks {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		err := r.patch(ctx, "ValidatingWebhookConfiguration", name, cfg, func() (changed bool) {
			for i := range cfg.Webhooks {
				changed = setBundle(&cfg.Webhooks[i].ClientConfig, bundle) || changed
			}
			return changed
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func setBundle(cc *admissionregistrationv1.WebhookClientConfig, bundle []byte) bool {
	if bytes.Equal(cc.CABundle, bundle) {
		return false
	}
	cc.CABundle = bytes.Clone(bundle)
	return true
}

// patch reads obj by name, lets mutate change it and patches the change
// with optimistic locking.
func (r *Rotator) patch(ctx context.Context, kind, name string, obj client.Object, mutate func() bool) error {
	if err := r.opts.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.log.Info("webhook configuration not found, skipping", "kind", kind, "name", name)
			return nil
		}
		return fmt.Errorf("reading %s %s: %w", kind, name, err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	if !mutate() {
		return nil
	}
	if err := r.opts.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("publishing CA bundle to %s %s: %w", kind, name, err)
	}
	r.log.Info("published CA bundle", "kind", kind, "name", name)
	return nil
}
