package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Names of the files Sync writes in CertDir; the first two are
// controller-runtime's webhook server defaults.
const (
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
	BundleFile = "ca.crt"
)

// Sync copies the serving certificate, its key and the CA bundle from the
// Secret into CertDir, rewriting only files whose content differs. Each
// file is replaced atomically. It returns an error wrapping
// ErrNoCertificate when the Secret holds no usable serving certificate.
func (r *Rotator) Sync(ctx context.Context) error {
	sec, err := r.secret(ctx)
	if err != nil {
		return err
	}
	certPEM, keyPEM, bundle := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey], sec.Data[CABundleKey]
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("secret %s/%s: %w: %w", sec.Namespace, sec.Name, ErrNoCertificate, err)
	}
	if len(bundle) == 0 {
		return fmt.Errorf("secret %s/%s: %w: %s is empty", sec.Namespace, sec.Name, ErrNoCertificate, CABundleKey)
	}
	if err := os.MkdirAll(r.opts.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating cert dir: %w", err)
	}
	// The certificate goes last: certwatcher reloads on every file event
	// and keeps its previous pair when the files do not match, so the new
	// pair is loaded by the time the last file lands.
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{{BundleFile, bundle, 0o644}, {KeyFile, keyPEM, 0o600}, {CertFile, certPEM, 0o644}}
	for _, f := range files {
		path := filepath.Join(r.opts.CertDir, f.name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if err := writeAtomic(path, f.data, f.mode); err != nil {
			return err
		}
		r.log.Info("wrote certificate file", "path", path)
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it
// over path, so readers see either the old or the new content.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Check reports whether CertDir holds a matching certificate and key that
// are valid now. Its signature fits controller-runtime's healthz.Checker,
// for use as a readiness check.
func (r *Rotator) Check(_ *http.Request) error {
	pair, err := tls.LoadX509KeyPair(filepath.Join(r.opts.CertDir, CertFile), filepath.Join(r.opts.CertDir, KeyFile))
	if err != nil {
		return fmt.Errorf("loading serving certificate: %w", err)
	}
	if now := r.opts.Now(); now.After(pair.Leaf.NotAfter) || now.Before(pair.Leaf.NotBefore) {
		return fmt.Errorf("serving certificate in %s is not valid now (valid %s to %s)", r.opts.CertDir, pair.Leaf.NotBefore, pair.Leaf.NotAfter)
	}
	return nil
}

// WaitReady blocks until Check passes or ctx is done. Something else, such
// as Run, must be filling CertDir meanwhile.
func (r *Rotator) WaitReady(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := r.Check(nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for serving certificate: %w", errors.Join(ctx.Err(), err))
		case <-t.C:
		}
	}
}

// Run calls Reconcile when leader reports true, then Sync, at once and
// every interval (one minute when interval is not positive), until ctx is
// done. Errors are logged and retried on the next pass. A nil leader means
// this replica always leads; with a controller-runtime manager, pass
//
//	func() bool { select { case <-mgr.Elected(): return true; default: return false } }
func (r *Rotator) Run(ctx context.Context, leader func() bool, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if leader == nil || leader() {
			if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("reconciling webhook certificates failed", "error", err)
			}
		}
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("syncing webhook certificate files failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
